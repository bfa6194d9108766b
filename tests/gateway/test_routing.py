"""Routing by prefix, the caller's tenant, and what the upstream receives (embedded upstreams)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi import FastAPI

from amazonlite.contracts import UserRegisteredV1
from amazonlite.gateway.app import ROUTES, GatewaySettings, Upstream, create_gateway
from amazonlite.gateway.routing import RouteTable
from amazonlite.platform.config import PlatformSettings
from amazonlite.platform.revocation import MemoryRevocationStore
from amazonlite.platform.security import InternalTokens, Principal
from amazonlite.services.users.app import SERVICE as USERS
from tests.gateway.support import SigningKeys, bearer, client_of, received
from tests.support.harness import running_service


class TestRouteTable:
    def test_the_platform_routes(self) -> None:
        table = RouteTable(ROUTES)
        owners = {path: table.resolve(path) for path in (
            "/api/v1/auth/login", "/api/v1/users/me", "/api/v1/products", "/api/v1/products/42",
            "/api/v1/categories", "/api/v1/brands/7")}
        assert {path: route.service if route else None for path, route in owners.items()} == {
            "/api/v1/auth/login": "auth", "/api/v1/users/me": "users", "/api/v1/products": "catalog",
            "/api/v1/products/42": "catalog", "/api/v1/categories": "catalog", "/api/v1/brands/7": "catalog"}

    def test_a_prefix_matches_whole_segments_only(self) -> None:
        table = RouteTable(ROUTES)
        assert table.resolve("/api/v1/productsale") is None
        assert table.resolve("/api/v1") is None
        assert table.resolve("/api/v2/products") is None

    def test_the_most_specific_prefix_wins_and_a_placeholder_matches_one_segment(self) -> None:
        table = RouteTable({"/api/v1/products": "catalog", "/api/v1/products/{id}/reviews": "reviews"})
        assert table.resolve("/api/v1/products/42/reviews").service == "reviews"
        assert table.resolve("/api/v1/products/42/reviews/9").service == "reviews"
        assert table.resolve("/api/v1/products/42").service == "catalog"
        assert table.resolve("/api/v1/products/42/variants").service == "catalog"


class TestRouting:
    async def test_each_prefix_reaches_its_service_with_method_path_query_and_body(self, gateway: FastAPI) -> None:
        async with client_of(gateway) as client:
            for path, service in (("/api/v1/products/42", "catalog"), ("/api/v1/categories", "catalog"),
                                  ("/api/v1/brands", "catalog"), ("/api/v1/auth/signup", "auth")):
                answer = await client.post(path + "?limit=5&cursor=a%2Fb", content=b'{"name": "x"}',
                                           headers={"content-type": "application/json"})
                assert answer.status_code == 200, answer.text
                body = answer.json()
                assert (body["service"], body["method"], body["path"]) == (service, "POST", path)
                assert body["query"] == "limit=5&cursor=a%2Fb"
                assert body["body"] == '{"name": "x"}'

    @pytest.mark.parametrize("path", ["/api/v1/nothing", "/api/v1/productsale", "/api/v2/products", "/nothing"])
    async def test_an_unknown_path_is_a_404_problem(self, gateway: FastAPI, path: str) -> None:
        async with client_of(gateway) as client:
            answer = await client.get(path)
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"].endswith("/not-found")

    async def test_a_routed_service_missing_from_this_deployment_is_404(self, gateway: FastAPI) -> None:
        async with client_of(gateway) as client:
            answer = await client.get("/api/v1/users/me")  # users is not among this gateway's upstreams
        assert answer.status_code == 404
        assert answer.json()["type"].endswith("/not-found")


class TestTenant:
    async def test_anonymous_tenant_comes_from_the_header_or_is_default(self, gateway: FastAPI) -> None:
        async with client_of(gateway) as client:
            named = await client.get("/api/v1/products", headers={"X-Tenant-ID": "acme"})
            unnamed = await client.get("/api/v1/products")
        assert named.json()["principal"] == {"tenant": "acme", "user_id": None, "roles": [], "token_id": None,
                                             "token_expires_at": None, "caller": "gateway",
                                             "client_address": "127.0.0.1"}
        assert unnamed.json()["principal"]["tenant"] == "default"

    @pytest.mark.parametrize("tenant", ["Acme", "acme_corp", "-acme", "", "a" * 65])
    async def test_a_bad_tenant_header_is_400(self, gateway: FastAPI, tenant: str) -> None:
        async with client_of(gateway) as client:
            answer = await client.get("/api/v1/products", headers={"X-Tenant-ID": tenant})
        assert answer.status_code == 400
        assert answer.json()["type"].endswith("/invalid-tenant")

    async def test_a_header_contradicting_the_token_is_403(self, gateway: FastAPI, keys: SigningKeys) -> None:
        token = keys.token(tenant="acme")
        async with client_of(gateway) as client:
            contradicting = await client.get("/api/v1/products", headers={**bearer(token), "X-Tenant-ID": "globex"})
            matching = await client.get("/api/v1/products", headers={**bearer(token), "X-Tenant-ID": "acme"})
            absent = await client.get("/api/v1/products", headers=bearer(token))
        assert contradicting.status_code == 403
        assert contradicting.json()["type"].endswith("/tenant-mismatch")
        assert matching.json()["principal"]["tenant"] == "acme"
        assert absent.json()["principal"]["tenant"] == "acme"


class TestWhatTheUpstreamReceives:
    async def test_a_valid_internal_token_for_the_caller_and_never_the_clients(
            self, gateway: FastAPI, keys: SigningKeys, platform: PlatformSettings) -> None:
        user_id, jti = str(uuid.uuid4()), uuid.uuid4().hex
        token = keys.token(sub=user_id, tenant="acme", roles=["customer", "tenant_admin"], jti=jti, exp=2_000_000_000)
        # A forged token, even one signed with the real secret, naming another tenant and user.
        tokens = InternalTokens(platform.internal_token_secret)
        forged = tokens.mint(Principal(tenant_id="globex", user_id="admin", roles=frozenset({"platform_admin"})),
                             audience="catalog", caller="gateway")
        async with client_of(gateway) as client:
            answer = await client.get("/api/v1/products", headers={**bearer(token), "X-Internal-Token": forged})
            anonymous = await client.get("/api/v1/products", headers={"X-Internal-Token": forged})
        assert answer.status_code == 200, answer.text
        assert received(answer, "x-internal-token") != [forged]
        assert len(received(answer, "x-internal-token")) == 1
        assert answer.json()["principal"] == {
            "tenant": "acme", "user_id": user_id, "roles": ["customer", "tenant_admin"], "token_id": jti,
            "token_expires_at": 2_000_000_000, "caller": "gateway", "client_address": "127.0.0.1"}
        assert received(answer, "authorization") == []  # the access token stays at the gateway
        assert anonymous.json()["principal"]["user_id"] is None
        assert anonymous.json()["principal"]["tenant"] == "default"

    async def test_the_internal_token_is_for_the_target_service_only(
            self, gateway: FastAPI, platform: PlatformSettings) -> None:
        async with client_of(gateway) as client:
            answer = await client.get("/api/v1/products")
        [internal] = received(answer, "x-internal-token")
        tokens = InternalTokens(platform.internal_token_secret)
        assert tokens.verify(internal, audience="catalog").tenant_id == "default"
        with pytest.raises(Exception, match="not valid"):
            tokens.verify(internal, audience="users")

    async def test_the_correlation_id_is_echoed_and_forwarded(self, gateway: FastAPI) -> None:
        async with client_of(gateway) as client:
            given = await client.get("/api/v1/products", headers={"X-Correlation-ID": "order-flow.42"})
            minted = await client.get("/api/v1/products")
        assert given.headers.get_list("x-correlation-id") == ["order-flow.42"]
        assert received(given, "x-correlation-id") == ["order-flow.42"]
        [minted_id] = minted.headers.get_list("x-correlation-id")
        assert received(minted, "x-correlation-id") == [minted_id]

    async def test_the_trace_context_continues_into_the_upstream(self, gateway: FastAPI) -> None:
        trace_id = uuid.uuid4().hex
        async with client_of(gateway) as client:
            answer = await client.get("/api/v1/products", headers={"traceparent": f"00-{trace_id}-{'1' * 16}-01"})
        [traceparent] = received(answer, "traceparent")
        assert traceparent.split("-")[1] == trace_id

    async def test_a_problem_from_the_gateway_carries_the_correlation_id(self, gateway: FastAPI) -> None:
        async with client_of(gateway) as client:
            answer = await client.get("/api/v1/nothing", headers={"X-Correlation-ID": "c-1"})
        assert answer.json()["correlation_id"] == "c-1"
        assert answer.headers.get_list("x-correlation-id") == ["c-1"]


class TestRealService:
    """The users service accepts what the gateway mints: a signed-in user reads their profile."""

    async def test_a_signed_in_user_reads_their_profile(self, sqlite_url: str, tmp_path: Path,
                                                        platform: PlatformSettings, auth: FastAPI,
                                                        keys: SigningKeys) -> None:
        user_id = uuid.uuid4()
        async with running_service(USERS, sqlite_url, tmp_path, platform=platform) as users:
            await users.deliver(UserRegisteredV1(user_id=user_id, email="ada@example.com", name="Ada",
                                                 roles=["customer"]), tenant="acme")
            gateway = create_gateway(platform, [Upstream("auth", app=auth), Upstream("users", app=users.app)],
                                     revocations=MemoryRevocationStore(), settings=GatewaySettings())
            async with client_of(gateway) as client:
                me = await client.get("/api/v1/users/me", headers=bearer(keys.token(sub=str(user_id), tenant="acme")))
                other_tenant = await client.get("/api/v1/users/me",
                                                headers=bearer(keys.token(sub=str(user_id), tenant="globex")))
                anonymous = await client.get("/api/v1/users/me", headers={"X-Tenant-ID": "acme"})
                updated = await client.patch("/api/v1/users/me", json={"name": "Ada L."},
                                             headers=bearer(keys.token(sub=str(user_id), tenant="acme")))
        assert me.status_code == 200, me.text
        assert me.json()["email"] == "ada@example.com"
        assert me.headers.get_list("x-correlation-id") == [me.headers["x-correlation-id"]]
        assert other_tenant.status_code == 404
        assert anonymous.status_code == 401
        assert updated.json()["name"] == "Ada L."
