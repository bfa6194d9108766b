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
    by_order,
    create_warehouse,
    dead_letters,
    know,
    order_cancelled,
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


class TestRunsOfOrders:
    """A fetch of many order.created.v1 is one unit of work: planned in order on one read, each order
    all or none, every stock row taken once for the run."""

    async def test_a_run_reserves_in_order_until_the_stock_runs_out_then_rejects(
            self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            await know(svc, "RUN-A", "RUN-B")
            await create_warehouse(svc, "east", 1)
            await stock(svc, "RUN-A", units=3)
            await stock(svc, "RUN-A", "east", units=2)
            await stock(svc, "RUN-B", units=1)
            answered_before = order_created(("RUN-B", 1))
            await svc.deliver(order_cancelled(answered_before.order_id))  # cancelled before it was reserved
            orders = [order_created(("RUN-A", 2)), order_created(("RUN-A", 2), ("RUN-B", 1)),
                      order_created(("RUN-A", 2)), order_created(("RUN-B", 1)), order_created(("RUN-A", 1)),
                      order_created(("NOT-KNOWN", 1))]
            repeated = orders[0]

            await svc.deliver_together([*orders, repeated, answered_before])

            verdicts = by_order(await outbox(svc))
            assert [verdicts.get(str(o.order_id)) for o in orders] == [
                ["inventory.reserved.v1"], ["inventory.reserved.v1"],  # 2 + 2 of RUN-A, RUN-B's one
                ["inventory.rejected.v1"],  # 1 of RUN-A left: short
                ["inventory.rejected.v1"],  # RUN-B is gone
                ["inventory.reserved.v1"],  # the last of RUN-A
                ["inventory.rejected.v1"]]  # an unknown SKU
            # Each order answered once (the repeat is a duplicate); the cancelled one is not reserved.
            assert str(answered_before.order_id) not in verdicts
            # By priority: default's 3 first, then east's 2.
            assert await stock_rows(svc) == {("RUN-A", "default"): (3, 3), ("RUN-A", "east"): (2, 2),
                                             ("RUN-B", "default"): (1, 1)}
            rejected = {e["aggregate_id"]: e["payload"] for e in await outbox(svc, "inventory.rejected.v1")}
            assert rejected[str(orders[2].order_id)]["short"] == [{"sku": "RUN-A", "requested": 2, "available": 1}]
            assert rejected[str(orders[5].order_id)]["reason"] == "unknown_sku"
            await assert_ledger_matches_stock(svc)
            assert await dead_letters(svc) == 0

    async def test_concurrent_runs_for_the_last_units_hold_exactly_them(self, any_database_url: str,
                                                                       tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            await know(svc, "HOT-RUN")
            await stock(svc, "HOT-RUN", units=30)
            orders = [order_created(("HOT-RUN", 1)) for _ in range(120)]
            # Four deliveries at once (four partitions' fetches in four consumers), 30 orders each.
            await asyncio.gather(*(svc.deliver_together(orders[n::4]) for n in range(4)))
            events = await outbox(svc)
            reserved = [e for e in events if e["topic"] == "inventory.reserved.v1"]
            rejected = [e for e in events if e["topic"] == "inventory.rejected.v1"]
            assert (len(reserved), len(rejected)) == (30, 90)
            assert await stock_rows(svc) == {("HOT-RUN", "default"): (30, 30)}
            await assert_ledger_matches_stock(svc)
            assert await dead_letters(svc) == 0
