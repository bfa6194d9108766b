"""The sweeper releases reservations whose time is up, once each, however many sweepers run."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from amazonlite.platform.db import utcnow
from amazonlite.services.inventory.app import SERVICE
from amazonlite.services.inventory.tasks import expire_reservations
from tests.services.inventory.factories import (
    assert_ledger_matches_stock,
    know,
    order_cancelled,
    order_confirmed,
    order_created,
    outbox,
    stock,
    stock_rows,
)
from tests.support.harness import running_service


class TestExpiry:
    async def test_a_reservation_past_its_time_is_released_as_expired(self, sqlite_url: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AMAZONLITE_INVENTORY_RESERVATION_MINUTES", "0.0005")  # 30 ms
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await know(svc, "A-1")
            await stock(svc, "A-1", units=5)
            order, later = order_created(("A-1", 2)), order_created(("A-1", 1))
            await svc.deliver(order)
            [reserved] = await outbox(svc, "inventory.reserved.v1")
            expires = dt.datetime.fromisoformat(reserved["payload"]["expires_at"])
            assert expires - utcnow() < dt.timedelta(seconds=1)
            await asyncio.sleep(0.05)
            await svc.deliver(later)  # not expired yet when the sweeper runs

            assert await expire_reservations(svc.runtime) == 1
            [released] = await outbox(svc, "inventory.released.v1")
            assert released["aggregate_id"] == str(order.order_id)
            assert released["payload"]["reason"] == "expired"
            assert released["payload"]["lines"] == [{"sku": "A-1", "quantity": 2}]
            assert await stock_rows(svc) == {("A-1", "default"): (5, 1)}

            # Paid too late: the confirmation deducts nothing.
            await svc.deliver(order_confirmed(order.order_id))
            assert await stock_rows(svc) == {("A-1", "default"): (5, 1)}
            assert await expire_reservations(svc.runtime, now=utcnow() - dt.timedelta(minutes=1)) == 0
            await assert_ledger_matches_stock(svc)

    async def test_a_confirmed_or_released_reservation_is_left_alone(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await know(svc, "A-1")
            await stock(svc, "A-1", units=5)
            paid, cancelled = order_created(("A-1", 2)), order_created(("A-1", 1))
            await svc.deliver(paid)
            await svc.deliver(cancelled)
            await svc.deliver(order_confirmed(paid.order_id))
            await svc.deliver(order_cancelled(cancelled.order_id))
            before = await stock_rows(svc)
            assert before == {("A-1", "default"): (3, 0)}

            assert await expire_reservations(svc.runtime, now=utcnow() + dt.timedelta(hours=1)) == 0
            assert [e["payload"]["reason"] for e in await outbox(svc, "inventory.released.v1")] == ["cancelled"]
            assert await stock_rows(svc) == before
            await assert_ledger_matches_stock(svc)

    async def test_the_default_hold_is_15_minutes(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await know(svc, "A-1")
            await stock(svc, "A-1", units=5)
            await svc.deliver(order_created(("A-1", 2)))
            assert await expire_reservations(svc.runtime, now=utcnow() + dt.timedelta(minutes=14)) == 0
            assert await expire_reservations(svc.runtime, now=utcnow() + dt.timedelta(minutes=16)) == 1
            assert await stock_rows(svc) == {("A-1", "default"): (5, 0)}

    async def test_two_sweepers_at_once_release_each_reservation_once(self, any_database_url: str,
                                                                      tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            await know(svc, "A-1", "B-1")
            await stock(svc, "A-1", units=100)
            await stock(svc, "B-1", units=100)
            orders = [order_created(("A-1", 1), ("B-1", 2)) for _ in range(30)]
            await asyncio.gather(*(svc.deliver(o) for o in orders))
            later = utcnow() + dt.timedelta(hours=1)

            counts = await asyncio.gather(*(expire_reservations(svc.runtime, now=later) for _ in range(3)))

            assert sum(counts) == 30
            released = await outbox(svc, "inventory.released.v1")
            assert sorted(e["aggregate_id"] for e in released) == sorted(str(o.order_id) for o in orders)
            assert await stock_rows(svc) == {("A-1", "default"): (100, 0), ("B-1", "default"): (100, 0)}
            await assert_ledger_matches_stock(svc)


class TestTenantHoldTime:
    async def test_a_tenants_own_reservation_minutes_set_the_expiry(self, tmp_path: Path) -> None:
        from contextlib import AsyncExitStack

        from amazonlite.services.tenants.app import SERVICE as TENANTS
        from tests.support.harness import fast_platform_settings

        platform = fast_platform_settings(tmp_path, internal_token_secret="s" * 40)
        async with AsyncExitStack() as stack:
            tenants = await stack.enter_async_context(running_service(
                TENANTS, f"sqlite+aiosqlite:///{tmp_path / 'tenants.sqlite3'}", tmp_path, platform=platform))
            svc = await stack.enter_async_context(running_service(
                SERVICE, f"sqlite+aiosqlite:///{tmp_path / 'inventory.sqlite3'}", tmp_path, platform=platform))
            svc.runtime.services.register("tenants", app=tenants.app)
            async with tenants.client(user_id="ops", roles=("platform_admin",)) as ops:
                created = await ops.post("/api/v1/admin/tenants", json={"id": "acme", "name": "Acme",
                                                                        "reservation_minutes": 5})
                assert created.status_code == 201, created.text
            for tenant in ("acme", "globex"):  # globex: a tenant the tenants service does not know
                await know(svc, "A-1", tenant=tenant)
                await stock(svc, "A-1", units=5, tenant=tenant)
                await svc.deliver(order_created(("A-1", 1)), tenant=tenant)
            holds = {e["tenantId"]: dt.datetime.fromisoformat(e["payload"]["expires_at"]) - utcnow()
                     for e in await outbox(svc, "inventory.reserved.v1")}
            assert dt.timedelta(minutes=4) < holds["acme"] <= dt.timedelta(minutes=5)
            assert dt.timedelta(minutes=14) < holds["globex"] <= dt.timedelta(minutes=15)
