"""A tenant's order deadlines: `reservation_minutes` (how long stock is held for an unpaid order) and
`payment_minutes` (how long the customer has to pay), 1-1440, 15 by default."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from sqlalchemy import column, insert, select, table

from amazonlite.platform.db import create_engine, utcnow
from amazonlite.platform.migrations import upgrade
from amazonlite.services.tenants.app import SERVICE
from amazonlite.services.tenants.models import TenantRow
from tests.services.tenants.test_tenants import TENANTS, create, platform_admin
from tests.support.harness import running_service

FIRST_REVISION = "cb2b76939874"


class TestDeadlines:
    async def test_default_to_15_minutes_and_keep_what_is_given(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            plain = await create(svc, "acme")
            given = await create(svc, "globex", reservation_minutes=5, payment_minutes=1440)
            async with platform_admin(svc) as client:
                default = (await client.get(f"{TENANTS}/default")).json()
        assert (plain["reservation_minutes"], plain["payment_minutes"]) == (15, 15)
        assert (given["reservation_minutes"], given["payment_minutes"]) == (5, 1440)
        assert (default["reservation_minutes"], default["payment_minutes"]) == (15, 15)

    async def test_a_tenant_admin_changes_them_within_bounds(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await create(svc, "acme")
            async with svc.client(tenant="acme", user_id=uuid.uuid4(), roles=("tenant_admin",)) as client:
                changed = await client.patch(f"{TENANTS}/acme", json={"reservation_minutes": 30})
                refused = [await client.patch(f"{TENANTS}/acme", json=body) for body in (
                    {"reservation_minutes": 0}, {"payment_minutes": 1441}, {"payment_minutes": 2.5},
                    {"reservation_minutes": "10"}, {"payment_minutes": True})]
                body = (await client.get(f"{TENANTS}/acme")).json()
        assert changed.status_code == 200, changed.text
        assert [r.status_code for r in refused] == [422] * len(refused)
        assert (body["reservation_minutes"], body["payment_minutes"]) == (30, 15)

    async def test_out_of_bounds_at_creation_is_422(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, platform_admin(svc) as client:
            for field, value in (("reservation_minutes", 0), ("reservation_minutes", 1441), ("payment_minutes", -1)):
                response = await client.post(TENANTS, json={"id": "acme", "name": "Acme", field: value})
                assert response.status_code == 422, (field, value, response.text)
            assert (await client.get(f"{TENANTS}/acme")).status_code == 404

    async def test_tenants_created_before_the_migration_get_15(self, any_database_url: str, tmp_path: Path) -> None:
        await asyncio.to_thread(upgrade, SERVICE.name, SERVICE.migrations, any_database_url, FIRST_REVISION)
        engine = create_engine(any_database_url)
        try:
            # The table as the first revision made it.
            old = table("tenants", *(column(c.name, c.type) for c in TenantRow.__table__.c
                                     if not c.name.endswith("_minutes")))
            now = utcnow()
            async with engine.begin() as conn:
                await conn.execute(insert(old).values(
                    tenant_id="old", name="Old", currency="INR", tax_rate_bp=0, feature_flags={},
                    rate_limits={"tenant_per_minute": 10, "client_per_minute": 1}, status="active",
                    created_at=now, updated_at=now))
            await asyncio.to_thread(upgrade, SERVICE.name, SERVICE.migrations, any_database_url)
            async with engine.connect() as conn:
                row = (await conn.execute(select(TenantRow.reservation_minutes, TenantRow.payment_minutes)
                                          .where(TenantRow.tenant_id == "old"))).one()
        finally:
            await engine.dispose()
        assert tuple(row) == (15, 15)
