"""Plain keyword-only factories and helpers for the catalog tests."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import func, select

from amazonlite.services.catalog.models import MESSAGING, Product
from tests.support.harness import Harness

ADMIN = ("tenant_admin",)
CUSTOMER = ("customer",)


def variant(*, sku: str, price: int = 149_900, name: str | None = None, currency: str = "INR",
            options: dict[str, str] | None = None) -> dict[str, Any]:
    return {"sku": sku, "name": name or sku, "options": options or {},
            "price": {"amount": price, "currency": currency}}


def product_body(*, name: str = "Trail Runner Shoe", sku: str | None = None, price: int = 149_900,
                 status: str = "active", category_id: str | None = None, brand_id: str | None = None,
                 variants: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name, "description": f"{name}, described.", "status": status,
        "attributes": {"material": "mesh", "sizes": ["UK 8", "UK 9"]},
        "media": [{"url": "https://images.amazonlite.dev/test/1.jpg", "alt": name}],
        "variants": variants if variants is not None else [variant(sku=sku or f"SKU-{uuid.uuid4().hex[:10]}",
                                                                   price=price)],
        **extra,
    }
    if category_id is not None:
        body["category_id"] = category_id
    if brand_id is not None:
        body["brand_id"] = brand_id
    return body


def admin(svc: Harness, *, tenant: str = "default") -> Any:
    return svc.client(tenant=tenant, user_id=uuid.uuid4(), roles=ADMIN)


def customer(svc: Harness, *, tenant: str = "default") -> Any:
    return svc.client(tenant=tenant, user_id=uuid.uuid4(), roles=CUSTOMER)


def anonymous(svc: Harness, *, tenant: str = "default") -> Any:
    return svc.client(tenant=tenant)


async def outbox(svc: Harness) -> list[dict[str, Any]]:
    """The events the service recorded, oldest first: topic, aggregate id and the envelope."""
    table = MESSAGING.outbox
    async with svc.runtime.db.engine.connect() as conn:
        rows = (await conn.execute(select(table.c.topic, table.c.aggregate_id, table.c.envelope)
                                   .order_by(table.c.id))).all()
    return [{"topic": r.topic, "aggregate_id": r.aggregate_id, **orjson.loads(r.envelope)} for r in rows]


async def count_products(svc: Harness) -> int:
    async with svc.runtime.db.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(Product.__table__)) or 0)


def assert_problem(response: Any, status: int, type_suffix: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if type_suffix is not None:
        assert body["type"].endswith("/" + type_suffix), body
    return body
