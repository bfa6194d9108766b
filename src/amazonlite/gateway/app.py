"""The gateway's composition root: `create_gateway(platform, upstreams, revocations=...)`.

The topology builds the upstreams: `Upstream(name, app=..., ready=...)` for a service mounted in
this process, `Upstream(name, url=...)` for one reached over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from amazonlite.gateway.cache import CONSUMER_GROUP, CachePolicy, MemoryResponseStore, RedisResponseStore, ResponseCache
from amazonlite.gateway.edge import ClientAddress, SecurityHeaders, docs_csp
from amazonlite.gateway.openapi import TITLE, MergedOpenApi
from amazonlite.gateway.proxy import GATEWAY, Fetched, Upstream, UpstreamClient, make_client
from amazonlite.gateway.ratelimit import RateLimiter, storage_uri
from amazonlite.gateway.routing import ROUTES, GatewayDispatch, RouteTable, Tenants
from amazonlite.gateway.settings import GatewaySettings
from amazonlite.gateway.tenants import GATEWAY_ADMIN, TENANT_PATH, TENANTS, StaticTenants, TenantDirectory
from amazonlite.gateway.tokens import AccessTokenVerifier, CallerResolver, InternalTokenMinter, KeySet
from amazonlite.platform.bus import Transport
from amazonlite.platform.config import PlatformSettings
from amazonlite.platform.http import EdgeMiddleware, install_problem_handlers, new_app
from amazonlite.platform.resilience import DownstreamPolicy, ResilienceSettings
from amazonlite.platform.revocation import RevocationStore
from amazonlite.platform.security import InternalTokens
from amazonlite.platform.service import ops_router

__all__ = ["ROUTES", "CachePolicy", "GatewaySettings", "Upstream", "create_gateway"]

CORS_REQUEST_HEADERS = ["authorization", "content-type", "idempotency-key", "if-match", "x-cart-id",
                        "x-correlation-id", "x-tenant-id", "traceparent", "tracestate"]
CORS_RESPONSE_HEADERS = ["x-cart-id", "x-correlation-id", "etag", "idempotent-replayed", "location", "retry-after",
                         "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"]
AUTH = "auth"
JWKS_PATH = "/api/v1/auth/jwks.json"
DOCS_PATH = "/docs"

log = structlog.get_logger("amazonlite.gateway")


def upstream_resilience(settings: GatewaySettings, base: ResilienceSettings | None = None) -> ResilienceSettings:
    """The resilience of calls to one upstream: breaker and retries from `AMAZONLITE_RESILIENCE_*` (or
    `base`), deadline and bulkhead from the gateway's settings."""
    return (base or ResilienceSettings()).model_copy(update={
        "timeout_seconds": settings.upstream_timeout_seconds,
        "connect_timeout_seconds": settings.upstream_connect_timeout_seconds,
        "bulkhead_max_concurrent": settings.upstream_max_concurrent,
        "bulkhead_max_waiting": settings.upstream_max_waiting,
    })


def create_gateway(platform: PlatformSettings, upstreams: Sequence[Upstream], *, revocations: RevocationStore,
                   settings: GatewaySettings | None = None, resilience: ResilienceSettings | None = None,
                   cache_policy: CachePolicy | None = None, events: Transport | None = None, redis: Any = None,
                   on_startup: Sequence[Callable[[], Awaitable[None]]] = (),
                   on_shutdown: Sequence[Callable[[], Awaitable[None]]] = ()) -> FastAPI:
    """The gateway app: `/api/v1/...` routed by `ROUTES` to `upstreams`, plus health, metrics and docs.

    `on_startup` hooks run in order in the lifespan, `on_shutdown` hooks in reverse order.
    `resilience` overrides the breaker and retry settings of every upstream (`upstream_resilience`).
    With a `cache_policy` and an `events` bus (which the caller starts and stops), public reads are
    cached, in `redis` when given (shared by replicas), else in memory; the gateway subscribes to the
    policy's topics before the bus starts.
    """
    settings = settings or GatewaySettings()
    names = [u.name for u in upstreams]
    if len(set(names)) != len(names):
        raise ValueError(f"each upstream is named once: {names}")

    tokens = InternalTokens(platform.internal_token_secret, ttl_seconds=platform.internal_token_ttl_seconds)
    minter = InternalTokenMinter(tokens, ttl_seconds=platform.internal_token_ttl_seconds,
                                 reuse_fraction=settings.internal_token_reuse_fraction,
                                 cache_size=settings.internal_token_cache_size)
    per_upstream = upstream_resilience(settings, resilience)
    clients: dict[str, UpstreamClient] = {
        u.name: make_client(u, settings, minter.token, DownstreamPolicy(u.name, per_upstream, caller=GATEWAY))
        for u in upstreams}
    table = RouteTable(ROUTES)
    tenants = _tenants(clients, settings)
    limiter = (RateLimiter(storage_uri(platform.redis_url), window_seconds=settings.rate_limit_window_seconds,
                           key_prefix=platform.redis_prefix) if settings.rate_limit_enabled else None)

    async def fetch_jwks() -> Mapping[str, Any]:
        auth = clients.get(AUTH)
        if auth is None:
            raise LookupError("no auth upstream: access tokens cannot be verified")
        async with asyncio.timeout(settings.upstream_timeout_seconds):
            answer = await auth.fetch(JWKS_PATH)
        if answer.status != 200:
            raise LookupError(f"the JWKS answered HTTP {answer.status}")
        return answer.json()

    keys = KeySet(fetch_jwks, min_interval=settings.jwks_refresh_min_interval_seconds,
                  max_age=settings.jwks_max_age_seconds, on_keys_removed=lambda: verifier.forget_verified())
    verifier = AccessTokenVerifier(keys, revocations, issuer=settings.token_issuer, audience=settings.token_audience,
                                   leeway=settings.token_leeway_seconds, cache_size=settings.verified_token_cache_size)
    cache = _response_cache(settings, platform, cache_policy, events, redis)
    merged_openapi = MergedOpenApi(list(clients.values()), table, cache_seconds=settings.openapi_cache_seconds,
                                   timeout=settings.readiness_timeout_seconds)

    async def readiness() -> dict[str, str]:
        limit = settings.readiness_timeout_seconds
        results = await asyncio.gather(*(_upstream_ready(c, limit) for c in clients.values()))
        checks = {key: value for result in results for key, value in result.items()}
        if cache is not None and events is not None:
            checks["bus"] = await _bus_ready(events)
            checks[f"consumer.{CONSUMER_GROUP}"] = events.check_consumer(
                CONSUMER_GROUP, platform.consumer_stale_after_ms / 1000)
        return checks

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for client in clients.values():
                stack.push_async_callback(client.aclose)
            if limiter is not None:
                stack.push_async_callback(limiter.aclose)
            for hook in on_startup:
                await hook()
            for hook in on_shutdown:  # the exit stack runs them in reverse
                stack.push_async_callback(hook)
            yield

    app = new_app(title=TITLE, version="1.0.0", lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
    install_problem_handlers(app)
    app.include_router(ops_router(readiness))

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> Response:
        return Response(orjson.dumps(await merged_openapi.document()), media_type="application/json")

    docs_page = get_swagger_ui_html(openapi_url="/openapi.json", title=f"{TITLE} - docs")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(bytes(docs_page.body))

    app.add_middleware(GatewayDispatch, table=table, upstreams=clients, callers=CallerResolver(verifier),
                       minter=minter, tenants=tenants, limiter=limiter,
                       client_address=ClientAddress(settings.trusted_proxies), cache=cache)
    if settings.cors_allow_origins:
        # Bearer tokens, not cookies: no credentials mode. Preflights are answered here.
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_allow_origins, allow_methods=["*"],
                           allow_headers=CORS_REQUEST_HEADERS, expose_headers=CORS_RESPONSE_HEADERS, max_age=600)
    app.add_middleware(EdgeMiddleware, service=GATEWAY, max_body_bytes=platform.max_body_bytes)
    app.add_middleware(SecurityHeaders, csp_by_path={DOCS_PATH: docs_csp(bytes(docs_page.body).decode())},
                       hsts_max_age=settings.hsts_max_age_seconds if settings.behind_tls else None)
    return app


def _tenants(clients: Mapping[str, UpstreamClient], settings: GatewaySettings) -> Tenants:
    upstream = clients.get(TENANTS)
    if upstream is None:
        log.warning("gateway.no_tenants_upstream",
                    detail="every well-formed tenant id is admitted, with the default rate limits")
        return StaticTenants(settings.default_tenant_per_minute, settings.default_client_per_minute)

    async def fetch(tenant_id: str) -> Fetched:
        return await upstream.fetch(TENANT_PATH.format(tenant=tenant_id), GATEWAY_ADMIN)

    return TenantDirectory(fetch, ttl=settings.tenant_cache_seconds, unknown_ttl=settings.unknown_tenant_cache_seconds,
                           max_entries=settings.tenant_cache_size)


def _response_cache(settings: GatewaySettings, platform: PlatformSettings, policy: CachePolicy | None,
                    events: Transport | None, redis: Any) -> ResponseCache | None:
    if policy is None or not settings.response_cache_enabled:
        return None
    if events is None:
        log.warning("gateway.response_cache_off", detail="no event bus to invalidate it: public reads are not cached")
        return None
    store = (RedisResponseStore(redis, platform.redis_prefix) if redis is not None
             else MemoryResponseStore(settings.response_cache_max_bytes))
    cache = ResponseCache(policy, store, ttl_seconds=settings.response_cache_ttl_seconds,
                          max_body_bytes=settings.response_cache_max_body_bytes)
    events.subscribe(CONSUMER_GROUP, policy.invalidated_by, cache.apply_events)
    return cache


async def _bus_ready(events: Transport) -> str:
    try:
        await events.ping()
    except Exception as exc:
        return f"failing: {type(exc).__name__}"
    return "ok"


async def _upstream_ready(client: UpstreamClient, limit: float) -> dict[str, str]:
    try:
        async with asyncio.timeout(limit):
            checks = await client.readiness()
    except Exception as exc:
        return {client.name: f"failing: {type(exc).__name__}"}
    return {f"{client.name}.{key}": value for key, value in checks.items()}
