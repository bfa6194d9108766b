"""A service reads a tenant's settings from the real tenants service (platform/tenant_settings.py):
cached for a while, one call for concurrent lookups, the last known settings while tenants is down."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from amazonlite.platform.clients import ServiceDirectory
from amazonlite.platform.errors import AppError
from amazonlite.platform.tenant_settings import (
    CurrentTenantSettings,
    TenantNotKnown,
    TenantSettingsConfig,
    TenantSettingsLookup,
    TenantSettingsUnavailable,
    tenant_settings,
)
from amazonlite.services.tenants.app import SERVICE as TENANTS
from tests.support.harness import Harness, running_service

TENANTS_PATH = "/api/v1/admin/tenants"


class Tenants:
    """The tenants service's app as the caller reaches it, counting the calls; `down` makes every
    call fail as a tenants service whose database is gone answers (503)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls = 0
        self.down = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls += 1
            if self.down:
                await send({"type": "http.response.start", "status": 503,
                            "headers": [(b"content-type", b"application/problem+json")]})
                await send({"type": "http.response.body", "body": b'{"status": 503}'})
                return
        await self.app(scope, receive, send)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    harness: Harness
    tenants: Tenants
    clock: Clock
    lookup: TenantSettingsLookup

    def admin(self) -> httpx.AsyncClient:
        return self.harness.client(tenant="default", user_id=uuid.uuid4(), roles=("platform_admin",))


@pytest.fixture
async def world(sqlite_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with running_service(TENANTS, sqlite_url, tmp_path) as harness:
        tenants = Tenants(harness.app)
        directory = ServiceDirectory("cart", harness.runtime.internal_tokens)
        directory.register("tenants", app=tenants)
        clock = Clock()
        lookup = TenantSettingsLookup(directory, TenantSettingsConfig(ttl_seconds=30, unknown_ttl_seconds=5),
                                      clock=clock)
        try:
            yield World(harness, tenants, clock, lookup)
        finally:
            await directory.aclose()


async def create_tenant(world: World, **fields: Any) -> str:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    async with world.admin() as client:
        response = await client.post(TENANTS_PATH, json={"id": tenant, "name": "Shop", **fields})
    assert response.status_code == 201, response.text
    return tenant


async def patch_tenant(world: World, tenant: str, **fields: Any) -> None:
    async with world.admin() as client:
        response = await client.patch(f"{TENANTS_PATH}/{tenant}", json=fields)
    assert response.status_code == 200, response.text


class TestLookup:
    async def test_reads_the_settings_a_service_needs(self, world: World) -> None:
        tenant = await create_tenant(world, currency="EUR", tax_rate_bp=1900, reservation_minutes=7,
                                     payment_minutes=20, feature_flags={"reviews": True})
        settings = await world.lookup.get(tenant)
        assert (settings.tenant_id, settings.currency, settings.tax_rate_bp) == (tenant, "EUR", 1900)
        assert (settings.reservation_minutes, settings.payment_minutes) == (7, 20)
        assert settings.active and settings.flag("reviews") and not settings.flag("coupons")
        with pytest.raises(TypeError):
            settings.feature_flags["coupons"] = True  # type: ignore[index]

    async def test_a_change_is_seen_once_the_cached_copy_expires(self, world: World) -> None:
        tenant = await create_tenant(world, tax_rate_bp=500)
        assert (await world.lookup.get(tenant)).tax_rate_bp == 500
        await patch_tenant(world, tenant, tax_rate_bp=1800, status="suspended")
        world.clock.now += 29
        assert (await world.lookup.get(tenant)).tax_rate_bp == 500
        world.clock.now += 2
        changed = await world.lookup.get(tenant)
        assert (changed.tax_rate_bp, changed.active) == (1800, False)

    async def test_concurrent_lookups_of_one_tenant_make_one_call(self, world: World) -> None:
        first, second = await create_tenant(world), await create_tenant(world)
        before = world.tenants.calls
        results = await asyncio.gather(*(world.lookup.get(t) for t in [first] * 20 + [second] * 20))
        assert {r.tenant_id for r in results} == {first, second}
        assert world.tenants.calls - before == 2

    async def test_an_unknown_tenant_is_404_and_asked_again_later(self, world: World) -> None:
        with pytest.raises(TenantNotKnown) as refused:
            await world.lookup.get("nobody")
        assert refused.value.status == 404
        await create_tenant(world)  # any call: the unknown answer is still kept
        with pytest.raises(TenantNotKnown):
            await world.lookup.get("nobody")
        async with world.admin() as client:
            assert (await client.post(TENANTS_PATH, json={"id": "nobody", "name": "Late"})).status_code == 201
        world.clock.now += 6
        assert (await world.lookup.get("nobody")).tenant_id == "nobody"


class TestTenantsDown:
    async def test_the_last_known_settings_are_used_while_tenants_cannot_answer(self, world: World) -> None:
        tenant = await create_tenant(world, currency="USD")
        await world.lookup.get(tenant)
        world.tenants.down = True
        world.clock.now += 3600
        assert (await world.lookup.get(tenant)).currency == "USD"
        # Asked again after a short pause, not at every lookup.
        calls = world.tenants.calls
        await world.lookup.get(tenant)
        assert world.tenants.calls == calls
        world.tenants.down = False
        await patch_tenant(world, tenant, currency="EUR")
        world.clock.now += 3
        assert (await world.lookup.get(tenant)).currency == "EUR"

    async def test_a_tenant_never_seen_is_a_503_problem(self, world: World) -> None:
        tenant = await create_tenant(world)
        world.tenants.down = True
        with pytest.raises(TenantSettingsUnavailable) as refused:
            await world.lookup.get(tenant)
        error: AppError = refused.value
        assert (error.status, error.type, error.headers["Retry-After"]) == (503, "tenant-settings-unavailable", "2")

    async def test_without_a_tenants_service_at_all_it_is_503(self, world: World) -> None:
        lookup = TenantSettingsLookup(ServiceDirectory("cart", world.harness.runtime.internal_tokens))
        with pytest.raises(TenantSettingsUnavailable):
            await lookup.get("default")


class TestRuntime:
    async def test_a_runtime_keeps_one_lookup_over_its_directory(self, world: World) -> None:
        runtime = world.harness.runtime
        runtime.services.register("tenants", app=world.tenants)
        lookup = tenant_settings(runtime)
        assert tenant_settings(runtime) is lookup
        assert (await lookup.get("default")).currency == "INR"

    async def test_an_endpoint_gets_the_callers_tenant(self, world: World) -> None:
        runtime = world.harness.runtime
        runtime.services.register("tenants", app=world.tenants)
        tenant = await create_tenant(world, currency="GBP")
        app = FastAPI()
        app.state.runtime = runtime

        @app.get("/shop")
        async def shop(settings: CurrentTenantSettings) -> dict[str, str]:
            return {"currency": settings.currency}

        token = world.harness.client(tenant=tenant).headers
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                     headers=token) as client:
            assert (await client.get("/shop")).json() == {"currency": "GBP"}
