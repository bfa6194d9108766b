"""The HTTP API: warehouses, stock changes, availability (single and batch), ledger, thresholds and
the low-stock list; who may call what; and each tenant seeing only its own inventory."""

from __future__ import annotations

from pathlib import Path

from amazonlite.services.inventory.app import SERVICE
from tests.services.inventory.factories import (
    admin,
    anonymous,
    assert_ledger_matches_stock,
    assert_problem,
    create_warehouse,
    customer,
    know,
    order_created,
    outbox,
    product_updated,
    stock,
)
from tests.support.harness import running_service

INV = "/api/v1/inventory"


class TestWarehouses:
    async def test_every_tenant_has_default_and_lists_warehouses_in_priority_order(self, any_database_url: str,
                                                                                   tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as api:
            assert (await api.get(f"{INV}/warehouses")).json() == {
                "items": [{"code": "default", "name": "Default", "priority": 0}], "next_cursor": None}
            created = await api.post(f"{INV}/warehouses", json={"code": "west", "name": "  West  ", "priority": 5})
            assert created.status_code == 201, created.text
            assert created.json() == {"code": "west", "name": "West", "priority": 5}
            await api.post(f"{INV}/warehouses", json={"code": "east", "name": "East", "priority": 1})
            await api.post(f"{INV}/warehouses", json={"code": "annex", "name": "Annex", "priority": 1})
            codes = [w["code"] for w in (await api.get(f"{INV}/warehouses")).json()["items"]]
            assert codes == ["default", "annex", "east", "west"]

    async def test_a_code_in_use_is_a_conflict(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api:
            await api.post(f"{INV}/warehouses", json={"code": "east", "name": "East", "priority": 1})
            for code in ("east", "default"):
                assert_problem(await api.post(f"{INV}/warehouses", json={"code": code, "name": "X", "priority": 2}),
                               409, "warehouse-exists")
            assert len((await api.get(f"{INV}/warehouses")).json()["items"]) == 2

    async def test_only_admins_see_and_create_warehouses(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            body = {"code": "east", "name": "East", "priority": 1}
            async with anonymous(svc) as public, customer(svc) as shopper:
                assert_problem(await public.get(f"{INV}/warehouses"), 401)
                assert_problem(await public.post(f"{INV}/warehouses", json=body), 401)
                assert_problem(await shopper.get(f"{INV}/warehouses"), 403)
                assert_problem(await shopper.post(f"{INV}/warehouses", json=body), 403)
            async with svc.client(user_id="0b4a7f1e-8c84-4a57-a6d3-1b6c7f0e2a11", roles=("platform_admin",)) as ops:
                assert (await ops.post(f"{INV}/warehouses", json=body)).status_code == 201


class TestStockAndAvailability:
    async def test_set_and_adjust_change_on_hand_and_answer_the_admin_view(self, any_database_url: str,
                                                                           tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as api:
            await know(svc, "TEE-M")
            await create_warehouse(svc, "east", 1)
            response = await api.put(f"{INV}/TEE-M/warehouses/default", json={"set": 10, "reason": "first count"})
            assert response.status_code == 200, response.text
            assert response.json() == {"sku": "TEE-M", "available": 10, "warehouses": [
                {"id": "default", "on_hand": 10, "reserved": 0, "available": 10}]}
            await api.put(f"{INV}/TEE-M/warehouses/east", json={"adjust": 4, "reason": "delivery"})
            response = await api.put(f"{INV}/TEE-M/warehouses/default", json={"adjust": -3, "reason": "damaged"})
            assert response.json() == {"sku": "TEE-M", "available": 11, "warehouses": [
                {"id": "default", "on_hand": 7, "reserved": 0, "available": 7},
                {"id": "east", "on_hand": 4, "reserved": 0, "available": 4}]}
            await assert_ledger_matches_stock(svc)

    async def test_anyone_reads_the_total_only_admins_the_warehouses(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await know(svc, "TEE-M")
            await stock(svc, "TEE-M", units=6)
            async with anonymous(svc) as public, customer(svc) as shopper, admin(svc) as api:
                for client in (public, shopper):
                    response = await client.get(f"{INV}/TEE-M")
                    assert response.json() == {"sku": "TEE-M", "available": 6}
                    assert (await client.get(INV, params={"sku": "TEE-M"})).json() == {
                        "items": [{"sku": "TEE-M", "available": 6}]}
                assert (await api.get(f"{INV}/TEE-M")).json()["warehouses"] == [
                    {"id": "default", "on_hand": 6, "reserved": 0, "available": 6}]
                assert_problem(await public.get(f"{INV}/NOPE-1"), 404, "sku-not-found")

    async def test_the_batch_answers_in_the_order_asked_with_0_for_what_cannot_be_sold(
            self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await know(svc, "A-1", "B-1")
            await svc.deliver(product_updated("DRAFT-1", status="draft"))
            for sku in ("A-1", "B-1", "DRAFT-1"):
                await stock(svc, sku, units=3)
            async with anonymous(svc) as public:
                response = await public.get(INV, params={"sku": ["B-1", "NEVER-1", "DRAFT-1", "A-1", "B-1"]})
            assert response.json() == {"items": [
                {"sku": "B-1", "available": 3}, {"sku": "NEVER-1", "available": 0},
                {"sku": "DRAFT-1", "available": 0}, {"sku": "A-1", "available": 3}, {"sku": "B-1", "available": 3}]}

    async def test_stock_cannot_go_below_what_is_reserved(self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as api:
            await know(svc, "TEE-M")
            await stock(svc, "TEE-M", units=5)
            await svc.deliver(order_created(("TEE-M", 3)))
            assert_problem(await api.put(f"{INV}/TEE-M/warehouses/default", json={"set": 2, "reason": "recount"}),
                           409, "stock-below-reserved")
            assert_problem(await api.put(f"{INV}/TEE-M/warehouses/default", json={"adjust": -3, "reason": "loss"}),
                           409, "stock-below-reserved")
            assert_problem(await api.put(f"{INV}/TEE-M/warehouses/default", json={"adjust": -6, "reason": "loss"}),
                           409, "negative-stock")
            response = await api.put(f"{INV}/TEE-M/warehouses/default", json={"set": 3, "reason": "recount"})
            assert response.json()["warehouses"] == [{"id": "default", "on_hand": 3, "reserved": 3, "available": 0}]
            await assert_ledger_matches_stock(svc)

    async def test_only_admins_change_stock(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await know(svc, "TEE-M")
            body = {"set": 5, "reason": "count"}
            async with anonymous(svc) as public, customer(svc) as shopper:
                assert_problem(await public.put(f"{INV}/TEE-M/warehouses/default", json=body), 401)
                assert_problem(await shopper.put(f"{INV}/TEE-M/warehouses/default", json=body), 403)
                assert_problem(await shopper.put(f"{INV}/TEE-M/threshold", json={"threshold": 1}), 403)
                assert_problem(await shopper.get(f"{INV}/TEE-M/ledger"), 403)
                assert_problem(await public.get(f"{INV}/low-stock"), 401)
                assert (await public.get(f"{INV}/TEE-M")).json()["available"] == 0


class TestLedger:
    async def test_every_change_is_an_entry_newest_first_page_by_page(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api:
            await know(svc, "TEE-M")
            await api.put(f"{INV}/TEE-M/warehouses/default", json={"set": 10, "reason": "first count"})
            await api.put(f"{INV}/TEE-M/warehouses/default", json={"adjust": -2, "reason": "damaged"})
            order = order_created(("TEE-M", 3))
            await svc.deliver(order)
            entries, cursor = [], None
            while True:
                page = (await api.get(f"{INV}/TEE-M/ledger", params={"limit": 2, **(
                    {"cursor": cursor} if cursor else {})})).json()
                entries += page["items"]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert [(e["kind"], e["on_hand_delta"], e["reserved_delta"], e["reason"]) for e in entries] == [
                ("reserve", 0, 3, "order.created.v1"), ("adjust", -2, 0, "damaged"), ("set", 10, 0, "first count")]
            assert entries[0]["order_id"] == str(order.order_id)
            assert {e["warehouse"] for e in entries} == {"default"}
            assert_problem(await api.get(f"{INV}/TEE-M/ledger", params={"cursor": "not-a-cursor"}), 400,
                           "invalid-cursor")
            assert_problem(await api.get(f"{INV}/NOPE-1/ledger"), 404, "sku-not-found")


class TestThresholds:
    async def test_low_stock_lists_skus_at_or_below_their_threshold(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api:
            await know(svc, "A-1", "B-1", "C-1")
            await stock(svc, "A-1", units=2)
            await stock(svc, "B-1", units=20)
            response = await api.put(f"{INV}/A-1/threshold", json={"threshold": 5})
            assert response.json() == {"sku": "A-1", "threshold": 5, "available": 2}
            await api.put(f"{INV}/B-1/threshold", json={"threshold": 5})
            await api.put(f"{INV}/C-1/threshold", json={"threshold": 0})
            low = (await api.get(f"{INV}/low-stock")).json()
            assert low == {"items": [{"sku": "A-1", "available": 2, "threshold": 5},
                                     {"sku": "C-1", "available": 0, "threshold": 0}], "next_cursor": None}
            first = (await api.get(f"{INV}/low-stock", params={"limit": 1})).json()
            assert [i["sku"] for i in first["items"]] == ["A-1"]
            rest = (await api.get(f"{INV}/low-stock", params={"limit": 1, "cursor": first["next_cursor"]})).json()
            assert [i["sku"] for i in rest["items"]] == ["C-1"]
            assert_problem(await api.put(f"{INV}/NOPE-1/threshold", json={"threshold": 1}), 404, "sku-not-found")


class TestTenantIsolation:
    async def test_tenant_b_never_sees_or_changes_the_inventory_of_a(self, any_database_url: str,
                                                                      tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, \
                admin(svc, tenant="acme") as a, admin(svc, tenant="globex") as b:
            await know(svc, "SHARED-1", tenant="acme")
            await create_warehouse(svc, "east", 1, tenant="acme")
            await stock(svc, "SHARED-1", units=9, tenant="acme")
            await a.put(f"{INV}/SHARED-1/threshold", json={"threshold": 20})
            body = {"set": 1, "reason": "sneaky"}

            assert_problem(await b.get(f"{INV}/SHARED-1"), 404, "sku-not-found")
            assert (await b.get(INV, params={"sku": "SHARED-1"})).json()["items"] == [
                {"sku": "SHARED-1", "available": 0, "warehouses": []}]
            assert [w["code"] for w in (await b.get(f"{INV}/warehouses")).json()["items"]] == ["default"]
            assert_problem(await b.put(f"{INV}/SHARED-1/warehouses/default", json=body), 404, "sku-not-found")
            assert_problem(await b.get(f"{INV}/SHARED-1/ledger"), 404, "sku-not-found")
            assert (await b.get(f"{INV}/low-stock")).json()["items"] == []
            assert_problem(await b.put(f"{INV}/SHARED-1/threshold", json={"threshold": 1}), 404)

            # globex learns the same SKU: its own row, its own warehouses.
            await know(svc, "SHARED-1", tenant="globex")
            assert_problem(await b.put(f"{INV}/SHARED-1/warehouses/east", json=body), 404, "warehouse-not-found")
            await stock(svc, "SHARED-1", units=1, tenant="globex")
            await svc.deliver(order_created(("SHARED-1", 4)), tenant="acme")
            await svc.deliver(order_created(("SHARED-1", 1)), tenant="globex")

            assert (await a.get(f"{INV}/SHARED-1")).json()["warehouses"] == [
                {"id": "default", "on_hand": 9, "reserved": 4, "available": 5}]
            assert (await b.get(f"{INV}/SHARED-1")).json()["warehouses"] == [
                {"id": "default", "on_hand": 1, "reserved": 1, "available": 0}]
            assert [e["kind"] for e in (await b.get(f"{INV}/SHARED-1/ledger")).json()["items"]] == ["reserve", "set"]
            events = await outbox(svc)
            assert {e["tenantId"] for e in events if e["topic"] == "inventory.reserved.v1"} == {"acme", "globex"}
            await assert_ledger_matches_stock(svc, tenant="acme")
            await assert_ledger_matches_stock(svc, tenant="globex")
