"""The order saga on a placed order: inventory's and payments' events, the customer's cancel and the
deadline sweeper move it along the table, emit its compensations, and nothing late, duplicated or
out of order moves it twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from amazonlite.services.orders.models import MESSAGING, OrderStep
from amazonlite.services.orders.tasks import cancel_overdue
from tests.platform.helpers import counter
from tests.services.cart.shop import problem
from tests.services.orders.shop import ADDRESS, OrdersShop, key

pytestmark = pytest.mark.asyncio(loop_scope="module")


def sku() -> str:
    return f"SKU-{uuid.uuid4().hex[:10].upper()}"


async def place(shop: OrdersShop, tenant: str, skus: dict[str, int], *, quantity: int = 1, stock: int = 10
                ) -> tuple[uuid.UUID, dict[str, Any]]:
    customer = await shop.customer_with_cart(tenant, skus, quantity=quantity, stock=stock)
    async with shop.client(tenant, customer) as api:
        placed = await api.post("/api/v1/orders", json={"address": ADDRESS, "payment_provider": "sandbox"},
                                headers=key())
    assert placed.status_code == 202, placed.text
    return customer, placed.json()


async def read(shop: OrdersShop, tenant: str, customer: uuid.UUID, order_id: str) -> dict[str, Any]:
    async with shop.client(tenant, customer) as api:
        answer = await api.get(f"/api/v1/orders/{order_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def topics(shop: OrdersShop, order_id: str) -> list[str]:
    table = MESSAGING.outbox
    async with shop.orders.runtime.db.engine.connect() as conn:
        rows = (await conn.execute(select(table.c.topic).where(table.c.aggregate_id == order_id)
                                   .order_by(table.c.id))).all()
    return [row.topic for row in rows]


async def steps(shop: OrdersShop, tenant: str, order_id: str) -> list[tuple[str, str, str]]:
    async with shop.orders.runtime.db.session(tenant_id=tenant) as session:
        rows = (await session.scalars(select(OrderStep).where(OrderStep.order_id == uuid.UUID(order_id))
                                      .order_by(OrderStep.id))).all()
    return [(row.outcome, row.trigger, row.status) for row in rows]


async def available(shop: OrdersShop, tenant: str, sku_: str) -> int:
    async with shop.shop.admin(shop.shop.inventory, tenant) as inventory:
        return int((await inventory.get(f"/api/v1/inventory/{sku_}")).json()["available"])


async def reserved_and_requested(shop: OrdersShop, tenant: str, order: dict[str, Any]) -> uuid.UUID:
    """Inventory holds the order's stock and payments asks for its money."""
    await shop.forward_order_events()
    await shop.forward_inventory_events()
    return await shop.payment_requested(tenant, uuid.UUID(order["id"]), amount=order["total"]["amount"])


async def test_the_happy_path_confirms_and_deducts(shop: OrdersShop) -> None:
    tenant = await shop.shop.tenant()
    item = sku()
    customer, order = await place(shop, tenant, {item: 4000}, quantity=2)
    payment = await reserved_and_requested(shop, tenant, order)
    waiting = await read(shop, tenant, customer, order["id"])
    assert waiting["status"] == "PAYMENT_PENDING"
    assert waiting["payment"]["client"] == {"page_url": f"http://shop.test/pay/{payment}"}
    assert waiting["payment"]["status"] == "requested" and waiting["payment"]["expires_at"] is not None
    assert await available(shop, tenant, item) == 8

    before = (counter("amazonlite_orders_saga_outcomes_total", outcome="confirmed", reason=""),
              counter("amazonlite_orders_saga_seconds_count", outcome="confirmed"))
    await shop.payment_authorized(tenant, uuid.UUID(order["id"]), payment, order["total"]["amount"])
    assert (counter("amazonlite_orders_saga_outcomes_total", outcome="confirmed", reason=""),
            counter("amazonlite_orders_saga_seconds_count", outcome="confirmed")) == (before[0] + 1, before[1] + 1)
    confirmed = await read(shop, tenant, customer, order["id"])
    assert confirmed["status"] == "CONFIRMED" and confirmed["payment"]["status"] == "authorized"
    assert confirmed["payment"]["client"] == {}  # nothing left to pay
    assert [h["status"] for h in confirmed["history"]] == ["RESERVATION_PENDING", "PAYMENT_PENDING", "CONFIRMED"]
    assert await topics(shop, order["id"]) == ["order.created.v1", "order.confirmed.v1"]
    await shop.forward_order_events()
    async with shop.shop.admin(shop.shop.inventory, tenant) as inventory:
        figures = (await inventory.get(f"/api/v1/inventory/{item}")).json()
    assert figures["available"] == 8 and figures["warehouses"][0]["on_hand"] == 8  # deducted, not held

    # The same authorization again (another delivery) or a late failure: noted as ignored, nothing moves.
    await shop.payment_authorized(tenant, uuid.UUID(order["id"]), payment, order["total"]["amount"])
    await shop.payment_failed(tenant, uuid.UUID(order["id"]), payment)
    assert (await read(shop, tenant, customer, order["id"]))["status"] == "CONFIRMED"
    assert await topics(shop, order["id"]) == ["order.created.v1", "order.confirmed.v1"]
    assert (await steps(shop, tenant, order["id"]))[-2:] == [("ignored", "payment.authorized", "CONFIRMED"),
                                                             ("ignored", "payment.failed", "CONFIRMED")]


async def test_an_authorization_that_overtakes_its_request_confirms_the_order(shop: OrdersShop) -> None:
    """A consumer catching up after a restart reads payments' two topics in any order."""
    tenant = await shop.shop.tenant()
    item = sku()
    customer, order = await place(shop, tenant, {item: 4000})
    await shop.forward_order_events()
    await shop.forward_inventory_events()
    payment = uuid.uuid4()
    await shop.payment_authorized(tenant, uuid.UUID(order["id"]), payment, order["total"]["amount"])
    confirmed = await read(shop, tenant, customer, order["id"])
    assert confirmed["status"] == "CONFIRMED"
    assert (confirmed["payment"]["id"], confirmed["payment"]["status"]) == (str(payment), "authorized")
    assert await topics(shop, order["id"]) == ["order.created.v1", "order.confirmed.v1"]
    requested = await shop.payment_requested(tenant, uuid.UUID(order["id"]), amount=order["total"]["amount"],
                                             payment_id=payment)
    assert requested == payment
    late = await read(shop, tenant, customer, order["id"])
    assert (late["status"], late["payment"]["status"], late["payment"]["expires_at"]) == (
        "CONFIRMED", "authorized", None)
    assert (await steps(shop, tenant, order["id"]))[-1] == ("ignored", "payment.requested", "CONFIRMED")


async def test_no_stock_cancels_out_of_stock_and_releases_nothing(shop: OrdersShop) -> None:
    tenant = await shop.shop.tenant()
    item = sku()
    customer, order = await place(shop, tenant, {item: 1000}, quantity=2, stock=2)
    await shop.shop.stock(tenant, item, 1)  # sold elsewhere between checkout and reservation
    await shop.forward_order_events()
    await shop.forward_inventory_events()
    cancelled = await read(shop, tenant, customer, order["id"])
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("CANCELLED", "out_of_stock")
    assert await topics(shop, order["id"]) == ["order.created.v1", "order.cancelled.v1"]


async def test_a_failed_payment_cancels_and_releases_the_stock(shop: OrdersShop) -> None:
    tenant = await shop.shop.tenant()
    item = sku()
    customer, order = await place(shop, tenant, {item: 1500}, quantity=3)
    payment = await reserved_and_requested(shop, tenant, order)
    assert await available(shop, tenant, item) == 7
    failed_before = counter("amazonlite_orders_saga_outcomes_total", outcome="cancelled", reason="payment_failed")
    await shop.payment_failed(tenant, uuid.UUID(order["id"]), payment)
    assert counter("amazonlite_orders_saga_outcomes_total", outcome="cancelled",
                   reason="payment_failed") == failed_before + 1
    cancelled = await read(shop, tenant, customer, order["id"])
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("CANCELLED", "payment_failed")
    assert cancelled["payment"]["status"] == "failed"
    assert await topics(shop, order["id"]) == ["order.created.v1", "order.cancelled.v1",
                                               "inventory.release.requested.v1"]
    await shop.forward_order_events()
    assert await available(shop, tenant, item) == 10


async def test_the_customer_cancels_before_shipping_and_the_refund_is_noted(shop: OrdersShop) -> None:
    tenant = await shop.shop.tenant()
    customer, order = await place(shop, tenant, {sku(): 2500})
    payment = await reserved_and_requested(shop, tenant, order)
    async with shop.client(tenant, uuid.uuid4()) as stranger:
        problem(await stranger.post(f"/api/v1/orders/{order['id']}/cancel"), 404, "order-not-found")
    async with shop.shop.admin(shop.orders, tenant) as admin:  # an admin reads orders, cancels none
        problem(await admin.post(f"/api/v1/orders/{order['id']}/cancel"), 404, "order-not-found")
    async with shop.client(tenant, customer) as api:
        cancelled = await api.post(f"/api/v1/orders/{order['id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert (cancelled.json()["status"], cancelled.json()["cancel_reason"]) == ("CANCELLED", "customer")
        again = problem(await api.post(f"/api/v1/orders/{order['id']}/cancel"), 409, "order-not-cancellable")
        assert again["order_status"] == "CANCELLED"
    # The money comes back later: the order notes it and stays cancelled.
    await shop.payment_refunded(tenant, uuid.UUID(order["id"]), payment, order["total"]["amount"])
    refunded = await read(shop, tenant, customer, order["id"])
    assert refunded["status"] == "CANCELLED" and refunded["payment"]["status"] == "refunded"
    assert [h["status"] for h in refunded["history"]] == ["RESERVATION_PENDING", "PAYMENT_PENDING", "CANCELLED"]
    # A success after the cancellation (a late webhook): ignored here; payments refunds it.
    await shop.payment_authorized(tenant, uuid.UUID(order["id"]), payment, order["total"]["amount"])
    assert (await read(shop, tenant, customer, order["id"]))["status"] == "CANCELLED"
    assert await topics(shop, order["id"]) == ["order.created.v1", "order.cancelled.v1",
                                               "inventory.release.requested.v1"]


async def test_a_payment_for_another_amount_confirms_nothing(shop: OrdersShop) -> None:
    tenant = await shop.shop.tenant()
    customer, order = await place(shop, tenant, {sku(): 999})
    payment = await reserved_and_requested(shop, tenant, order)
    await shop.payment_authorized(tenant, uuid.UUID(order["id"]), payment, order["total"]["amount"] - 1)
    await shop.payment_authorized(tenant, uuid.UUID(order["id"]), payment, order["total"]["amount"], currency="USD")
    assert (await read(shop, tenant, customer, order["id"]))["status"] == "PAYMENT_PENDING"
    assert [s[0] for s in await steps(shop, tenant, order["id"])][-2:] == ["ignored", "ignored"]


async def test_deadlines_cancel_once_however_many_sweepers_run(shop: OrdersShop) -> None:
    tenant = await shop.shop.tenant()
    paying_customer, paying = await place(shop, tenant, {sku(): 300})
    await reserved_and_requested(shop, tenant, paying)
    waiting_customer, waiting = await place(shop, tenant, {sku(): 300})  # inventory never answers it
    # Nothing is overdue yet.
    assert await cancel_overdue(shop.orders.runtime) == 0
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    swept = await asyncio.gather(*(cancel_overdue(shop.orders.runtime, now=later) for _ in range(4)))
    ours = {waiting["id"], paying["id"]}
    assert sum(swept) >= 2
    first = await read(shop, tenant, waiting_customer, waiting["id"])
    second = await read(shop, tenant, paying_customer, paying["id"])
    assert (first["status"], first["cancel_reason"]) == ("CANCELLED", "reservation_timeout")
    assert (second["status"], second["cancel_reason"]) == ("CANCELLED", "payment_timeout")
    for order_id in ours:
        assert (await topics(shop, order_id)).count("order.cancelled.v1") == 1
    assert "inventory.release.requested.v1" in await topics(shop, paying["id"])
    assert "inventory.release.requested.v1" not in await topics(shop, waiting["id"])
