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
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from amazonlite.gateway.openapi import TITLE, MergedOpenApi
from amazonlite.gateway.proxy import GATEWAY, Upstream, UpstreamClient, make_client
from amazonlite.gateway.routing import ROUTES, GatewayDispatch, RouteTable
from amazonlite.gateway.settings import GatewaySettings
from amazonlite.gateway.tokens import AccessTokenVerifier, CallerResolver, InternalTokenMinter, KeySet
from amazonlite.platform.config import PlatformSettings
from amazonlite.platform.http import EdgeMiddleware, install_problem_handlers, new_app
from amazonlite.platform.revocation import RevocationStore
from amazonlite.platform.security import InternalTokens
from amazonlite.platform.service import ops_router

__all__ = ["ROUTES", "GatewaySettings", "Upstream", "create_gateway"]

CORS_REQUEST_HEADERS = ["authorization", "content-type", "idempotency-key", "x-cart-id", "x-correlation-id",
                        "x-tenant-id", "traceparent", "tracestate"]
CORS_RESPONSE_HEADERS = ["x-cart-id", "x-correlation-id", "location", "retry-after"]
AUTH = "auth"
JWKS_PATH = "/api/v1/auth/jwks.json"


def create_gateway(platform: PlatformSettings, upstreams: Sequence[Upstream], *, revocations: RevocationStore,
                   settings: GatewaySettings | None = None,
                   on_startup: Sequence[Callable[[], Awaitable[None]]] = (),
                   on_shutdown: Sequence[Callable[[], Awaitable[None]]] = ()) -> FastAPI:
    """The gateway app: `/api/v1/...` routed by `ROUTES` to `upstreams`, plus health, metrics and docs.

    `on_startup` hooks run in order in the lifespan, `on_shutdown` hooks in reverse order.
    """
    settings = settings or GatewaySettings()
    names = [u.name for u in upstreams]
    if len(set(names)) != len(names):
        raise ValueError(f"each upstream is named once: {names}")

    tokens = InternalTokens(platform.internal_token_secret, ttl_seconds=platform.internal_token_ttl_seconds)
    minter = InternalTokenMinter(tokens, ttl_seconds=platform.internal_token_ttl_seconds,
                                 reuse_fraction=settings.internal_token_reuse_fraction,
                                 cache_size=settings.internal_token_cache_size)
    clients: dict[str, UpstreamClient] = {u.name: make_client(u, settings, minter.token) for u in upstreams}
    table = RouteTable(ROUTES)

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
    merged_openapi = MergedOpenApi(list(clients.values()), table, cache_seconds=settings.openapi_cache_seconds,
                                   timeout=settings.readiness_timeout_seconds)

    async def readiness() -> dict[str, str]:
        limit = settings.readiness_timeout_seconds
        results = await asyncio.gather(*(_upstream_ready(c, limit) for c in clients.values()))
        return {key: value for checks in results for key, value in checks.items()}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for client in clients.values():
                stack.push_async_callback(client.aclose)
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

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{TITLE} - docs")

    app.add_middleware(GatewayDispatch, table=table, upstreams=clients, callers=CallerResolver(verifier),
                       minter=minter)
    if settings.cors_allow_origins:
        # Bearer tokens, not cookies: no credentials mode. Preflights are answered here.
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_allow_origins, allow_methods=["*"],
                           allow_headers=CORS_REQUEST_HEADERS, expose_headers=CORS_RESPONSE_HEADERS, max_age=600)
    app.add_middleware(EdgeMiddleware, service=GATEWAY, max_body_bytes=platform.max_body_bytes)
    return app


async def _upstream_ready(client: UpstreamClient, limit: float) -> dict[str, str]:
    try:
        async with asyncio.timeout(limit):
            checks = await client.readiness()
    except Exception as exc:
        return {client.name: f"failing: {type(exc).__name__}"}
    return {f"{client.name}.{key}": value for key, value in checks.items()}
