"""The gateway admits requests of tenants that exist and are active, as the tenants service says."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from amazonlite.gateway.app import GatewaySettings, Upstream, create_gateway
from amazonlite.platform.config import PlatformSettings
from amazonlite.platform.resilience import ResilienceSettings
from amazonlite.platform.revocation import MemoryRevocationStore
from amazonlite.services.tenants.app import SERVICE as TENANTS_SERVICE
from tests.gateway.support import SigningKeys, bearer, client_of, echo_app, tenant_settings, tenants_app
from tests.support.harness import running_service

PRODUCTS = "/api/v1/products"


def gateway_with(platform: PlatformSettings, auth: FastAPI, tenants: FastAPI, **settings: Any) -> FastAPI:
    return create_gateway(platform, [Upstream("auth", app=auth), Upstream("tenants", app=tenants),
                                     Upstream("catalog", app=echo_app("catalog", platform))],
                          revocations=MemoryRevocationStore(),
                          settings=GatewaySettings(jwks_refresh_min_interval_seconds=60, **settings),
                          resilience=ResilienceSettings(retries=0, breaker_failure_threshold=100))


def registry(*tenants: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in tenants}


class TestUnknownTenant:
    async def test_anonymous_request_naming_an_unknown_tenant_is_404(
            self, platform: PlatformSettings, auth: FastAPI) -> None:
        tenants = tenants_app(platform, registry(tenant_settings("default"), tenant_settings("acme")))
        async with client_of(gateway_with(platform, auth, tenants)) as client:
            unknown = await client.get(PRODUCTS, headers={"X-Tenant-ID": "nope"})
            known = await client.get(PRODUCTS, headers={"X-Tenant-ID": "acme"})
            default = await client.get(PRODUCTS)
        assert unknown.status_code == 404
        assert unknown.headers["content-type"] == "application/problem+json"
        assert unknown.json()["type"].endswith("/unknown-tenant")
        assert (known.status_code, known.json()["principal"]["tenant"]) == (200, "acme")
        assert default.status_code == 200

    async def test_token_of_an_unknown_tenant_is_404(self, platform: PlatformSettings, auth: FastAPI,
                                                     keys: SigningKeys) -> None:
        tenants = tenants_app(platform, registry(tenant_settings("default")))
        async with client_of(gateway_with(platform, auth, tenants)) as client:
            answer = await client.get(PRODUCTS, headers=bearer(keys.token(tenant="gone")))
        assert answer.status_code == 404
        assert answer.json()["type"].endswith("/unknown-tenant")


class TestSuspendedTenant:
    async def test_every_request_of_a_suspended_tenant_is_403(self, platform: PlatformSettings, auth: FastAPI,
                                                              keys: SigningKeys) -> None:
        tenants = tenants_app(platform, registry(tenant_settings("default"),
                                                 tenant_settings("acme", status="suspended")))
        async with client_of(gateway_with(platform, auth, tenants)) as client:
            anonymous = await client.get(PRODUCTS, headers={"X-Tenant-ID": "acme"})
            signed_in = await client.get(PRODUCTS, headers=bearer(keys.token(tenant="acme")))
        for answer in (anonymous, signed_in):
            assert answer.status_code == 403
            assert answer.json()["type"].endswith("/tenant-suspended")


class TestSettingsCache:
    async def test_settings_are_read_once_per_ttl_even_under_concurrency(
            self, platform: PlatformSettings, auth: FastAPI) -> None:
        tenants = tenants_app(platform, registry(tenant_settings("default"), tenant_settings("acme")))
        async with client_of(gateway_with(platform, auth, tenants, tenant_cache_seconds=0.3)) as client:
            answers = await asyncio.gather(*(client.get(PRODUCTS, headers={"X-Tenant-ID": "acme"})
                                             for _ in range(10)))
            assert [a.status_code for a in answers] == [200] * 10
            assert tenants.state.lookups == 1
            await asyncio.sleep(0.35)
            assert (await client.get(PRODUCTS, headers={"X-Tenant-ID": "acme"})).status_code == 200
            assert tenants.state.lookups == 2

    async def test_a_change_shows_after_the_ttl(self, platform: PlatformSettings, auth: FastAPI) -> None:
        known = registry(tenant_settings("default"), tenant_settings("acme"))
        tenants = tenants_app(platform, known)
        async with client_of(gateway_with(platform, auth, tenants, tenant_cache_seconds=0.2)) as client:
            assert (await client.get(PRODUCTS, headers={"X-Tenant-ID": "acme"})).status_code == 200
            known["acme"] = tenant_settings("acme", status="suspended")
            await asyncio.sleep(0.25)
            assert (await client.get(PRODUCTS, headers={"X-Tenant-ID": "acme"})).status_code == 403


class TestTenantsServiceDown:
    async def test_last_known_settings_are_used_and_an_unseen_tenant_is_503(
            self, platform: PlatformSettings, auth: FastAPI) -> None:
        tenants = tenants_app(platform, registry(tenant_settings("default"), tenant_settings("acme"),
                                                 tenant_settings("globex", status="suspended")))
        async with client_of(gateway_with(platform, auth, tenants, tenant_cache_seconds=0.1)) as client:
            assert (await client.get(PRODUCTS, headers={"X-Tenant-ID": "acme"})).status_code == 200
            assert (await client.get(PRODUCTS, headers={"X-Tenant-ID": "globex"})).status_code == 403
            tenants.state.failing = True
            await asyncio.sleep(0.15)
            stale = await client.get(PRODUCTS, headers={"X-Tenant-ID": "acme"})
            still_suspended = await client.get(PRODUCTS, headers={"X-Tenant-ID": "globex"})
            unseen = await client.get(PRODUCTS, headers={"X-Tenant-ID": "initech"})
        assert stale.status_code == 200
        assert still_suspended.status_code == 403
        assert unseen.status_code == 503
        assert unseen.json()["type"].endswith("/service-unavailable")
        assert "retry-after" in unseen.headers


class TestWithTheTenantsService:
    async def test_a_tenant_created_through_the_gateway_is_admitted_and_suspension_applies(
            self, platform: PlatformSettings, auth: FastAPI, keys: SigningKeys, sqlite_url: str,
            tmp_path: Path) -> None:
        async with running_service(TENANTS_SERVICE, sqlite_url, tmp_path, platform=platform) as svc:
            gateway = gateway_with(platform, auth, svc.app, tenant_cache_seconds=0.1,
                                   unknown_tenant_cache_seconds=0.1)
            admin = bearer(keys.token(tenant="default", roles=["platform_admin"], sub=str(uuid.uuid4())))
            async with client_of(gateway) as client:
                before = await client.get(PRODUCTS, headers={"X-Tenant-ID": "acme"})
                created = await client.post("/api/v1/admin/tenants", headers=admin,
                                            json={"id": "acme", "name": "Acme"})
                assert created.status_code == 201, created.text
                await asyncio.sleep(0.15)
                after = await client.get(PRODUCTS, headers={"X-Tenant-ID": "acme"})
                suspended = await client.patch("/api/v1/admin/tenants/acme", headers=admin,
                                               json={"status": "suspended"})
                assert suspended.status_code == 200, suspended.text
                await asyncio.sleep(0.15)
                refused = await client.get(PRODUCTS, headers={"X-Tenant-ID": "acme"})
        assert before.status_code == 404
        assert after.status_code == 200
        assert refused.status_code == 403
