"""Access tokens: EdDSA only, keys from the auth service's JWKS, claims checked, revocation honoured."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI

from amazonlite.gateway.app import GatewaySettings, Upstream, create_gateway
from amazonlite.platform.config import PlatformSettings
from amazonlite.platform.revocation import MemoryRevocationStore
from tests.gateway.support import (
    SigningKeys,
    access_claims,
    bearer,
    client_of,
    hs256_token,
    public_x,
    unsigned_token,
)

Forge = Callable[[SigningKeys], str]


def _tampered_payload(keys: SigningKeys) -> str:
    header, _, signature = keys.token(tenant="acme").split(".")
    other = unsigned_token({}, access_claims(tenant="globex")).split(".")[1]
    return f"{header}.{other}.{signature}"


FORGERIES: dict[str, Forge] = {
    "alg none": lambda keys: unsigned_token({"alg": "none", "typ": "JWT", "kid": "k1"}, access_claims()),
    "HS256 keyed with the public key from the JWKS": lambda keys: hs256_token(
        {"alg": "HS256", "typ": "JWT", "kid": "k1"}, access_claims(), public_x(keys.published["k1"]).encode()),
    "HS256 keyed with the raw public key": lambda keys: hs256_token(
        {"alg": "HS256", "typ": "JWT", "kid": "k1"}, access_claims(),
        keys.published["k1"].public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)),
    "signed by another key under a known kid": lambda keys: keys.token(key=Ed25519PrivateKey.generate()),
    "payload changed after signing": _tampered_payload,
    "expired": lambda keys: keys.token(iat=int(time.time()) - 900, exp=int(time.time()) - 60),
    "wrong audience": lambda keys: keys.token(aud="someone-else"),
    "wrong issuer": lambda keys: keys.token(iss="https://evil.example"),
    "no tenant": lambda keys: keys.token(tenant=None),
    "no jti": lambda keys: keys.token(jti=None),
    "no sub": lambda keys: keys.token(sub=None),
    "no exp": lambda keys: keys.token(exp=None),
    "roles not a list": lambda keys: keys.token(roles="platform_admin"),
    "sid not a string": lambda keys: keys.token(sid=42),
    "empty sid": lambda keys: keys.token(sid=""),
    "tenant not a tenant id": lambda keys: keys.token(tenant="Acme Corp"),
    "no kid": lambda keys: unsigned_token({"alg": "EdDSA", "typ": "JWT"}, access_claims(), b"x" * 64),
    "not a JWT": lambda keys: "not-a-token",
}


class TestForgedTokens:
    @pytest.mark.parametrize("forgery", list(FORGERIES))
    async def test_is_401_with_a_bearer_challenge(self, gateway: FastAPI, keys: SigningKeys, forgery: str) -> None:
        token = FORGERIES[forgery](keys)
        async with client_of(gateway) as client:
            answer = await client.get("/api/v1/products", headers=bearer(token))
            genuine = await client.get("/api/v1/products", headers=bearer(keys.token()))
        assert answer.status_code == 401, answer.text
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.headers["content-type"] == "application/problem+json"
        assert genuine.status_code == 200

    @pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "token"])
    async def test_an_authorization_header_that_is_not_a_bearer_token_is_401(
            self, gateway: FastAPI, authorization: str) -> None:
        async with client_of(gateway) as client:
            answer = await client.get("/api/v1/products", headers={"Authorization": authorization})
        assert answer.status_code == 401


class TestUnknownKeys:
    async def test_an_unknown_kid_refetches_the_jwks_at_most_once_per_interval(
            self, platform: PlatformSettings, auth: FastAPI, catalog: FastAPI, keys: SigningKeys) -> None:
        gateway = create_gateway(platform, [Upstream("auth", app=auth), Upstream("catalog", app=catalog)],
                                 revocations=MemoryRevocationStore(),
                                 settings=GatewaySettings(jwks_refresh_min_interval_seconds=1.0))
        stranger = Ed25519PrivateKey.generate()
        async with client_of(gateway) as client:
            assert (await client.get("/api/v1/products", headers=bearer(keys.token()))).status_code == 200
            assert auth.state.jwks_fetches == 1
            await asyncio.sleep(1.1)
            first = await client.get("/api/v1/products", headers=bearer(keys.token(kid="ghost", key=stranger)))
            assert auth.state.jwks_fetches == 2
            for kid in ("ghost", "ghost-2", "ghost-3"):  # within the interval: no more fetches
                again = await client.get("/api/v1/products", headers=bearer(keys.token(kid=kid, key=stranger)))
                assert again.status_code == 401
            assert auth.state.jwks_fetches == 2
            await asyncio.sleep(1.1)
            await client.get("/api/v1/products", headers=bearer(keys.token(kid="ghost-4", key=stranger)))
        assert first.status_code == 401
        assert auth.state.jwks_fetches == 3

    async def test_a_rotated_in_key_is_accepted_after_a_refetch(
            self, platform: PlatformSettings, auth: FastAPI, catalog: FastAPI, keys: SigningKeys) -> None:
        gateway = create_gateway(platform, [Upstream("auth", app=auth), Upstream("catalog", app=catalog)],
                                 revocations=MemoryRevocationStore(),
                                 settings=GatewaySettings(jwks_refresh_min_interval_seconds=0))
        async with client_of(gateway) as client:
            old = keys.token(kid="k1")
            assert (await client.get("/api/v1/products", headers=bearer(old))).status_code == 200
            keys.add("k2")
            rotated = await client.get("/api/v1/products", headers=bearer(keys.token(kid="k2")))
            assert rotated.status_code == 200, rotated.text
            assert (await client.get("/api/v1/products", headers=bearer(old))).status_code == 200
            # k1 retired: the next refetch drops it, and its tokens stop working though they were seen before.
            del keys.published["k1"]
            keys.add("k3")
            assert (await client.get("/api/v1/products", headers=bearer(keys.token(kid="k3")))).status_code == 200
            retired = await client.get("/api/v1/products", headers=bearer(old))
        assert retired.status_code == 401

    async def test_without_reachable_keys_a_token_cannot_be_verified_503(
            self, platform: PlatformSettings, catalog: FastAPI, keys: SigningKeys) -> None:
        gateway = create_gateway(platform, [Upstream("catalog", app=catalog)], revocations=MemoryRevocationStore())
        async with client_of(gateway) as client:
            signed_in = await client.get("/api/v1/products", headers=bearer(keys.token()))
            anonymous = await client.get("/api/v1/products")
        assert signed_in.status_code == 503
        assert signed_in.json()["type"].endswith("/service-unavailable")
        assert anonymous.status_code == 200


class TestRevocation:
    async def test_a_revoked_token_is_401_and_others_still_pass(
            self, gateway: FastAPI, keys: SigningKeys, revocations: MemoryRevocationStore) -> None:
        token, other = keys.token(jti="revoked-one"), keys.token()
        async with client_of(gateway) as client:
            assert (await client.get("/api/v1/products", headers=bearer(token))).status_code == 200
            await revocations.revoke("revoked-one", int(time.time()) + 300)
            revoked = await client.get("/api/v1/products", headers=bearer(token))
            still = await client.get("/api/v1/products", headers=bearer(other))
        assert revoked.status_code == 401
        assert "revoked" in revoked.json()["detail"]
        assert still.status_code == 200

    async def test_a_revoked_session_refuses_every_token_issued_from_it_though_verified_before(
            self, gateway: FastAPI, keys: SigningKeys, revocations: MemoryRevocationStore) -> None:
        session, other_session = str(uuid.uuid4()), str(uuid.uuid4())
        first, refreshed, other = keys.token(sid=session), keys.token(sid=session), keys.token(sid=other_session)
        async with client_of(gateway) as client:
            for token in (first, refreshed, other):  # verified once, then remembered
                assert (await client.get("/api/v1/products", headers=bearer(token))).status_code == 200
            await revocations.revoke_family(session, int(time.time()) + 300)
            answers = [await client.get("/api/v1/products", headers=bearer(token)) for token in (first, refreshed)]
            still = await client.get("/api/v1/products", headers=bearer(other))
        for answer in answers:
            assert answer.status_code == 401
            assert answer.headers["content-type"] == "application/problem+json"
            assert "revoked" in answer.json()["detail"]
        assert still.status_code == 200
