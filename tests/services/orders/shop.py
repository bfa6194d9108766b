"""A shop for the orders tests: the cart tests' shop (tenants, catalog, inventory, cart) with the
users and orders services, all in-process on SQLite and registered in the orders' directory. The
order's events reach inventory and the cart through their consumers when a test forwards them;
payments does not exist yet, so tests deliver its events to orders themselves."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from amazonlite.contracts import (
    PaymentAuthorizedV1,
    PaymentFailedV1,
    PaymentRefundedV1,
    PaymentRequestedV1,
    UserRegisteredV1,
)
from amazonlite.contracts.base import Money
from amazonlite.platform.bus import Message
from amazonlite.services.orders.app import SERVICE as ORDERS
from amazonlite.services.orders.models import MESSAGING as ORDERS_MESSAGING
from amazonlite.services.users.app import SERVICE as USERS
from tests.services.cart.shop import SECRET, Shop, running_shop, sqlite
from tests.support.harness import Harness, fast_platform_settings, running_service


@dataclass
class OrdersShop:
    shop: Shop
    users: Harness
    orders: Harness
    forwarded: int = 0

    async def customer_with_cart(self, tenant: str, skus: dict[str, int], *, quantity: int = 1,
                                 stock: int = 10) -> uuid.UUID:
        """A customer whose cart holds `quantity` of each SKU (a product of them, `stock` in stock)."""
        await self.shop.product(tenant, skus, stock=stock)
        customer = uuid.uuid4()
        async with self.shop.customer(tenant, customer) as cart:
            for sku in skus:
                added = await cart.post("/api/v1/cart/items", json={"sku": sku, "quantity": quantity})
                assert added.status_code == 200, added.text
        return customer

    async def address_of(self, tenant: str, customer: uuid.UUID, **changes: str) -> dict[str, Any]:
        """A saved address of the customer (their profile made first, as signing up makes it)."""
        await self.users.deliver(UserRegisteredV1(user_id=customer, email=f"{customer.hex[:12]}@example.com",
                                                  name="Asha Rao", roles=["customer"]), tenant=tenant)
        async with self.users.client(tenant=tenant, user_id=customer, roles=("customer",)) as users:
            saved = await users.post("/api/v1/users/me/addresses", json={**ADDRESS, **changes})
            assert saved.status_code == 201, saved.text
            return dict(saved.json())

    def client(self, tenant: str, customer: uuid.UUID) -> httpx.AsyncClient:
        return self.orders.client(tenant=tenant, user_id=customer, roles=("customer",))

    def cart_of(self, tenant: str, customer: uuid.UUID) -> httpx.AsyncClient:
        return self.shop.customer(tenant, customer)

    async def forward_order_events(self) -> list[Message]:
        """Deliver what orders recorded since the last call to inventory and the cart, as the bus
        would; the messages delivered."""
        table = ORDERS_MESSAGING.outbox
        async with self.orders.runtime.db.engine.connect() as conn:
            rows = (await conn.execute(select(table.c.id, table.c.topic, table.c.aggregate_id, table.c.envelope)
                                       .where(table.c.id > self.forwarded).order_by(table.c.id))).all()
        messages = [Message(row.topic, row.aggregate_id.encode(), row.envelope.encode()) for row in rows]
        for message in messages:
            for consumer in (self.shop.inventory.runtime.consumer, self.shop.cart.runtime.consumer):
                if message.topic in consumer.handlers.subscriptions:
                    await consumer.deliver(message)
        if rows:
            self.forwarded = rows[-1].id
        return messages

    async def forward_inventory_events(self) -> None:
        """Deliver inventory's answers (reserved, rejected) to orders, as the bus would."""
        from amazonlite.services.inventory.models import MESSAGING as INVENTORY_MESSAGING

        table = INVENTORY_MESSAGING.outbox
        async with self.shop.inventory.runtime.db.engine.connect() as conn:
            rows = (await conn.execute(select(table.c.topic, table.c.aggregate_id, table.c.envelope)
                                       .where(table.c.topic.in_(("inventory.reserved.v1", "inventory.rejected.v1")))
                                       .order_by(table.c.id))).all()
        await self.orders.runtime.consumer.deliver_many(
            [Message(row.topic, row.aggregate_id.encode(), row.envelope.encode()) for row in rows])

    # Payments' facts, as payments will publish them ---------------------------------------------------

    async def payment_requested(self, tenant: str, order_id: uuid.UUID, *, payment_id: uuid.UUID | None = None,
                                amount: int = 0) -> uuid.UUID:
        payment = payment_id or uuid.uuid4()
        await self.orders.deliver(PaymentRequestedV1(
            order_id=order_id, payment_id=payment, provider="sandbox", amount=Money(amount=amount, currency="INR"),
            client={"page_url": f"http://shop.test/pay/{payment}"}, requested_at=dt.datetime.now(dt.UTC)),
            tenant=tenant, key=str(order_id))
        return payment

    async def payment_authorized(self, tenant: str, order_id: uuid.UUID, payment_id: uuid.UUID, amount: int,
                                 currency: str = "INR") -> None:
        await self.orders.deliver(PaymentAuthorizedV1(
            order_id=order_id, payment_id=payment_id, provider="sandbox",
            amount=Money(amount=amount, currency=currency), authorized_at=dt.datetime.now(dt.UTC)),
            tenant=tenant, key=str(order_id))

    async def payment_failed(self, tenant: str, order_id: uuid.UUID, payment_id: uuid.UUID) -> None:
        await self.orders.deliver(PaymentFailedV1(
            order_id=order_id, payment_id=payment_id, provider="sandbox", reason="card_declined",
            failed_at=dt.datetime.now(dt.UTC)), tenant=tenant, key=str(order_id))

    async def payment_refunded(self, tenant: str, order_id: uuid.UUID, payment_id: uuid.UUID, amount: int) -> None:
        await self.orders.deliver(PaymentRefundedV1(
            order_id=order_id, payment_id=payment_id, provider="sandbox", amount=Money(amount=amount, currency="INR"),
            kind="refund", reason="order cancelled", refunded_at=dt.datetime.now(dt.UTC)),
            tenant=tenant, key=str(order_id))


@asynccontextmanager
async def running_orders(data_dir: Path) -> AsyncIterator[OrdersShop]:
    platform = fast_platform_settings(data_dir, internal_token_secret=SECRET)
    async with AsyncExitStack() as stack:
        shop = await stack.enter_async_context(running_shop(data_dir))
        users = await stack.enter_async_context(running_service(USERS, sqlite(data_dir, "users"), data_dir,
                                                                platform=platform))
        orders = await stack.enter_async_context(running_service(ORDERS, sqlite(data_dir, "orders"), data_dir,
                                                                 platform=platform))
        for name, svc in (("tenants", shop.tenants), ("catalog", shop.catalog), ("inventory", shop.inventory),
                          ("cart", shop.cart), ("users", users)):
            orders.runtime.services.register(name, app=svc.app)
        yield OrdersShop(shop, users, orders)


ADDRESS: dict[str, Any] = {"name": "Asha Rao", "line1": "12 MG Road", "city": "Bengaluru", "postal_code": "560001",
                           "country": "IN", "phone": "+91 98765 43210"}


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}
