"""Plain keyword-only factories and helpers for the inventory tests."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from typing import Any

import orjson
from sqlalchemy import func, select

from amazonlite.contracts import (
    InventoryReleaseRequestedV1,
    OrderCancelledV1,
    OrderConfirmedV1,
    OrderCreatedV1,
    ProductDeletedV1,
    ProductUpdatedV1,
)
from amazonlite.contracts.base import Money
from amazonlite.contracts.catalog import ProductVariantV1
from amazonlite.contracts.orders import OrderLineV1, OrderTotalsV1
from amazonlite.services.inventory.models import MESSAGING, LedgerEntry, Stock
from tests.support.harness import Harness

ADMIN = ("tenant_admin",)
CUSTOMER = ("customer",)


def admin(svc: Harness, *, tenant: str = "default") -> Any:
    return svc.client(tenant=tenant, user_id=uuid.uuid4(), roles=ADMIN)


def customer(svc: Harness, *, tenant: str = "default") -> Any:
    return svc.client(tenant=tenant, user_id=uuid.uuid4(), roles=CUSTOMER)


def anonymous(svc: Harness, *, tenant: str = "default") -> Any:
    return svc.client(tenant=tenant)


def product_updated(*skus: str, product_id: uuid.UUID | None = None, status: str = "active",
                    updated_at: dt.datetime | None = None) -> ProductUpdatedV1:
    return ProductUpdatedV1(
        product_id=product_id or uuid.uuid4(), name="Trail Runner", slug="trail-runner", description="Shoes",
        status=status, brand_id=None, brand_name=None, category_id=None, category_name=None, attributes={},
        variants=[ProductVariantV1(sku=s, name=s, options={}, price=Money(amount=1000, currency="INR"))
                  for s in skus],
        updated_at=updated_at or dt.datetime.now(dt.UTC))


def product_deleted(product_id: uuid.UUID, *skus: str) -> ProductDeletedV1:
    return ProductDeletedV1(product_id=product_id, skus=list(skus))


def order_created(*lines: tuple[str, int], order_id: uuid.UUID | None = None) -> OrderCreatedV1:
    zero = Money(amount=0, currency="INR")
    return OrderCreatedV1(
        order_id=order_id or uuid.uuid4(), customer_id=uuid.uuid4(),
        lines=[OrderLineV1(sku=sku, quantity=q, unit_price=Money(amount=1000, currency="INR")) for sku, q in lines],
        totals=OrderTotalsV1(subtotal=zero, discount=zero, tax=zero, shipping=zero, total=zero),
        payment_provider="sandbox", created_at=dt.datetime.now(dt.UTC))


def order_confirmed(order_id: uuid.UUID) -> OrderConfirmedV1:
    return OrderConfirmedV1(order_id=order_id, customer_id=uuid.uuid4(), confirmed_at=dt.datetime.now(dt.UTC))


def order_cancelled(order_id: uuid.UUID, reason: str = "customer") -> OrderCancelledV1:
    return OrderCancelledV1(order_id=order_id, customer_id=uuid.uuid4(), reason=reason,
                            cancelled_at=dt.datetime.now(dt.UTC))


def release_requested(order_id: uuid.UUID, reason: str = "payment_failed") -> InventoryReleaseRequestedV1:
    return InventoryReleaseRequestedV1(order_id=order_id, reason=reason)


async def know(svc: Harness, *skus: str, tenant: str = "default") -> uuid.UUID:
    """Teach inventory the SKUs, as the catalog's event would; the product's id."""
    event = product_updated(*skus)
    await svc.deliver(event, tenant=tenant)
    return event.product_id


async def stock(svc: Harness, sku: str, warehouse: str = "default", *, units: int, tenant: str = "default") -> None:
    async with admin(svc, tenant=tenant) as api:
        response = await api.put(f"/api/v1/inventory/{sku}/warehouses/{warehouse}",
                                 json={"set": units, "reason": "count"})
        assert response.status_code == 200, response.text


async def create_warehouse(svc: Harness, code: str, priority: int, *, tenant: str = "default") -> None:
    async with admin(svc, tenant=tenant) as api:
        response = await api.post("/api/v1/inventory/warehouses",
                                  json={"code": code, "name": code.title(), "priority": priority})
        assert response.status_code == 201, response.text


async def outbox(svc: Harness, topic: str | None = None) -> list[dict[str, Any]]:
    """The events the service recorded, oldest first: topic, aggregate id and the envelope."""
    table = MESSAGING.outbox
    query = select(table.c.topic, table.c.aggregate_id, table.c.envelope).order_by(table.c.id)
    if topic is not None:
        query = query.where(table.c.topic == topic)
    async with svc.runtime.db.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [{"topic": r.topic, "aggregate_id": r.aggregate_id, **orjson.loads(r.envelope)} for r in rows]


async def stock_rows(svc: Harness, *, tenant: str = "default") -> dict[tuple[str, str], tuple[int, int]]:
    """(sku, warehouse) → (on_hand, reserved), straight from the table."""
    async with svc.runtime.db.engine.connect() as conn:
        rows = (await conn.execute(select(Stock.sku, Stock.warehouse, Stock.on_hand, Stock.reserved)
                                   .where(Stock.tenant_id == tenant))).all()
    return {(r.sku, r.warehouse): (int(r.on_hand), int(r.reserved)) for r in rows}


async def ledger_sums(svc: Harness, *, tenant: str = "default") -> dict[tuple[str, str], tuple[int, int]]:
    async with svc.runtime.db.engine.connect() as conn:
        rows = (await conn.execute(
            select(LedgerEntry.sku, LedgerEntry.warehouse, func.sum(LedgerEntry.on_hand_delta),
                   func.sum(LedgerEntry.reserved_delta))
            .where(LedgerEntry.tenant_id == tenant).group_by(LedgerEntry.sku, LedgerEntry.warehouse))).all()
    return {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}


async def assert_ledger_matches_stock(svc: Harness, *, tenant: str = "default") -> None:
    rows = await stock_rows(svc, tenant=tenant)
    sums = await ledger_sums(svc, tenant=tenant)
    assert {k: v for k, v in rows.items() if v != (0, 0)} == {k: v for k, v in sums.items() if v != (0, 0)}
    for on_hand, reserved in rows.values():
        assert 0 <= reserved <= on_hand


async def dead_letters(svc: Harness) -> int:
    async with svc.runtime.db.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(MESSAGING.dead_letters)) or 0)


def by_order(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for event in events:
        found[event["aggregate_id"]].append(event["topic"])
    return dict(found)


def assert_problem(response: Any, status: int, type_suffix: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if type_suffix is not None:
        assert body["type"].endswith("/" + type_suffix), body
    return body
