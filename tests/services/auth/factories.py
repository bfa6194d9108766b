"""Plain helpers for the auth tests: call the service's HTTP API, read its tables, check tokens."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jwt
from sqlalchemy import text

from amazonlite.gateway.errors import InvalidAccessToken
from amazonlite.gateway.tokens import AccessTokenVerifier, KeySet
from tests.support.harness import Harness

PASSWORD = "correct-horse-42"
ISSUER = "amazonlite-auth"
AUDIENCE = "amazonlite"


async def sign_up(client: httpx.AsyncClient, *, email: str = "ada@example.com", password: str = PASSWORD,
                  name: str = "Ada Lovelace") -> httpx.Response:
    return await client.post("/api/v1/auth/signup", json={"email": email, "password": password, "name": name})


async def log_in(client: httpx.AsyncClient, *, email: str = "ada@example.com",
                 password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def signed_up_and_logged_in(client: httpx.AsyncClient, *, email: str = "ada@example.com") -> dict[str, Any]:
    created = await sign_up(client, email=email)
    assert created.status_code == 201, created.text
    response = await log_in(client, email=email)
    assert response.status_code == 200, response.text
    return {"user_id": created.json()["id"], **response.json()}


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return str(response.json()["type"]).rsplit("/", 1)[-1]


async def verified_claims(client: httpx.AsyncClient, access_token: str) -> dict[str, Any]:
    """Verify the token as the gateway does: against the published JWKS, with PyJWT."""
    jwks = (await client.get("/api/v1/auth/jwks.json")).json()
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(access_token)["kid"]]
    return jwt.decode(access_token, key.key, algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER,
                      options={"require": ["exp", "iat", "sub", "jti"]})


async def scalar(svc: Harness, sql: str, **params: Any) -> Any:
    async with svc.runtime.db.engine.connect() as conn:
        return await conn.scalar(text(sql), params)


REGISTERED = "user.registered.v1"
EMAIL_REQUESTED = "notification.email.requested.v1"


async def outbox_events(svc: Harness, topic: str | None = None) -> list[dict[str, Any]]:
    """The events the service recorded, oldest first (only those of `topic` if given)."""
    async with svc.runtime.db.engine.connect() as conn:
        rows = (await conn.execute(
            text("SELECT topic, aggregate_id, tenant_id, envelope FROM outbox ORDER BY id"))).all()
    return [{"topic": r.topic, "aggregate_id": r.aggregate_id, "tenant_id": r.tenant_id,
             "envelope": json.loads(r.envelope)} for r in rows if topic is None or r.topic == topic]


async def mailed_token(svc: Harness, template: str, *, to: str = "ada@example.com") -> str:
    """The token of the newest email of `template` sent to `to`, read from the outbox as the
    notifications service would."""
    mails = [e["envelope"]["payload"] for e in await outbox_events(svc, EMAIL_REQUESTED)]
    [*_, newest] = [m for m in mails if m["template"] == template and m["to"] == to]
    return str(newest["variables"]["token"])


def gateway_verifier(svc: Harness, client: httpx.AsyncClient) -> AccessTokenVerifier:
    """The gateway's access-token verifier, on this auth service's JWKS and revocation store."""

    async def fetch_jwks() -> dict[str, Any]:
        return dict((await client.get("/api/v1/auth/jwks.json")).json())

    return AccessTokenVerifier(KeySet(fetch_jwks, min_interval=0, max_age=3600), svc.runtime.revocations,
                               issuer=ISSUER, audience=AUDIENCE)


async def accepted(verifier: AccessTokenVerifier, access_token: str) -> bool:
    """Whether the gateway lets a request with this access token through."""
    try:
        await verifier.verify(access_token)
    except InvalidAccessToken:
        return False
    return True
