"""The routing table (path prefix -> owning service) and the dispatch of `/api/...` requests.

`ROUTES` is the one place that says which service serves which path. A prefix matches whole path
segments (`/api/v1/products` serves `/api/v1/products/42`, not `/api/v1/productsale`); a segment
`{name}` matches any one segment, and the most specific prefix wins, so
`"/api/v1/products/{id}/reviews": "reviews"` can sit beside `"/api/v1/products": "catalog"`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from amazonlite.gateway.cache import ResponseCache
from amazonlite.gateway.edge import FORWARDING_HEADERS, ClientAddress
from amazonlite.gateway.errors import NoRoute
from amazonlite.gateway.proxy import HOP_BY_HOP, ClientDisconnected, Headers, UpstreamClient
from amazonlite.gateway.ratelimit import RateLimiter
from amazonlite.gateway.tenants import TenantInfo
from amazonlite.gateway.tokens import CallerResolver, InternalTokenMinter
from amazonlite.platform.context import bind_tenant
from amazonlite.platform.errors import PROBLEM_JSON, AppError
from amazonlite.platform.http import ASGIApp, Message, Receive, Scope, Send, problem_body
from amazonlite.platform.outages import DEPENDENCIES, upstream_dependency
from amazonlite.platform.resilience import CircuitOpen, DownstreamFailed, DownstreamTimeout, DownstreamUnavailable
from amazonlite.platform.security import INTERNAL_TOKEN_HEADER, Principal
from amazonlite.platform.tracing import inject_headers

ROUTES: Mapping[str, str] = MappingProxyType({
    "/api/v1/auth": "auth",
    "/api/v1/users": "users",
    "/api/v1/products": "catalog",
    "/api/v1/categories": "catalog",
    "/api/v1/brands": "catalog",
    "/api/v1/skus": "catalog",
    "/api/v1/search": "search",
    "/api/v1/inventory": "inventory",
    "/api/v1/cart": "cart",
    "/api/v1/coupons": "cart",
    "/api/v1/orders": "orders",
    "/api/v1/payments": "payments",
    "/api/v1/admin/tenants": "tenants",
})

API_PREFIX = "/api/"
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_QUOTA_HEADERS = "amazonlite.ratelimit"

# Request headers the upstream never sees from the client: the gateway sets its own (internal
# token, correlation id, trace context), the tenant and the client's address travel in the
# internal token, the user's access token stays at the gateway, and hop-by-hop headers end here.
_STRIPPED = HOP_BY_HOP | FORWARDING_HEADERS | {
    b"authorization", b"x-tenant-id", INTERNAL_TOKEN_HEADER.encode(), b"x-correlation-id", b"traceparent",
    b"tracestate", b"expect"}
# An upstream that cannot be reached or does not answer in time: an outage, logged once per change.
_UPSTREAM_OUTAGES = (CircuitOpen, DownstreamUnavailable, DownstreamTimeout, DownstreamFailed)


@dataclass(frozen=True, slots=True)
class Route:
    prefix: str
    service: str


@dataclass
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    wildcard: _Node | None = None
    route: Route | None = None


class RouteTable:
    def __init__(self, routes: Mapping[str, str]) -> None:
        self._root = _Node()
        self.services = frozenset(routes.values())
        for prefix, service in routes.items():
            if not prefix.startswith("/") or prefix.endswith("/"):
                raise ValueError(f"route prefix {prefix!r} must start with '/' and not end with one")
            node = self._root
            for segment in prefix[1:].split("/"):
                if segment.startswith("{") and segment.endswith("}"):
                    node.wildcard = node.wildcard or _Node()
                    node = node.wildcard
                else:
                    node = node.literal.setdefault(segment, _Node())
            node.route = Route(prefix, service)

    def resolve(self, path: str) -> Route | None:
        """The most specific route whose prefix covers `path` (whole segments), or None."""
        return _match(self._root, path[1:].split("/"), 0)


def _match(node: _Node, segments: list[str], i: int) -> Route | None:
    if i < len(segments):
        child = node.literal.get(segments[i])
        if child is not None:
            found = _match(child, segments, i + 1)
            if found is not None:
                return found
        if node.wildcard is not None and segments[i]:
            found = _match(node.wildcard, segments, i + 1)
            if found is not None:
                return found
    return node.route


class Tenants(Protocol):
    async def require_active(self, tenant_id: str) -> TenantInfo: ...


class GatewayDispatch:
    """Pure ASGI: `/api/...` goes to its owning upstream; anything else to the gateway's own routes.

    Per request: resolve the route, resolve the caller (access token or anonymous tenant) and its
    address, check that the tenant exists and is active, count the request against the tenant's
    and the client's rate limits, answer a public read from the response cache if it holds it,
    else rewrite the headers (internal token for the target service, correlation id, trace
    context) and relay, adding the rate-limit headers to the answer. A successful write to a
    cached route invalidates the tenant's cached reads.
    """

    def __init__(self, app: ASGIApp, *, table: RouteTable, upstreams: Mapping[str, UpstreamClient],
                 callers: CallerResolver, minter: InternalTokenMinter, tenants: Tenants,
                 limiter: RateLimiter | None, client_address: ClientAddress,
                 cache: ResponseCache | None = None) -> None:
        self.app = app
        self._table = table
        self._upstreams = upstreams
        self._callers = callers
        self._minter = minter
        self._tenants = tenants
        self._limiter = limiter
        self._client_address = client_address
        self._cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        try:
            await self._dispatch(scope, receive, send)
        except AppError as exc:  # raised only before the upstream answered
            await send_problem(scope, _with_headers(send, scope.get(_QUOTA_HEADERS, [])), exc)
        except ClientDisconnected:
            return

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        route = self._table.resolve(path)
        upstream = self._upstreams.get(route.service) if route is not None else None
        if route is None or upstream is None:
            raise NoRoute(f"There is no endpoint at {path}")
        scope["amazonlite.route"] = route.prefix

        authorization = tenant = None
        connection: bytes | None = None
        headers: Headers = []
        for name, value in scope["headers"]:
            if name in _STRIPPED:
                if name == b"authorization":
                    authorization = value
                elif name == b"x-tenant-id":
                    tenant = value
                elif name == b"connection":
                    connection = value
                continue
            headers.append((name, value))
        if connection is not None:
            headers = _without_connection_tokens(headers, connection)

        principal = await self._callers.resolve(authorization, tenant)
        bind_tenant(principal.tenant_id)
        address = self._client_address.of(scope)
        if address is not None:
            principal = dataclasses.replace(principal, client_address=address)
        settings = await self._tenants.require_active(principal.tenant_id)
        quota = await self._limiter.hit(settings, principal) if self._limiter is not None else None
        if quota is not None:
            scope[_QUOTA_HEADERS] = quota.headers()  # also on a problem answered here
            send = _with_headers(send, quota.headers())
        cache = self._cache if self._cache is not None and self._cache.covers(route.prefix) else None
        if cache is not None:
            await self._through_cache(cache, scope, receive, send, headers, upstream, principal)
            return
        await self._forward(scope, receive, send, headers, upstream, principal)

    async def _through_cache(self, cache: ResponseCache, scope: Scope, receive: Receive, send: Send,
                             headers: Headers, upstream: UpstreamClient, principal: Principal) -> None:
        tenant = principal.tenant_id
        if cache.cacheable(scope["method"], principal):
            key = cache.key(scope["path"], scope.get("query_string", b""))
            entry, generation = await cache.lookup(tenant, key)
            if entry is not None:
                await cache.send_entry(entry, send)
                return
            if generation is None:  # the store failed: no caching for this request
                await self._forward(scope, receive, send, headers, upstream, principal)
                return
            recording, recorder = cache.recording(send, tenant, key, generation)
            await self._forward(scope, receive, recording, headers, upstream, principal)
            await cache.keep(recorder)
            return
        if scope["method"] in _READS:
            await self._forward(scope, receive, send, headers, upstream, principal)
            return

        async def send_invalidating(message: Message) -> None:
            # The write is committed once the service answers; drop the cached reads before the
            # client has the answer, so a read it sends next cannot get the state before the write.
            if message["type"] == "http.response.start" and 200 <= message["status"] < 400:
                await cache.invalidate_after_write(tenant)
            await send(message)

        await self._forward(scope, receive, send_invalidating, headers, upstream, principal)

    async def _forward(self, scope: Scope, receive: Receive, send: Send, headers: Headers,
                       upstream: UpstreamClient, principal: Principal) -> None:
        headers.append((b"x-internal-token", self._minter.token(principal, upstream.name).encode()))
        if principal.client_address:  # for the upstream's logs: it reads the address from the token
            headers.append((b"x-forwarded-for", principal.client_address.encode()))
            headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
        correlation_id = scope["state"].get("correlation_id")
        if correlation_id:
            headers.append((b"x-correlation-id", correlation_id.encode()))
        for key, value in inject_headers({}).items():
            headers.append((key.encode("latin-1"), value.encode("latin-1")))

        dependency = upstream_dependency(upstream.name)
        try:
            await upstream.forward(scope, receive, send, headers)
        except _UPSTREAM_OUTAGES as exc:
            DEPENDENCIES.unavailable(dependency, problem=exc.type, detail=exc.detail)
            raise
        DEPENDENCIES.available(dependency)


def _with_headers(send: Send, extra: Headers) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *extra]
        await send(message)

    return send_with_headers


def _without_connection_tokens(headers: Headers, connection: bytes) -> Headers:
    named = {token.strip().lower() for token in connection.split(b",")} - {b"close", b"keep-alive", b""}
    if not named:
        return headers
    return [(k, v) for k, v in headers if k not in named]


async def send_problem(scope: Scope, send: Send, exc: AppError) -> None:
    correlation_id = (scope.get("state") or {}).get("correlation_id")
    body = problem_body(exc.status, exc.type, exc.title, exc.detail, correlation_id, **exc.extra)
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
