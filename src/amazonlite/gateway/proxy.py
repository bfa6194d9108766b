"""Upstreams: the services behind the gateway, reached in-process or over HTTP, through one interface.

- embedded: the service's ASGI app is called directly with a copy of the request's scope whose
  headers the gateway rewrote; its receive and send are the gateway's own (no copy of the body, no
  sockets). This is the hot path. The same deadline as a remote call applies until the service
  starts its answer (a 504 problem, and the service's work is cancelled and rolled back, as when
  a client goes away); once it has started, the answer streams on.
- distributed: one pooled `httpx.AsyncClient` per upstream; the request is replayed (method, path,
  query, body, safe headers) and the answer streamed back without hop-by-hop headers.

Each upstream has one `DownstreamPolicy` (platform/resilience.py): a remote request runs through
`policy.call` (deadline; retries for idempotent requests; breaker; bulkhead), an embedded one through
`policy.attempt()` (breaker and bulkhead; the answer's status judges it). A refused or failed call
raises the kernel's `CircuitOpen`, `BulkheadFull`, `DownstreamUnavailable`, `DownstreamTimeout` or
`DownstreamFailed`, which the dispatch answers as a problem.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import orjson
import structlog

from amazonlite.gateway.settings import GatewaySettings
from amazonlite.platform.context import CORRELATION_HEADER, current_correlation_id
from amazonlite.platform.http import ASGIApp, Message, Receive, Scope, Send
from amazonlite.platform.resilience import DownstreamPolicy, DownstreamTimeout, NetworkTransport, is_idempotent
from amazonlite.platform.security import INTERNAL_TOKEN_HEADER, Principal
from amazonlite.platform.tenancy import DEFAULT_TENANT

log = structlog.get_logger("amazonlite.gateway")

Headers = list[tuple[bytes, bytes]]
Readiness = Callable[[], Awaitable[dict[str, str]]]
MintToken = Callable[[Principal, str], str]

HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
                        b"trailer", b"trailers", b"transfer-encoding", b"upgrade"})
_CORRELATION = CORRELATION_HEADER.encode()
# Set on the way back by the gateway's own edge (correlation id) or its server (date, server).
_RESPONSE_DROPPED = HOP_BY_HOP | {_CORRELATION, b"date", b"server"}
_ANONYMOUS = Principal(tenant_id=DEFAULT_TENANT)
GATEWAY = "gateway"


@dataclass(frozen=True)
class Upstream:
    """A service behind the gateway: its ASGI `app` (embedded) or its base `url` (distributed)."""

    name: str
    app: ASGIApp | None = None
    url: str | None = None
    ready: Readiness | None = None

    def __post_init__(self) -> None:
        if (self.app is None) == (self.url is None):
            raise ValueError(f"upstream {self.name!r}: give an ASGI app (embedded) or a base url (distributed)")


@dataclass(frozen=True, slots=True)
class Fetched:
    """A small answer the gateway reads itself (JWKS, OpenAPI, readiness)."""

    status: int
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class ClientDisconnected(Exception):
    """The client went away before its request body arrived: there is no one to answer."""


class UpstreamClient(Protocol):
    name: str
    policy: DownstreamPolicy

    async def forward(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        """Relay the request with the gateway's `headers`; raise an `AppError` only before answering."""

    async def fetch(self, path: str, principal: Principal = ...) -> Fetched:
        """GET `path` under the upstream's policy as the gateway itself (by default an anonymous
        internal token for tenant `default`)."""

    async def readiness(self) -> dict[str, str]: ...

    async def aclose(self) -> None: ...


def make_client(upstream: Upstream, settings: GatewaySettings, mint: MintToken,
                policy: DownstreamPolicy) -> UpstreamClient:
    if upstream.app is not None:
        return EmbeddedUpstream(upstream.name, upstream.app, upstream.ready, mint, policy,
                                timeout_seconds=settings.upstream_timeout_seconds)
    assert upstream.url is not None
    return RemoteUpstream(upstream.name, upstream.url, settings, mint, policy)


class EmbeddedUpstream:
    def __init__(self, name: str, app: ASGIApp, ready: Readiness | None, mint: MintToken,
                 policy: DownstreamPolicy, *, timeout_seconds: float) -> None:
        self.name = name
        self.policy = policy
        self._app = app
        self._ready = ready
        self._mint = mint
        self._timeout = timeout_seconds

    async def forward(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        child = dict(scope)
        child["headers"] = headers
        child["state"] = {}  # the service's request state is its own
        child.pop("amazonlite.route", None)
        started = False

        async with self.policy.attempt() as attempt:
            deadline = asyncio.timeout(self._timeout)

            async def send_back(message: Message) -> None:
                nonlocal started
                if message["type"] == "http.response.start":
                    started = True
                    deadline.reschedule(None)  # the answer has started: it streams on
                    attempt.record_status(message["status"])
                    # The service's edge echoes the correlation id; the gateway's edge adds it once.
                    message["headers"] = [h for h in message.get("headers", ()) if h[0] != _CORRELATION]
                await send(message)

            try:
                async with deadline:
                    await self._app(child, receive, send_back)
            except TimeoutError as exc:
                if started:
                    raise
                raise DownstreamTimeout(self.name, self._timeout) from exc
            except Exception:
                if not started:
                    raise
                # The service already answered (its error handler logged and rendered the 500).
                log.debug("gateway.embedded_error_after_response", upstream=self.name)
            finally:
                _back_in_gateway()

    async def fetch(self, path: str, principal: Principal = _ANONYMOUS) -> Fetched:
        try:
            async with self.policy.attempt() as attempt:
                answer = await call_asgi(self._app, "GET", path, _gateway_headers(self._mint(principal, self.name)))
                attempt.record_status(answer.status)
                return answer
        finally:
            _back_in_gateway()

    async def readiness(self) -> dict[str, str]:
        if self._ready is not None:
            return await self._ready()
        try:  # not through the policy: readiness reports the upstream's own state, not the breaker's
            headers = _gateway_headers(self._mint(_ANONYMOUS, self.name))
            return readiness_checks(await call_asgi(self._app, "GET", "/health/ready", headers))
        finally:
            _back_in_gateway()

    async def aclose(self) -> None:
        return None


class RemoteUpstream:
    def __init__(self, name: str, url: str, settings: GatewaySettings, mint: MintToken,
                 policy: DownstreamPolicy) -> None:
        self.name = name
        self.policy = policy
        self.base_url = url.rstrip("/")
        self._settings = settings
        self._mint = mint
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        """The shared pooled client, created on first use (so an app used without its lifespan works)."""
        if self._client is None:
            s = self._settings
            limits = httpx.Limits(max_connections=s.upstream_max_connections,
                                  max_keepalive_connections=s.upstream_max_keepalive_connections)
            self._client = httpx.AsyncClient(
                transport=NetworkTransport(limits=limits),  # retries: the policy's
                timeout=self.policy.httpx_timeout(),
                follow_redirects=False,
            )
        return self._client

    async def forward(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        body = await read_body(receive)
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string") or b""
        url = self.base_url + raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")

        async def send_once() -> httpx.Response:
            request = self.client.build_request(scope["method"], url, headers=headers, content=body)
            return await self.client.send(request, stream=True)

        async def discard(response: httpx.Response) -> None:
            await response.aclose()

        response = await self.policy.call(send_once, idempotent=is_idempotent(scope["method"], headers),
                                          discard=discard)
        try:
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [(k.lower(), v) for k, v in response.headers.raw
                                    if k.lower() not in _RESPONSE_DROPPED]})
            async for chunk in response.aiter_raw():
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    async def fetch(self, path: str, principal: Principal = _ANONYMOUS) -> Fetched:
        headers = _gateway_headers(self._mint(principal, self.name))
        response = await self.policy.call(lambda: self.client.get(self.base_url + path, headers=headers),
                                          idempotent=True)
        return Fetched(response.status_code, response.content)

    async def readiness(self) -> dict[str, str]:
        # Not through the policy: readiness reports the upstream's own state, not the breaker's.
        headers = _gateway_headers(self._mint(_ANONYMOUS, self.name))
        response = await self.client.get(self.base_url + "/health/ready", headers=headers)
        return readiness_checks(Fetched(response.status_code, response.content))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _back_in_gateway() -> None:
    # An embedded service's edge binds its own name into the log context of this same task.
    structlog.contextvars.bind_contextvars(service=GATEWAY)


def readiness_checks(answer: Fetched) -> dict[str, str]:
    """The checks of a service's `/health/ready` answer (200 or its 503 problem)."""
    try:
        checks = answer.json().get("checks")
    except (orjson.JSONDecodeError, AttributeError):
        checks = None
    if isinstance(checks, dict) and checks:
        return {str(k): str(v) for k, v in checks.items()}
    return {"status": "ok" if answer.status == 200 else f"failing: HTTP {answer.status}"}


def _gateway_headers(internal_token: str) -> Headers:
    headers = [(b"accept", b"application/json"), (INTERNAL_TOKEN_HEADER.encode(), internal_token.encode())]
    correlation_id = current_correlation_id()
    if correlation_id:
        headers.append((_CORRELATION, correlation_id.encode()))
    return headers


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def call_asgi(app: ASGIApp, method: str, path: str, headers: Iterable[tuple[bytes, bytes]],
                    body: bytes = b"") -> Fetched:
    """Call an ASGI app in-process and collect its (small) answer."""
    path_only, _, query = path.partition("?")
    scope: Scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": path_only, "raw_path": path_only.encode(),
        "root_path": "", "query_string": query.encode(), "headers": list(headers),
        "client": ("127.0.0.1", 0), "server": ("gateway", 80), "state": {},
    }
    status = [500]
    chunks: list[bytes] = []
    never = asyncio.Event()
    first = [True]

    async def receive() -> Message:
        if first[0]:
            first[0] = False
            return {"type": "http.request", "body": body, "more_body": False}
        await never.wait()  # no disconnect: the caller waits for the whole answer
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return Fetched(status[0], b"".join(chunks))
