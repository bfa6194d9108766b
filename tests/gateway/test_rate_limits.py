"""Rate limits per tenant and per client, from the tenant's settings, in memory or shared in Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from amazonlite.gateway.app import GatewaySettings, Upstream, create_gateway
from amazonlite.platform.config import PlatformSettings
from amazonlite.platform.revocation import MemoryRevocationStore
from tests.gateway.support import SigningKeys, bearer, echo_app, tenant_settings, tenants_app
from tests.support.harness import fast_platform_settings

PRODUCTS = "/api/v1/products"
# A test that counts requests runs them all in one window, however slow the machine (with a window of
# 1 s, four requests on a loaded CI machine could straddle two); the one test that waits for the
# window to pass uses a short one (3 s: three requests fit in it on a loaded machine).
COUNTING_WINDOW = 60
WINDOW = 3


def limited_gateway(platform: PlatformSettings, auth: FastAPI, *tenants: dict[str, Any],
                    window: int = COUNTING_WINDOW) -> FastAPI:
    registry = {t["id"]: t for t in (tenant_settings("default"), *tenants)}
    return create_gateway(platform, [Upstream("auth", app=auth),
                                     Upstream("tenants", app=tenants_app(platform, registry)),
                                     Upstream("catalog", app=echo_app("catalog", platform))],
                          revocations=MemoryRevocationStore(),
                          settings=GatewaySettings(rate_limit_window_seconds=window))


@asynccontextmanager
async def client_from(gateway: FastAPI, address: str = "203.0.113.7") -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway, client=(address, 40000))
    async with gateway.router.lifespan_context(gateway), httpx.AsyncClient(
            transport=transport, base_url="http://gateway") as client:
        yield client


async def get(client: httpx.AsyncClient, tenant: str = "acme", **headers: str) -> httpx.Response:
    return await client.get(PRODUCTS, headers={"X-Tenant-ID": tenant, **headers})


class TestClientLimit:
    async def test_over_the_limit_is_429_with_headers_and_it_recovers_after_the_window(
            self, platform: PlatformSettings, auth: FastAPI) -> None:
        gateway = limited_gateway(platform, auth, tenant_settings("acme", client_per_minute=2), window=WINDOW)
        async with client_from(gateway) as client:
            first, second, third = [await get(client) for _ in range(3)]
            await asyncio.sleep(WINDOW + 0.1)
            later = await get(client)
        assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
        assert [a.headers["ratelimit-limit"] for a in (first, second, third)] == ["2", "2", "2"]
        assert [a.headers["ratelimit-remaining"] for a in (first, second, third)] == ["1", "0", "0"]
        assert 1 <= int(third.headers["ratelimit-reset"]) <= WINDOW
        assert 1 <= int(third.headers["retry-after"]) <= WINDOW
        assert third.headers["content-type"] == "application/problem+json"
        assert third.json()["type"].endswith("/rate-limited")
        assert later.status_code == 200

    async def test_each_client_has_its_own_count(self, platform: PlatformSettings, auth: FastAPI,
                                                 keys: SigningKeys) -> None:
        gateway = limited_gateway(platform, auth, tenant_settings("acme", client_per_minute=1))
        ada, bob = (bearer(keys.token(tenant="acme", sub=str(uuid.uuid4()))) for _ in range(2))
        async with client_from(gateway) as client:
            answers = [await get(client, **ada), await get(client, **ada), await get(client, **bob),
                       await get(client), await get(client)]
        # Signed in: counted by subject; anonymous: by address.
        assert [a.status_code for a in answers] == [200, 429, 200, 200, 429]

    async def test_anonymous_clients_are_counted_by_address(self, platform: PlatformSettings,
                                                            auth: FastAPI) -> None:
        gateway = limited_gateway(platform, auth, tenant_settings("acme", client_per_minute=1))
        async with client_from(gateway, "198.51.100.1") as one, client_from(gateway, "198.51.100.2") as two:
            answers = [await get(one), await get(two), await get(one)]
        assert [a.status_code for a in answers] == [200, 200, 429]


class TestTenantLimit:
    async def test_the_tenant_limit_covers_all_its_clients_and_only_that_tenant(
            self, platform: PlatformSettings, auth: FastAPI, keys: SigningKeys) -> None:
        gateway = limited_gateway(platform, auth, tenant_settings("acme", tenant_per_minute=3, client_per_minute=10),
                                  tenant_settings("globex", tenant_per_minute=3, client_per_minute=10))
        async with client_from(gateway) as client:
            acme = [await get(client, **bearer(keys.token(tenant="acme", sub=str(uuid.uuid4()))))
                    for _ in range(4)]
            globex = await get(client, "globex")
        assert [a.status_code for a in acme] == [200, 200, 200, 429]
        assert acme[3].headers["ratelimit-limit"] == "3"
        assert "this tenant" in acme[3].json()["detail"]
        assert globex.status_code == 200

    async def test_ops_endpoints_are_not_limited(self, platform: PlatformSettings, auth: FastAPI) -> None:
        registry = {"default": tenant_settings("default", tenant_per_minute=1, client_per_minute=1)}
        gateway = create_gateway(platform, [Upstream("auth", app=auth),
                                            Upstream("tenants", app=tenants_app(platform, registry))],
                                 revocations=MemoryRevocationStore(),
                                 settings=GatewaySettings(rate_limit_window_seconds=COUNTING_WINDOW))
        async with client_from(gateway) as client:
            answers = [await client.get(path) for path in ("/health/live", "/metrics", "/openapi.json", "/docs") * 2]
        assert [a.status_code for a in answers] == [200] * 8
        assert all("ratelimit-limit" not in a.headers for a in answers)


class TestSharedInRedis:
    @pytest.mark.xdist_group("redis")
    async def test_two_gateways_share_the_counts(self, tmp_path: Any, keys: SigningKeys) -> None:
        from tests.gateway.support import auth_app

        platform = fast_platform_settings(tmp_path, redis_url="redis://127.0.0.1:6379/0",
                                          redis_prefix=f"test-{uuid.uuid4().hex}")
        auth = auth_app(platform, keys)
        one = limited_gateway(platform, auth, tenant_settings("acme", client_per_minute=3))
        two = limited_gateway(platform, auth, tenant_settings("acme", client_per_minute=3))
        async with client_from(one) as first, client_from(two) as second:
            answers = [await get(first), await get(second), await get(first), await get(second)]
            other_memory = limited_gateway(fast_platform_settings(tmp_path), auth,
                                           tenant_settings("acme", client_per_minute=3))
            async with client_from(other_memory) as third:
                separate = await get(third)
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[2].headers["ratelimit-remaining"] == "0"
        assert separate.status_code == 200

    async def test_requests_are_admitted_while_redis_is_unreachable(self, tmp_path: Any, keys: SigningKeys) -> None:
        from tests.gateway.support import auth_app, free_port

        platform = fast_platform_settings(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
        gateway = limited_gateway(platform, auth_app(platform, keys), tenant_settings("acme", client_per_minute=1))
        async with client_from(gateway) as client:
            answers = [await get(client) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert all("ratelimit-limit" not in a.headers for a in answers)
