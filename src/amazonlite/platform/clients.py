"""Service-to-service HTTP: httpx over the network, or over ASGI (no sockets) when embedded.

Every call carries an internal token minted for the target, the correlation id and the W3C trace
context of the current request, and runs under the target's `DownstreamPolicy` (deadline, retries for
idempotent requests, circuit breaker, bulkhead: platform/resilience.py). Any answer comes back as an
`httpx.Response`, whatever its status; a refused, timed-out or unreachable call raises the kernel
`AppError` that says so (`CircuitOpen`/`BulkheadFull`/`DownstreamUnavailable` 503,
`DownstreamTimeout` 504, `DownstreamFailed` 502), so an endpoint that lets it propagate answers with
a problem document.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from pydantic import TypeAdapter

from amazonlite.platform.context import CORRELATION_HEADER, current_correlation_id
from amazonlite.platform.errors import AppError
from amazonlite.platform.resilience import DownstreamPolicy, NetworkTransport, ResilienceSettings, is_idempotent
from amazonlite.platform.security import INTERNAL_TOKEN_HEADER, InternalTokens, Principal
from amazonlite.platform.tracing import inject_headers

T = TypeVar("T")


def _settings(resilience: ResilienceSettings | None, timeout: float | None) -> ResilienceSettings:
    settings = resilience if resilience is not None else ResilienceSettings()
    if timeout is not None:
        settings = settings.model_copy(update={"timeout_seconds": timeout})
    return settings


class ServiceClient:
    """Calls one target service. `policy` is the target's resilience state; give the same policy to
    every client of one target (ServiceDirectory does), or leave it out for a policy of its own."""

    def __init__(self, target: str, *, caller: str, tokens: InternalTokens, base_url: str | None = None,
                 app: Any = None, policy: DownstreamPolicy | None = None,
                 resilience: ResilienceSettings | None = None, timeout: float | None = None) -> None:
        if (base_url is None) == (app is None):
            raise ValueError("give a base_url or an ASGI app")
        self.target = target
        self.caller = caller
        self.policy = policy if policy is not None else DownstreamPolicy(
            target, _settings(resilience, timeout), caller=caller)
        self._tokens = tokens
        # Over ASGI an unhandled error in the target comes back as its 500 answer, as over the network.
        limits = self.policy.httpx_limits()
        transport: httpx.AsyncBaseTransport = (
            httpx.ASGITransport(app=app, raise_app_exceptions=False) if app is not None
            else NetworkTransport(limits=limits))
        self._client = httpx.AsyncClient(base_url=base_url or "http://embedded", transport=transport,
                                         timeout=self.policy.httpx_timeout())

    async def request(self, method: str, path: str, *, principal: Principal, **kwargs: Any) -> httpx.Response:
        """One call under the target's policy; retried only when `is_idempotent(method, headers)`.

        A retried request is sent again as given: pass its body as `json=`, `content=` bytes or `data=`.
        """
        headers: dict[str, str] = dict(kwargs.pop("headers", None) or {})
        headers[INTERNAL_TOKEN_HEADER] = self._tokens.mint(principal, audience=self.target, caller=self.caller)
        correlation_id = current_correlation_id()
        if correlation_id:
            headers[CORRELATION_HEADER] = correlation_id
        inject_headers(headers)

        async def send() -> httpx.Response:
            return await self._client.request(method, path, headers=headers, **kwargs)

        return await self.policy.call(send, idempotent=is_idempotent(method, headers))

    async def read(self, path: str, reader: TypeAdapter[T], *, principal: Principal, unavailable: type[AppError],
                   **kwargs: Any) -> T:
        """GET `path` and read its 200 answer's JSON with `reader`. Anything else (the target down
        or refusing, another status, a body that is not JSON or that `reader` rejects) raises
        `unavailable`, the caller's 503 with `Retry-After: 1`: an answer this service cannot use is
        never a 500 of its own."""
        try:
            answer = await self.request("GET", path, principal=principal, **kwargs)
        except AppError as exc:
            raise unavailable(f"The {self.target} service cannot answer: {exc.title}",
                              headers={"Retry-After": "1"}) from exc
        try:
            if answer.status_code != 200:
                raise ValueError(f"HTTP {answer.status_code}")
            return reader.validate_json(answer.content)
        except ValueError as exc:  # a ValidationError is a ValueError
            raise unavailable(f"The {self.target} service answered what {self.caller} cannot use ({exc})",
                              headers={"Retry-After": "1"}) from exc

    async def aclose(self) -> None:
        await self._client.aclose()


class ServiceDirectory:
    """Where a service finds the others: their ASGI apps (embedded) or their URLs (distributed).

    The topology fills it; a service asks `runtime.services.client("catalog")`. Each target gets its
    own `DownstreamPolicy` (one breaker and one bulkhead per target for this caller), built from the
    settings given at `register` or else the directory's (`AMAZONLITE_RESILIENCE_*` by default).
    """

    def __init__(self, caller: str, tokens: InternalTokens, *, timeout: float | None = None,
                 resilience: ResilienceSettings | None = None) -> None:
        self.caller = caller
        self._tokens = tokens
        self._resilience = _settings(resilience, timeout)
        self._apps: dict[str, Any] = {}
        self._urls: dict[str, str] = {}
        self._settings: dict[str, ResilienceSettings] = {}
        self._clients: dict[str, ServiceClient] = {}

    def register(self, name: str, *, app: Any = None, url: str | None = None,
                 resilience: ResilienceSettings | None = None) -> None:
        """Where `name` is: its ASGI app or its URL (either replaces what was registered before,
        until the first call to it; after that, its client and breaker are in use)."""
        if (app is None) == (url is None):
            raise ValueError("give an app or a url")
        if name in self._clients:
            raise RuntimeError(f"{self.caller} calls {name!r} already: register it before the first call")
        self._apps.pop(name, None)
        self._urls.pop(name, None)
        if app is not None:
            self._apps[name] = app
        else:
            self._urls[name] = str(url)
        if resilience is not None:
            self._settings[name] = resilience

    @property
    def known(self) -> list[str]:
        return sorted({*self._apps, *self._urls})

    def client(self, target: str) -> ServiceClient:
        client = self._clients.get(target)
        if client is None:
            if target not in self._apps and target not in self._urls:
                raise LookupError(f"{self.caller} knows no service {target!r}; known: {self.known}")
            policy = DownstreamPolicy(target, self._settings.get(target, self._resilience), caller=self.caller)
            client = ServiceClient(target, caller=self.caller, tokens=self._tokens, app=self._apps.get(target),
                                   base_url=self._urls.get(target), policy=policy)
            self._clients[target] = client
        return client

    def policy(self, target: str) -> DownstreamPolicy:
        """The resilience state of calls to `target` (its breaker, bulkhead and settings)."""
        return self.client(target).policy

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
