"""Checkout: the customer's cart becomes an order in RESERVATION_PENDING with order.created.v1, once
per Idempotency-Key; what the order was placed with leaves the cart; and every refusal writes
nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from amazonlite.services.orders.models import MESSAGING, Order
from tests.services.cart.shop import problem
from tests.services.orders.shop import ADDRESS, OrdersShop, key, running_orders

pytestmark = pytest.mark.asyncio(loop_scope="module")


def sku() -> str:
    return f"SKU-{uuid.uuid4().hex[:10].upper()}"


async def orders_of(shop: OrdersShop, tenant: str) -> int:
    async with shop.orders.runtime.db.session(tenant_id=tenant) as session:
        return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


async def created_events(shop: OrdersShop, order_id: str) -> list[dict[str, Any]]:
    table = MESSAGING.outbox
    async with shop.orders.runtime.db.engine.connect() as conn:
        rows = (await conn.execute(select(table.c.topic).where(table.c.aggregate_id == order_id))).all()
    return [{"topic": row.topic} for row in rows]


async def test_a_cart_becomes_an_order_and_leaves_the_cart(shop: OrdersShop) -> None:
    tenant = await shop.shop.tenant(tax_rate_bp=1800)
    a, b = sku(), sku()
    customer = await shop.customer_with_cart(tenant, {a: 10000, b: 2550}, quantity=2)
    async with shop.client(tenant, customer) as api:
        placed = await api.post("/api/v1/orders", json={"address": ADDRESS, "payment_provider": "sandbox"},
                                headers=key())
    assert placed.status_code == 202, placed.text
    order = placed.json()
    assert order["status"] == "RESERVATION_PENDING" and order["cancel_reason"] is None
    assert [(i["sku"], i["quantity"], i["unit_price"]["amount"]) for i in order["items"]] == [(a, 2, 10000),
                                                                                               (b, 2, 2550)]
    # The cart's own totals (18 % tax, half-even per line), snapshotted.
    assert order["subtotal"]["amount"] == 25100 and order["tax"]["amount"] == 4518
    assert order["total"]["amount"] == 29618 and order["shipping"]["amount"] == 0
    assert order["shipping_address"]["city"] == "Bengaluru" and order["payment"] is None
    assert [h["status"] for h in order["history"]] == ["RESERVATION_PENDING"]
    assert await created_events(shop, order["id"]) == [{"topic": "order.created.v1"}]

    # Stored encrypted: the address is nowhere in the row in clear.
    async with shop.orders.runtime.db.session(tenant_id=tenant) as session:
        row = await session.get(Order, uuid.UUID(order["id"]))
        assert row is not None and "Bengaluru" not in row.shipping_address_encrypted

    # The bus delivers order.created.v1: inventory holds the stock, the cart gives up what was ordered.
    async with shop.cart_of(tenant, customer) as cart:
        await cart.post("/api/v1/cart/items", json={"sku": a, "quantity": 1})  # added after the order
        await shop.forward_order_events()
        left = (await cart.get("/api/v1/cart")).json()
    assert [(i["sku"], i["quantity"]) for i in left["items"]] == [(a, 1)]
    async with shop.shop.admin(shop.shop.inventory, tenant) as inventory:
        held = (await inventory.get(f"/api/v1/inventory/{b}")).json()
    assert held["available"] == 8

    # Read back, and listed, by its customer; not found by anyone else.
    async with shop.client(tenant, customer) as api:
        assert (await api.get(f"/api/v1/orders/{order['id']}")).json()["id"] == order["id"]
        listed = (await api.get("/api/v1/orders")).json()
        assert [o["id"] for o in listed["items"]] == [order["id"]]
    async with shop.client(tenant, uuid.uuid4()) as stranger:
        problem(await stranger.get(f"/api/v1/orders/{order['id']}"), 404, "order-not-found")
        assert (await stranger.get("/api/v1/orders")).json()["items"] == []
    async with shop.shop.admin(shop.orders, tenant) as admin:
        assert (await admin.get(f"/api/v1/orders/{order['id']}")).status_code == 200


async def test_a_saved_address_is_the_customers_own(shop: OrdersShop) -> None:
    tenant = await shop.shop.tenant()
    customer = await shop.customer_with_cart(tenant, {sku(): 500})
    saved = await shop.address_of(tenant, customer)
    someone_elses = await shop.address_of(tenant, uuid.uuid4(), city="Pune")
    async with shop.client(tenant, customer) as api:
        refused = await api.post("/api/v1/orders", json={"shipping_address_id": someone_elses["id"],
                                                         "payment_provider": "sandbox"}, headers=key())
        problem(refused, 422, "address-not-found")
        assert await orders_of(shop, tenant) == 0
        placed = await api.post("/api/v1/orders", json={"shipping_address_id": saved["id"],
                                                        "payment_provider": "sandbox"}, headers=key())
    assert placed.status_code == 202, placed.text
    assert placed.json()["shipping_address"]["name"] == ADDRESS["name"]


async def test_the_same_key_places_one_order(shop: OrdersShop) -> None:
    tenant = await shop.shop.tenant()
    customer = await shop.customer_with_cart(tenant, {sku(): 700})
    body = {"address": ADDRESS, "payment_provider": "sandbox"}
    same = key()
    async with shop.client(tenant, customer) as api:
        answers = await asyncio.gather(*(api.post("/api/v1/orders", json=body, headers=same) for _ in range(4)))
        placed = [a for a in answers if a.status_code == 202]
        assert placed, [a.text for a in answers]
        # The others are the first answer replayed, or told it is still running.
        for answer in answers:
            assert answer.status_code in (202, 409), answer.text
            if answer.status_code == 202:
                assert answer.json()["id"] == placed[0].json()["id"]
        again = await api.post("/api/v1/orders", json=body, headers=same)
        assert again.status_code == 202 and again.json()["id"] == placed[0].json()["id"]
        assert again.headers["idempotent-replayed"] == "true"
        problem(await api.post("/api/v1/orders", json={**body, "payment_provider": "other"}, headers=same), 409,
                "idempotency-key-reused")
        problem(await api.post("/api/v1/orders", json=body), 400, "idempotency-key-required")
    assert await orders_of(shop, tenant) == 1


async def test_every_refusal_writes_nothing(shop: OrdersShop) -> None:
    tenant = await shop.shop.tenant()
    body = {"address": ADDRESS, "payment_provider": "sandbox"}
    nobody, empty = uuid.uuid4(), shop.client(tenant, uuid.uuid4())
    async with empty:
        problem(await empty.post("/api/v1/orders", json=body, headers=key()), 422, "cart-empty")
        problem(await empty.post("/api/v1/orders", json={**body, "payment_provider": "paypal"}, headers=key()), 422,
                "unknown-payment-provider")
        problem(await empty.post("/api/v1/orders", json={"payment_provider": "sandbox"}, headers=key()), 422)
        problem(await empty.post("/api/v1/orders", json={**body, "shipping_address_id": str(nobody)},
                                 headers=key()), 422)
    async with shop.orders.client(tenant=tenant) as anonymous:
        problem(await anonymous.post("/api/v1/orders", json=body, headers=key()), 401)

    short = sku()
    customer = await shop.customer_with_cart(tenant, {short: 900}, quantity=3, stock=3)
    await shop.shop.stock(tenant, short, 2)
    async with shop.client(tenant, customer) as api:
        refused = problem(await api.post("/api/v1/orders", json=body, headers=key()), 409, "insufficient-stock")
        assert (refused["sku"], refused["available"]) == (short, 2)

    repriced = sku()
    customer = await shop.customer_with_cart(tenant, {repriced: 1000})
    async with shop.shop.admin(shop.shop.catalog, tenant) as catalog:
        found = (await catalog.get("/api/v1/skus", params={"sku": repriced})).json()["items"][0]
        current = (await catalog.get(f"/api/v1/products/{found['product_id']}")).json()
    # The catalog changes the price; the cart has not heard of it yet (the event is not forwarded).
    async with shop.shop.admin(shop.shop.catalog, tenant) as catalog:
        changed = await catalog.patch(f"/api/v1/products/{current['id']}", json={"variants": [
            {"sku": v["sku"], "name": v["name"], "options": v["options"], "price": {"amount": 1200, "currency": "INR"}}
            for v in current["variants"]]})
        assert changed.status_code == 200, changed.text
    async with shop.client(tenant, customer) as api:
        refused = problem(await api.post("/api/v1/orders", json=body, headers=key()), 409, "prices-changed")
        assert refused["skus"] == [repriced]
    assert await orders_of(shop, tenant) == 0


async def test_a_dependency_that_cannot_answer_is_503_with_retry_after_and_writes_nothing(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Inventory (here) cannot be reached: the checkout is refused as a retryable outage, not a 500,
    and the cart keeps its lines. A shop of its own: the outage trips the orders' breaker for it."""
    async with running_orders(tmp_path_factory.mktemp("outage")) as own:
        tenant = await own.shop.tenant()
        item = sku()
        customer = await own.customer_with_cart(tenant, {item: 1500})
        own.orders.runtime.services.register("inventory", url="http://127.0.0.1:9")  # nobody listens there
        async with own.client(tenant, customer) as api:
            refused = await api.post("/api/v1/orders", json={"address": ADDRESS, "payment_provider": "sandbox"},
                                     headers=key())
        problem(refused, 503, "checkout-dependency-unavailable")
        assert int(refused.headers["Retry-After"]) >= 1
        assert await orders_of(own, tenant) == 0
        async with own.cart_of(tenant, customer) as cart:
            assert [line["sku"] for line in (await cart.get("/api/v1/cart")).json()["items"]] == [item]
