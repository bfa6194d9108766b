"""A reused refresh token ends its session everywhere, black-box through the gateway, in both
topologies: its access tokens stop working at once (not when they expire), and the account's other
sessions go on."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e import platforms
from tests.e2e.actors import PASSWORD, assert_ok, assert_problem, bearer, login, tenant_header

pytestmark = [pytest.mark.xdist_group("e2e")]

TENANT = "default"


def test_a_reused_refresh_token_revokes_the_access_tokens_of_its_session_only(platform: platforms.Platform) -> None:
    with httpx.Client(base_url=f"{platform.base_url}/api/v1", timeout=15) as api:
        email = f"sessions-{uuid.uuid4().hex[:8]}@example.com"
        assert_ok(api.post("/auth/signup", json={"email": email, "password": PASSWORD, "name": "Two Sessions"},
                           headers=tenant_header(TENANT)), 201)
        stolen = login(api, email, PASSWORD, TENANT)  # two logins: two sessions (refresh-token families)
        other = login(api, email, PASSWORD, TENANT)
        rotated = assert_ok(api.post("/auth/refresh", json={"refresh_token": stolen["refresh_token"]}))
        for tokens in (stolen, rotated, other):
            assert assert_ok(api.get("/auth/me", headers=bearer(tokens["access_token"])))["tenant_id"] == TENANT

        reused = assert_problem(api.post("/auth/refresh", json={"refresh_token": stolen["refresh_token"]}), 401)
        assert reused["type"].endswith("/refresh-token-reused")

        for tokens in (stolen, rotated):
            refused = assert_problem(api.get("/auth/me", headers=bearer(tokens["access_token"])), 401)
            assert "revoked" in refused["detail"]
        assert assert_ok(api.get("/auth/me", headers=bearer(other["access_token"])))["tenant_id"] == TENANT
        assert_ok(api.post("/auth/refresh", json={"refresh_token": other["refresh_token"]}))
