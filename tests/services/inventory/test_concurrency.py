"""No interleaving oversells and none deadlocks: many order.created.v1 deliveries at once, through
the real consumer (inbox, reservation, ledger, outbox in one unit of work each), on SQLite,
PostgreSQL and MariaDB."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError

from amazonlite.platform import consumer
from amazonlite.platform.db import is_transient_conflict
from amazonlite.services.inventory.app import SERVICE
from tests.services.inventory.factories import (
    anonymous,
    assert_ledger_matches_stock,
    create_warehouse,
    dead_letters,
    know,
    order_created,
    outbox,
    stock,
    stock_rows,
)
from tests.support.harness import running_service


class TestFlashSale:
    async def test_200_orders_for_the_last_50_units_hold_exactly_50(self, any_database_url: str,
                                                                     tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            await know(svc, "HOT-1")
            await stock(svc, "HOT-1", units=50)
            orders = [order_created(("HOT-1", 1)) for _ in range(200)]

            lowest: list[int] = []

            async def watch() -> None:
                # The rows themselves (the API's figure is clamped at zero): on hand minus reserved.
                while True:
                    lowest.extend(on_hand - reserved for on_hand, reserved in (await stock_rows(svc)).values())
                    await asyncio.sleep(0.01)

            watcher = asyncio.create_task(watch())
            try:
                await asyncio.gather(*(svc.deliver(order) for order in orders))
            finally:
                watcher.cancel()

            events = await outbox(svc)
            reserved = [e for e in events if e["topic"] == "inventory.reserved.v1"]
            rejected = [e for e in events if e["topic"] == "inventory.rejected.v1"]
            assert (len(reserved), len(rejected)) == (50, 150)
            assert {e["aggregate_id"] for e in reserved + rejected} == {str(o.order_id) for o in orders}
            assert {e["payload"]["reason"] for e in rejected} == {"insufficient_stock"}
            assert all(e["payload"]["short"] == [{"sku": "HOT-1", "requested": 1, "available": 0}]
                       for e in rejected)
            assert await stock_rows(svc) == {("HOT-1", "default"): (50, 50)}
            assert lowest and min(lowest) >= 0
            async with anonymous(svc) as public:
                assert (await public.get("/api/v1/inventory/HOT-1")).json()["available"] == 0
            await assert_ledger_matches_stock(svc)
            assert await dead_letters(svc) == 0

    async def test_orders_over_the_same_skus_in_opposite_orders_never_deadlock(
            self, any_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        # The consumer would redo a deadlock victim's unit quietly: record every database error it
        # sees, so that a deadlock (or a lock wait timeout) fails this test instead.
        database_errors: list[BaseException] = []

        def recording(exc: BaseException) -> bool:
            if isinstance(exc, DBAPIError):
                database_errors.append(exc)
            return is_transient_conflict(exc)

        monkeypatch.setattr(consumer, "is_transient_conflict", recording)
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            await know(svc, "PAIR-A", "PAIR-B")
            await create_warehouse(svc, "east", 1)
            for sku in ("PAIR-A", "PAIR-B"):
                await stock(svc, sku, units=15)
                await stock(svc, sku, "east", units=15)
            orders = [order_created(("PAIR-A", 1), ("PAIR-B", 1)) if n % 2 else
                      order_created(("PAIR-B", 1), ("PAIR-A", 1)) for n in range(40)]
            # Two units of each line: the first warehouse runs out half-way, so orders span both.
            orders = [order_created(*((line.sku, 2) for line in o.lines)) for o in orders]

            await asyncio.gather(*(svc.deliver(order) for order in orders))

            events = await outbox(svc)
            answered = [e for e in events if e["topic"] in ("inventory.reserved.v1", "inventory.rejected.v1")]
            assert sorted(e["aggregate_id"] for e in answered) == sorted(str(o.order_id) for o in orders)
            reserved = [e for e in answered if e["topic"] == "inventory.reserved.v1"]
            assert len(reserved) == 15  # 30 units of each SKU, 2 per order
            rows = await stock_rows(svc)
            assert rows == {(sku, wh): (15, 15) for sku in ("PAIR-A", "PAIR-B") for wh in ("default", "east")}
            await assert_ledger_matches_stock(svc)
            assert await dead_letters(svc) == 0
            assert database_errors == []
