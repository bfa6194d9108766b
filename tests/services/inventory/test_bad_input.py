"""Bad input on every endpoint is a 4xx problem, and nothing is written: no stock, no ledger entry,
no warehouse, no threshold, no event."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from amazonlite.services.inventory.app import SERVICE
from amazonlite.services.inventory.models import MESSAGING, LedgerEntry, Stock, Threshold, Warehouse
from tests.services.inventory.factories import admin, assert_problem, know, stock
from tests.support.harness import Harness, running_service

INV = "/api/v1/inventory"
LONG = "x" * 201


@pytest.fixture
async def svc(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_service(SERVICE, sqlite_url, tmp_path) as harness:
        await know(harness, "TEE-M")
        await stock(harness, "TEE-M", units=5)
        yield harness


async def written(svc: Harness) -> tuple[int, ...]:
    async with svc.runtime.db.engine.connect() as conn:
        counts = []
        for table in (Stock.__table__, LedgerEntry.__table__, Warehouse.__table__, Threshold.__table__,
                      MESSAGING.outbox):
            counts.append(int(await conn.scalar(select(func.count()).select_from(table)) or 0))
        sums = (await conn.execute(select(func.sum(Stock.on_hand), func.sum(Stock.reserved)))).one()
    return (*counts, *(int(s or 0) for s in sums))


STOCK_BODIES: list[Any] = [
    {"set": 1, "adjust": 1, "reason": "both"},
    {"reason": "neither"},
    {"set": -1, "reason": "negative"},
    {"set": 1_000_000_001, "reason": "huge"},
    {"adjust": 10**30, "reason": "huger"},
    {"adjust": -1_000_000_001, "reason": "huge"},
    {"set": 1.5, "reason": "fraction"},
    {"set": "5", "reason": "text"},
    {"set": True, "reason": "boolean"},
    {"set": None, "adjust": None, "reason": "nulls"},
    {"set": 1},
    {"set": 1, "reason": ""},
    {"set": 1, "reason": "   "},
    {"set": 1, "reason": "two\nlines"},
    {"set": 1, "reason": "bidi \u202e trick"},
    {"set": 1, "reason": LONG},
    {"set": 1, "reason": "fine", "extra": 1},
    [],
    "set=1",
]


class TestStockChanges:
    @pytest.mark.parametrize("body", STOCK_BODIES)
    async def test_a_bad_body_is_422_and_writes_nothing(self, svc: Harness, body: Any) -> None:
        before = await written(svc)
        async with admin(svc) as api:
            assert_problem(await api.put(f"{INV}/TEE-M/warehouses/default", json=body), 422)
        assert await written(svc) == before

    @pytest.mark.parametrize(("path", "status", "kind"), [
        (f"{INV}/TEE-M/warehouses/nowhere", 404, "warehouse-not-found"),
        (f"{INV}/NOPE-1/warehouses/default", 404, "sku-not-found"),
        (f"{INV}/TEE-M/warehouses/East", 422, None),
        (f"{INV}/TEE-M/warehouses/-east", 422, None),
        (f"{INV}/{'S' * 65}/warehouses/default", 422, None),
        (f"{INV}/-TEE/warehouses/default", 422, None),
        (f"{INV}/TEE%20M/warehouses/default", 422, None),
    ])
    async def test_a_bad_sku_or_warehouse_writes_nothing(self, svc: Harness, path: str, status: int,
                                                         kind: str | None) -> None:
        before = await written(svc)
        async with admin(svc) as api:
            assert_problem(await api.put(path, json={"set": 3, "reason": "count"}), status, kind)
        assert await written(svc) == before

    async def test_an_adjustment_past_the_largest_count_is_refused(self, svc: Harness) -> None:
        async with admin(svc) as api:
            await api.put(f"{INV}/TEE-M/warehouses/default", json={"set": 1_000_000_000, "reason": "count"})
            before = await written(svc)
            assert_problem(await api.put(f"{INV}/TEE-M/warehouses/default", json={"adjust": 1, "reason": "one"}),
                           422, "quantity-too-large")
        assert await written(svc) == before


class TestOtherEndpoints:
    @pytest.mark.parametrize("body", [
        {"code": "Bad Code", "name": "X", "priority": 1},
        {"code": "-east", "name": "X", "priority": 1},
        {"code": "e" * 65, "name": "X", "priority": 1},
        {"code": "east", "name": " ", "priority": 1},
        {"code": "east", "name": "x" * 121, "priority": 1},
        {"code": "east", "name": "East", "priority": -1},
        {"code": "east", "name": "East", "priority": 10**12},
        {"code": "east", "name": "East", "priority": 1.5},
        {"code": "east", "name": "East"},
        {"code": "east", "name": "East", "priority": 1, "extra": True},
    ])
    async def test_a_bad_warehouse_is_422_and_writes_nothing(self, svc: Harness, body: Any) -> None:
        before = await written(svc)
        async with admin(svc) as api:
            assert_problem(await api.post(f"{INV}/warehouses", json=body), 422)
        assert await written(svc) == before

    @pytest.mark.parametrize("body", [{"threshold": -1}, {"threshold": 10**12}, {"threshold": "3"}, {},
                                      {"threshold": 1, "more": 2}])
    async def test_a_bad_threshold_is_422_and_writes_nothing(self, svc: Harness, body: Any) -> None:
        before = await written(svc)
        async with admin(svc) as api:
            assert_problem(await api.put(f"{INV}/TEE-M/threshold", json=body), 422)
        assert await written(svc) == before

    @pytest.mark.parametrize("params", [
        {}, {"sku": [f"S-{n}" for n in range(101)]}, {"sku": "S" * 65}, {"sku": ""}, {"sku": "a b"},
    ])
    async def test_a_bad_batch_is_422(self, svc: Harness, params: Any) -> None:
        async with admin(svc) as api:
            assert_problem(await api.get(INV, params=params), 422)

    async def test_the_largest_batch_is_answered(self, svc: Harness) -> None:
        async with admin(svc) as api:
            response = await api.get(INV, params={"sku": [f"S-{n}" for n in range(100)]})
        assert response.status_code == 200
        assert len(response.json()["items"]) == 100

    @pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 101}, {"cursor": "!!"}, {"cursor": "W10"},
                                       {"warehouse": "Not A Code"}])
    async def test_bad_ledger_and_low_stock_queries_are_4xx(self, svc: Harness, query: dict[str, Any]) -> None:
        async with admin(svc) as api:
            assert 400 <= (await api.get(f"{INV}/TEE-M/ledger", params=query)).status_code < 500
            if "warehouse" not in query:
                assert 400 <= (await api.get(f"{INV}/low-stock", params=query)).status_code < 500
