"""Upstreams for the gateway's tests: small apps built with the kernel, signing keys, real servers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from amazonlite.platform.config import PlatformSettings
from amazonlite.platform.errors import Unauthorized
from amazonlite.platform.http import EdgeMiddleware, install_problem_handlers
from amazonlite.platform.security import INTERNAL_TOKEN_HEADER, InternalTokens, Principal
from amazonlite.platform.service import ops_router

ISSUER = "amazonlite-auth"
AUDIENCE = "amazonlite"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_x(key: Ed25519PrivateKey) -> str:
    return b64url(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


@dataclass
class SigningKeys:
    """The auth service's key ring as the tests control it: what is published, and what signs."""

    published: dict[str, Ed25519PrivateKey] = field(default_factory=dict)

    def add(self, kid: str) -> Ed25519PrivateKey:
        self.published[kid] = Ed25519PrivateKey.generate()
        return self.published[kid]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": public_x(key), "kid": kid, "use": "sig",
                          "alg": "EdDSA"} for kid, key in self.published.items()]}

    def token(self, *, kid: str = "k1", key: Ed25519PrivateKey | None = None, **claims: Any) -> str:
        return jwt.encode(access_claims(**claims), key or self.published[kid], algorithm="EdDSA",
                          headers={"kid": kid})


def access_claims(**overrides: Any) -> dict[str, Any]:
    """Claims of a valid access token; an override of None leaves that claim out."""
    now = int(time.time())
    claims: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": str(uuid.uuid4()), "tenant": "default",
                              "roles": ["customer"], "jti": uuid.uuid4().hex, "iat": now, "exp": now + 300}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def unsigned_token(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(signature)}"


def hs256_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def kernel_app(name: str, platform: PlatformSettings) -> FastAPI:
    """A service-shaped app: the kernel's edge, problem handlers and ops endpoints."""

    async def ready() -> dict[str, str]:
        return {"self": "ok"}

    app = FastAPI(title=f"test {name}")
    app.state.tokens = InternalTokens(platform.internal_token_secret,
                                      ttl_seconds=platform.internal_token_ttl_seconds)
    install_problem_handlers(app)
    app.include_router(ops_router(ready))
    app.add_middleware(EdgeMiddleware, service=name, max_body_bytes=platform.max_body_bytes)
    return app


def verified_principal(request: Request, audience: str) -> Principal:
    token = request.headers.get(INTERNAL_TOKEN_HEADER)
    if not token:
        raise Unauthorized("no internal token")
    return request.app.state.tokens.verify(token, audience=audience)


def echo_app(name: str, platform: PlatformSettings, *, item_field: str = "sku") -> FastAPI:
    """Answers any request with what it received, and the principal of its verified internal token."""
    app = kernel_app(name, platform)
    item = type("Item", (BaseModel,), {"__annotations__": {item_field: str}})

    @app.get(f"/api/v1/{'products' if name == 'catalog' else name}/items", response_model=item)
    async def one_item() -> Any:
        return {item_field: "x"}

    @app.get("/api/v1/products/slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(2)
        return {"status": "late"}

    @app.get("/internal/stats")
    async def not_routed() -> dict[str, str]:
        return {"served": "but not through the gateway"}

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def echo(path: str, request: Request) -> dict[str, Any]:
        principal = verified_principal(request, name)
        return {
            "service": name, "method": request.method, "path": request.url.path,
            "query": request.url.query, "body": (await request.body()).decode(),
            "headers": [[k.decode(), v.decode()] for k, v in request.scope["headers"]],
            "principal": {"tenant": principal.tenant_id, "user_id": principal.user_id,
                          "roles": sorted(principal.roles), "token_id": principal.token_id,
                          "token_expires_at": principal.token_expires_at, "caller": principal.caller,
                          "client_address": principal.client_address},
        }

    return app


def auth_app(platform: PlatformSettings, keys: SigningKeys) -> FastAPI:
    """The auth service as far as the gateway cares: its JWKS (behind an internal token), and echo."""
    app = echo_app("auth", platform, item_field="token")
    app.state.jwks_fetches = 0

    @app.get("/api/v1/auth/jwks.json")
    async def jwks(request: Request) -> dict[str, Any]:
        verified_principal(request, "auth")
        app.state.jwks_fetches += 1
        return keys.jwks()

    # The catch-all echo route was registered first: put the JWKS route in front of it.
    app.router.routes.insert(0, app.router.routes.pop())
    return app


def tenant_settings(tenant_id: str, *, status: str = "active", tenant_per_minute: int = 6000,
                    client_per_minute: int = 600) -> dict[str, Any]:
    return {"id": tenant_id, "name": tenant_id.title(), "currency": "INR", "tax_rate_bp": 0,
            "rate_limits": {"tenant_per_minute": tenant_per_minute, "client_per_minute": client_per_minute},
            "feature_flags": {}, "status": status, "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z"}


def tenants_app(platform: PlatformSettings, tenants: dict[str, dict[str, Any]]) -> FastAPI:
    """The tenants service as far as the gateway cares: one tenant's settings, for platform admins.

    `app.state.lookups` counts the reads; `app.state.failing = True` makes it answer 500."""
    app = kernel_app("tenants", platform)
    app.state.lookups = 0
    app.state.failing = False

    @app.get("/api/v1/admin/tenants/{tenant_id}")
    async def read(tenant_id: str, request: Request) -> Any:
        principal = verified_principal(request, "tenants")
        app.state.lookups += 1
        if app.state.failing:
            return JSONResponse({"status": 500}, status_code=500)
        if "platform_admin" not in principal.roles:
            return JSONResponse({"status": 403}, status_code=403)
        if tenant_id not in tenants:
            return JSONResponse({"status": 404}, status_code=404)
        return tenants[tenant_id]

    return app


def received_headers(answer: httpx.Response) -> list[tuple[str, str]]:
    return [(k, v) for k, v in answer.json()["headers"]]


def received(answer: httpx.Response, name: str) -> list[str]:
    return [v for k, v in received_headers(answer) if k == name]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def uvicorn_server(app: Any, port: int = 0) -> AsyncIterator[str]:
    """Serve `app` with a real uvicorn on `port` (default: a free one), in this event loop; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def client_of(gateway: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway app, inside its lifespan."""
    async with gateway.router.lifespan_context(gateway), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=gateway), base_url="http://gateway") as client:
        yield client
