"""What inventory does with the events it consumes: the catalog's SKUs, and the order saga's
reservations (all or none, across warehouses in priority order), confirmations, cancellations and
release requests, each idempotent per event and per order; and low stock once per crossing."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

from amazonlite.services.inventory.app import SERVICE
from tests.platform.helpers import counter
from tests.services.inventory.factories import (
    admin,
    anonymous,
    assert_ledger_matches_stock,
    create_warehouse,
    dead_letters,
    know,
    order_cancelled,
    order_confirmed,
    order_created,
    outbox,
    product_deleted,
    product_updated,
    release_requested,
    stock,
    stock_rows,
)
from tests.support.harness import Harness, running_service

INV = "/api/v1/inventory"


async def available(svc: Harness, sku: str, *, tenant: str = "default") -> int:
    async with anonymous(svc, tenant=tenant) as public:
        return int((await public.get(INV, params={"sku": sku})).json()["items"][0]["available"])


async def answers(svc: Harness, order_id: uuid.UUID) -> list[dict[str, Any]]:
    return [e for e in await outbox(svc) if e["aggregate_id"] == str(order_id)]


class TestSkuReplica:
    async def test_a_product_update_makes_its_skus_known_and_reservable_while_active(
            self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            product_id = uuid.uuid4()
            t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
            await svc.deliver(product_updated("V-1", "V-2", product_id=product_id, updated_at=t0))
            await stock(svc, "V-1", units=4)
            await stock(svc, "V-2", units=4)
            assert await available(svc, "V-1") == 4

            # A newer state: V-2 removed, the product archived.
            await svc.deliver(product_updated("V-1", product_id=product_id, status="archived",
                                              updated_at=t0 + dt.timedelta(minutes=2)))
            assert (await available(svc, "V-1"), await available(svc, "V-2")) == (0, 0)
            # An older state arriving late changes nothing.
            await svc.deliver(product_updated("V-1", "V-2", product_id=product_id,
                                              updated_at=t0 + dt.timedelta(minutes=1)))
            assert (await available(svc, "V-1"), await available(svc, "V-2")) == (0, 0)
            # Active again, without V-2.
            await svc.deliver(product_updated("V-1", product_id=product_id, updated_at=t0 + dt.timedelta(minutes=3)))
            assert (await available(svc, "V-1"), await available(svc, "V-2")) == (4, 0)
            order = order_created(("V-2", 1))
            await svc.deliver(order)
            [rejected] = await answers(svc, order.order_id)
            assert rejected["topic"] == "inventory.rejected.v1"
            assert rejected["payload"]["reason"] == "unknown_sku"

    async def test_a_deleted_product_stops_reservations_for_good(self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            product_id = await know(svc, "GONE-1")
            await stock(svc, "GONE-1", units=4)
            await svc.deliver(product_deleted(product_id, "GONE-1"))
            await svc.deliver(product_updated("GONE-1", product_id=product_id,
                                              updated_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1)))
            order = order_created(("GONE-1", 1))
            await svc.deliver(order)
            [rejected] = await answers(svc, order.order_id)
            assert rejected["payload"] == {"order_id": str(order.order_id), "reason": "unknown_sku",
                                           "short": [{"sku": "GONE-1", "requested": 1, "available": 0}]}
            assert await stock_rows(svc) == {("GONE-1", "default"): (4, 0)}

    async def test_stock_can_only_be_set_for_a_known_sku(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api:
            response = await api.put(f"{INV}/LATER-1/warehouses/default", json={"set": 1, "reason": "count"})
            assert response.status_code == 404
            await know(svc, "LATER-1")
            response = await api.put(f"{INV}/LATER-1/warehouses/default", json={"set": 1, "reason": "count"})
            assert response.status_code == 200


class TestReservations:
    async def test_every_line_or_none(self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            await know(svc, "A-1", "B-1", "C-1")
            await stock(svc, "A-1", units=10)
            await stock(svc, "B-1", units=1)
            await stock(svc, "C-1", units=1)
            order = order_created(("A-1", 2), ("B-1", 2), ("C-1", 1), ("C-1", 1))
            await svc.deliver(order)
            [rejected] = await answers(svc, order.order_id)
            assert rejected["topic"] == "inventory.rejected.v1"
            assert rejected["payload"]["reason"] == "insufficient_stock"
            assert rejected["payload"]["short"] == [{"sku": "B-1", "requested": 2, "available": 1},
                                                    {"sku": "C-1", "requested": 2, "available": 1}]
            assert await stock_rows(svc) == {("A-1", "default"): (10, 0), ("B-1", "default"): (1, 0),
                                             ("C-1", "default"): (1, 0)}
            unknown = order_created(("A-1", 1), ("MYSTERY-1", 1))
            await svc.deliver(unknown)
            [rejected] = await answers(svc, unknown.order_id)
            assert rejected["payload"]["reason"] == "unknown_sku"
            assert rejected["payload"]["short"] == [{"sku": "MYSTERY-1", "requested": 1, "available": 0}]
            assert await available(svc, "A-1") == 10
            await assert_ledger_matches_stock(svc)

    async def test_units_come_from_the_warehouses_in_priority_order_then_code(self, sqlite_url: str,
                                                                             tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await know(svc, "A-1", "B-1")
            await create_warehouse(svc, "west", 2)
            await create_warehouse(svc, "north", 1)
            await create_warehouse(svc, "east", 1)
            for warehouse, units in (("default", 2), ("east", 3), ("north", 3), ("west", 10)):
                await stock(svc, "A-1", warehouse, units=units)
            await stock(svc, "B-1", "west", units=1)
            order = order_created(("A-1", 6), ("B-1", 1), ("A-1", 3))
            await svc.deliver(order)
            [reserved] = await answers(svc, order.order_id)
            assert reserved["topic"] == "inventory.reserved.v1"
            payload = reserved["payload"]
            assert payload["lines"] == [
                {"sku": "A-1", "quantity": 9, "allocations": [
                    {"warehouse": "default", "quantity": 2}, {"warehouse": "east", "quantity": 3},
                    {"warehouse": "north", "quantity": 3}, {"warehouse": "west", "quantity": 1}]},
                {"sku": "B-1", "quantity": 1, "allocations": [{"warehouse": "west", "quantity": 1}]}]
            expires = dt.datetime.fromisoformat(payload["expires_at"])
            assert dt.timedelta(minutes=14) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=15)
            assert await available(svc, "A-1") == 9
            assert (await stock_rows(svc))[("A-1", "west")] == (10, 1)
            await assert_ledger_matches_stock(svc)

    async def test_confirmation_deducts_and_a_cancel_before_shipping_puts_it_back_once(
            self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            await know(svc, "A-1")
            await stock(svc, "A-1", units=5)
            order = order_created(("A-1", 2))
            await svc.deliver(order)
            await svc.deliver(order_confirmed(order.order_id))
            assert await stock_rows(svc) == {("A-1", "default"): (3, 0)}
            await svc.deliver(order_confirmed(order.order_id))  # another confirmation deducts nothing more
            assert await stock_rows(svc) == {("A-1", "default"): (3, 0)}
            # The customer cancels the paid order before it ships: the units are on hand again, once,
            # whether the cancel or the release request comes first (orders sends both).
            await svc.deliver(order_cancelled(order.order_id))
            await svc.deliver(release_requested(order.order_id))
            await svc.deliver(order_confirmed(order.order_id))
            assert await stock_rows(svc) == {("A-1", "default"): (5, 0)}
            assert [e["topic"] for e in await answers(svc, order.order_id)] == ["inventory.reserved.v1",
                                                                                "inventory.released.v1"]
            async with admin(svc) as api:
                kinds = [e["kind"] for e in (await api.get(f"{INV}/A-1/ledger")).json()["items"]]
            assert kinds[0] == "restock"
            await assert_ledger_matches_stock(svc)

    async def test_a_cancel_or_release_request_gives_the_units_back(self, any_database_url: str,
                                                                    tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            await know(svc, "A-1")
            await stock(svc, "A-1", units=5)
            cancelled, failed = order_created(("A-1", 2)), order_created(("A-1", 3))
            await svc.deliver(cancelled)
            await svc.deliver(failed)
            assert await available(svc, "A-1") == 0
            before = counter("amazonlite_inventory_releases_total", reason="cancelled")
            await svc.deliver(order_cancelled(cancelled.order_id, reason="customer\x00 changed\nmind"))
            await svc.deliver(release_requested(failed.order_id, reason="payment_failed"))
            assert await stock_rows(svc) == {("A-1", "default"): (5, 0)}
            assert counter("amazonlite_inventory_releases_total", reason="cancelled") == before + 1
            released = {e["aggregate_id"]: e["payload"] for e in await outbox(svc, "inventory.released.v1")}
            assert released[str(cancelled.order_id)]["reason"] == "cancelled"
            assert released[str(cancelled.order_id)]["detail"] == "customer\x00 changed\nmind"
            assert released[str(cancelled.order_id)]["lines"] == [{"sku": "A-1", "quantity": 2}]
            assert released[str(failed.order_id)]["reason"] == "release_requested"
            async with admin(svc) as api:
                reasons = [e["reason"] for e in (await api.get(f"{INV}/A-1/ledger")).json()["items"]]
            assert "cancelled: customer  changed mind" in reasons
            # A confirmation that comes after the release holds nothing to deduct.
            await svc.deliver(order_confirmed(cancelled.order_id))
            assert await stock_rows(svc) == {("A-1", "default"): (5, 0)}
            await assert_ledger_matches_stock(svc)

    async def test_a_cancel_before_the_order_arrives_leaves_a_tombstone(self, sqlite_url: str,
                                                                        tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await know(svc, "A-1")
            await stock(svc, "A-1", units=5)
            order = order_created(("A-1", 2))
            await svc.deliver(order_cancelled(order.order_id))
            await svc.deliver(order)
            assert await stock_rows(svc) == {("A-1", "default"): (5, 0)}
            assert await answers(svc, order.order_id) == []

    async def test_counts_reservations_and_rejections(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await know(svc, "A-1")
            await stock(svc, "A-1", units=1)
            reserved = counter("amazonlite_inventory_reservations_total", outcome="reserved")
            rejected = counter("amazonlite_inventory_reservations_total", outcome="rejected")
            await svc.deliver(order_created(("A-1", 1)))
            await svc.deliver(order_created(("A-1", 1)))
            assert counter("amazonlite_inventory_reservations_total", outcome="reserved") == reserved + 1
            assert counter("amazonlite_inventory_reservations_total", outcome="rejected") == rejected + 1


class TestIdempotency:
    async def test_every_event_delivered_twice_has_one_effect(self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            product_id = await know(svc, "A-1", "B-1")
            await stock(svc, "A-1", units=10)
            kept, dropped, paid = (order_created(("A-1", 2)) for _ in range(3))
            events: list[Any] = [
                product_updated("A-1", "B-1", "C-1", product_id=product_id),
                kept, dropped, paid,
                order_confirmed(paid.order_id),
                order_cancelled(dropped.order_id),
                release_requested(kept.order_id),
                product_deleted(product_id, "A-1", "B-1", "C-1"),
            ]
            for event in events:
                event_id = uuid.uuid4()
                await svc.deliver(event, event_id=event_id)
                rows, published = await stock_rows(svc), await outbox(svc)
                await svc.deliver(event, event_id=event_id)
                assert (await stock_rows(svc), await outbox(svc)) == (rows, published), type(event).__name__
            assert await stock_rows(svc) == {("A-1", "default"): (8, 0)}
            assert await dead_letters(svc) == 0
            await assert_ledger_matches_stock(svc)

    async def test_a_second_event_about_the_same_order_has_no_second_effect(self, any_database_url: str,
                                                                            tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            await know(svc, "A-1")
            await stock(svc, "A-1", units=10)
            held, short, paid = order_created(("A-1", 3)), order_created(("A-1", 99)), order_created(("A-1", 2))
            for order in (held, short, paid):
                await svc.deliver(order)
                await svc.deliver(order)  # a second event (another id) for the same order
            assert [len(await answers(svc, o.order_id)) for o in (held, short, paid)] == [1, 1, 1]
            await svc.deliver(order_confirmed(paid.order_id))
            await svc.deliver(order_confirmed(paid.order_id))
            await svc.deliver(order_cancelled(held.order_id))
            await svc.deliver(order_cancelled(held.order_id))
            await svc.deliver(release_requested(held.order_id))
            assert await stock_rows(svc) == {("A-1", "default"): (8, 0)}
            assert len(await outbox(svc, "inventory.released.v1")) == 1
            await assert_ledger_matches_stock(svc)


class TestLowStock:
    async def test_published_once_per_crossing_and_armed_again_above(self, any_database_url: str,
                                                                      tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as api:
            product_id = await know(svc, "A-1")
            await stock(svc, "A-1", units=10)
            await api.put(f"{INV}/A-1/threshold", json={"threshold": 5})

            first, second, third = order_created(("A-1", 4)), order_created(("A-1", 2)), order_created(("A-1", 1))
            await svc.deliver(first)
            assert await outbox(svc, "inventory.low_stock.v1") == []
            await svc.deliver(second)  # 6 → 4: crosses
            await svc.deliver(third)  # 4 → 3: already below
            low = await outbox(svc, "inventory.low_stock.v1")
            assert [e["payload"] for e in low] == [
                {"sku": "A-1", "product_id": str(product_id), "available": 4, "threshold": 5}]
            assert low[0]["aggregate_id"] == "A-1"

            for order in (first, second, third):
                await svc.deliver(order_cancelled(order.order_id))  # back to 10: armed again
            await api.put(f"{INV}/A-1/warehouses/default", json={"adjust": -5, "reason": "stolen"})  # 10 → 5
            assert [e["payload"]["available"] for e in await outbox(svc, "inventory.low_stock.v1")] == [4, 5]
            await api.put(f"{INV}/A-1/warehouses/default", json={"adjust": -1, "reason": "stolen"})
            assert len(await outbox(svc, "inventory.low_stock.v1")) == 2

    async def test_concurrent_orders_crossing_the_threshold_publish_it_once(self, any_database_url: str,
                                                                              tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as api:
            await know(svc, "A-1")
            await stock(svc, "A-1", units=10)
            await api.put(f"{INV}/A-1/threshold", json={"threshold": 5})

            await asyncio.gather(*(svc.deliver(order_created(("A-1", 1))) for _ in range(10)))

            assert len(await outbox(svc, "inventory.reserved.v1")) == 10
            [low] = await outbox(svc, "inventory.low_stock.v1")
            assert low["payload"]["threshold"] == 5 and low["payload"]["available"] <= 5
            await assert_ledger_matches_stock(svc)


class TestTenants:
    async def test_an_event_of_one_tenant_never_touches_another(self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            product_id = uuid.uuid4()
            for tenant in ("acme", "globex"):
                await svc.deliver(product_updated("A-1", product_id=product_id), tenant=tenant)
                await stock(svc, "A-1", units=5, tenant=tenant)
            order = order_created(("A-1", 2))
            await svc.deliver(order, tenant="acme")
            await svc.deliver(order, tenant="globex")  # the same order id, in another tenant: its own order
            await svc.deliver(order_confirmed(order.order_id), tenant="acme")
            assert await stock_rows(svc, tenant="acme") == {("A-1", "default"): (3, 0)}
            assert await stock_rows(svc, tenant="globex") == {("A-1", "default"): (5, 2)}
            cancelled = order_created(("A-1", 1))
            await svc.deliver(order_cancelled(cancelled.order_id), tenant="acme")  # a tombstone in acme only
            await svc.deliver(cancelled, tenant="globex")
            assert await stock_rows(svc, tenant="globex") == {("A-1", "default"): (5, 3)}
            await svc.deliver(product_deleted(product_id, "A-1"), tenant="acme")
            assert await available(svc, "A-1", tenant="acme") == 0
            assert await available(svc, "A-1", tenant="globex") == 2
