"""A shop for the cart tests: the real tenants, catalog, inventory and cart services in-process on
SQLite, each registered in the others' directories, and the catalog's events forwarded to inventory
and the cart through their consumers. Each test makes a tenant of its own."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import select

from amazonlite.contracts.orders import OrderCancelledV1, OrderConfirmedV1
from amazonlite.platform.bus import Message
from amazonlite.platform.service import ServiceModule
from amazonlite.services.cart.app import SERVICE as CART
from amazonlite.services.cart.store import Owner, StoredCart
from amazonlite.services.catalog.app import SERVICE as CATALOG
from amazonlite.services.catalog.models import MESSAGING as CATALOG_MESSAGING
from amazonlite.services.inventory.app import SERVICE as INVENTORY
from amazonlite.services.tenants.app import SERVICE as TENANTS
from tests.support.harness import Harness, fast_platform_settings, running_service

SECRET = "cart-tests-internal-token-secret-0123456789"


@dataclass
class Shop:
    tenants: Harness
    catalog: Harness
    inventory: Harness
    cart: Harness
    forwarded: int = 0
    made: list[str] = field(default_factory=list)

    # Tenants --------------------------------------------------------------------------------------

    async def tenant(self, *, currency: str = "INR", tax_rate_bp: int = 0) -> str:
        """A new tenant of its own for one test."""
        tenant = f"t-{uuid.uuid4().hex[:12]}"
        async with self.tenants.client(tenant="default", user_id=uuid.uuid4(), roles=("platform_admin",)) as api:
            made = await api.post("/api/v1/admin/tenants", json={
                "id": tenant, "name": tenant, "currency": currency, "tax_rate_bp": tax_rate_bp})
            assert made.status_code == 201, made.text
        return tenant

    # Products and stock ---------------------------------------------------------------------------

    async def product(self, tenant: str, skus: dict[str, int], *, stock: int | None = 10, currency: str = "INR",
                      name: str = "Trail Shoe", status: str = "active") -> dict[str, Any]:
        """A product with one variant per SKU at its price, known to inventory and the cart, and
        `stock` units of each SKU in inventory's default warehouse."""
        variants = [{"sku": sku, "name": f"Size {sku}", "options": {},
                     "price": {"amount": price, "currency": currency}} for sku, price in skus.items()]
        async with self.admin(self.catalog, tenant) as api:
            answer = await api.post("/api/v1/products", json={
                "name": name, "description": "", "status": status, "variants": variants})
            assert answer.status_code == 201, answer.text
        await self.forward_catalog_events()
        if stock is not None:
            for sku in skus:
                await self.stock(tenant, sku, stock)
        return dict(answer.json())

    async def reprice(self, tenant: str, product: dict[str, Any], prices: dict[str, int], *,
                      status: str | None = None) -> None:
        variants = [{"sku": v["sku"], "name": v["name"], "options": v["options"],
                     "price": {"amount": prices.get(v["sku"], v["price"]["amount"]),
                               "currency": v["price"]["currency"]}} for v in product["variants"]]
        body: dict[str, Any] = {"variants": variants}
        if status is not None:
            body["status"] = status
        async with self.admin(self.catalog, tenant) as api:
            answer = await api.patch(f"/api/v1/products/{product['id']}", json=body)
            assert answer.status_code == 200, answer.text
        await self.forward_catalog_events()

    async def delete_product(self, tenant: str, product: dict[str, Any]) -> None:
        async with self.admin(self.catalog, tenant) as api:
            assert (await api.delete(f"/api/v1/products/{product['id']}")).status_code == 204
        await self.forward_catalog_events()

    async def stock(self, tenant: str, sku: str, units: int) -> None:
        async with self.admin(self.inventory, tenant) as api:
            answer = await api.put(f"/api/v1/inventory/{sku}/warehouses/default",
                                   json={"set": units, "reason": "cart test"})
            assert answer.status_code == 200, answer.text

    async def forward_catalog_events(self) -> None:
        """Deliver what the catalog recorded since the last call to inventory and the cart, as the
        bus would."""
        table = CATALOG_MESSAGING.outbox
        async with self.catalog.runtime.db.engine.connect() as conn:
            rows = (await conn.execute(select(table.c.id, table.c.topic, table.c.aggregate_id, table.c.envelope)
                                       .where(table.c.id > self.forwarded).order_by(table.c.id))).all()
        for row in rows:
            message = Message(row.topic, row.aggregate_id.encode(), row.envelope.encode())
            await self.inventory.runtime.consumer.deliver(message)
            await self.cart.runtime.consumer.deliver(message)
            self.forwarded = row.id

    # Callers ----------------------------------------------------------------------------------------

    @staticmethod
    def admin(svc: Harness, tenant: str) -> httpx.AsyncClient:
        return svc.client(tenant=tenant, user_id=uuid.uuid4(), roles=("tenant_admin",))

    def guest(self, tenant: str, cart_id: str | None = None) -> httpx.AsyncClient:
        client = self.cart.client(tenant=tenant)
        if cart_id is not None:
            client.headers["X-Cart-Id"] = cart_id
        return client

    def customer(self, tenant: str, user_id: uuid.UUID | None = None) -> httpx.AsyncClient:
        return self.cart.client(tenant=tenant, user_id=user_id or uuid.uuid4(), roles=("customer",))

    def coupon_admin(self, tenant: str) -> httpx.AsyncClient:
        return self.admin(self.cart, tenant)

    # Order events -------------------------------------------------------------------------------------

    async def confirmed(self, tenant: str, code: str, *, order_id: uuid.UUID | None = None,
                        customer_id: uuid.UUID | None = None, event_id: uuid.UUID | None = None) -> uuid.UUID:
        order = order_id or uuid.uuid4()
        await self.cart.deliver(OrderConfirmedV1(order_id=order, customer_id=customer_id or uuid.uuid4(),
                                                 coupon_code=code, confirmed_at=dt.datetime.now(dt.UTC)),
                                tenant=tenant, event_id=event_id, key=str(order))
        return order

    async def cancelled(self, tenant: str, code: str, *, order_id: uuid.UUID, customer_id: uuid.UUID | None = None,
                        event_id: uuid.UUID | None = None) -> None:
        await self.cart.deliver(OrderCancelledV1(order_id=order_id, customer_id=customer_id or uuid.uuid4(),
                                                 reason="customer", coupon_code=code,
                                                 cancelled_at=dt.datetime.now(dt.UTC)),
                                tenant=tenant, event_id=event_id, key=str(order_id))


def sqlite(path: Path, name: str) -> str:
    return f"sqlite+aiosqlite:///{path / f'{name}.sqlite3'}"


@asynccontextmanager
async def running_shop(data_dir: Path, *, cart_url: str | None = None, redis_url: str | None = None,
                       redis_prefix: str = "amazonlite", **cart_settings: Any) -> AsyncIterator[Shop]:
    """The four services; the cart on `cart_url` (SQLite by default), with Redis if `redis_url`."""
    platform = fast_platform_settings(data_dir, internal_token_secret=SECRET, redis_prefix=redis_prefix)
    async with AsyncExitStack() as stack:
        async def start(module: ServiceModule, url: str) -> Harness:
            return await stack.enter_async_context(running_service(module, url, data_dir, platform=platform))

        tenants = await start(TENANTS, sqlite(data_dir, "tenants"))
        catalog = await start(CATALOG, sqlite(data_dir, "catalog"))
        inventory = await start(INVENTORY, sqlite(data_dir, "inventory"))
        cart = await stack.enter_async_context(_cart(data_dir, cart_url or sqlite(data_dir, "cart"), platform,
                                                     redis_url, cart_settings))
        for name, svc in (("tenants", tenants), ("catalog", catalog), ("inventory", inventory)):
            cart.runtime.services.register(name, app=svc.app)
        yield Shop(tenants, catalog, inventory, cart)


@asynccontextmanager
async def _cart(data_dir: Path, url: str, platform: Any, redis_url: str | None,
                settings: dict[str, Any]) -> AsyncIterator[Harness]:
    """The cart service, with its own settings and, if asked, a real Redis client."""
    import asyncio

    from amazonlite.platform.bus.memory import InProcessTransport
    from amazonlite.platform.migrations import upgrade
    from amazonlite.platform.revocation import MemoryRevocationStore
    from amazonlite.platform.service import ServiceRuntime, create_service_app

    await asyncio.to_thread(upgrade, CART.name, CART.migrations, url)
    redis = None
    if redis_url is not None:
        from redis.asyncio import Redis

        redis = Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    transport = InProcessTransport()
    runtime = ServiceRuntime(CART, platform, transport=transport, revocations=MemoryRevocationStore(), redis=redis,
                             settings=CART.settings(database_url=url, **settings))
    app = create_service_app(runtime, own_lifespan=False)
    await transport.start()
    await runtime.start()
    try:
        yield Harness(runtime, app)
    finally:
        await runtime.stop()
        await transport.stop()
        if redis is not None:
            await redis.aclose()


def problem(response: httpx.Response, status: int, type_suffix: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.text
    body: dict[str, Any] = response.json()
    if type_suffix is not None:
        assert body["type"].endswith("/" + type_suffix), body
    return body


def money(amount: int, currency: str = "INR") -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


def envelope_json(response: httpx.Response) -> Any:
    return orjson.loads(response.content)


async def merge_while_the_guest_adds(shop: Shop, guest: httpx.AsyncClient, me: httpx.AsyncClient, first: str,
                                     second: str) -> tuple[httpx.Response, httpx.Response]:
    """The guest adds `first`, then a merge of the guest cart by `me` runs, and right after the merge
    has read the guest cart the guest adds `second` (committed before the merge goes on). Returns the
    merge's answer and the guest's second add's."""
    guest.headers["X-Cart-Id"] = (await guest.post("/api/v1/cart/items", json={"sku": first, "quantity": 1})
                                  ).json()["id"]
    store = shop.cart.runtime.state.carts
    original = store.load
    during: list[httpx.Response] = []
    started: list[bool] = []

    async def load(session: Any, owner: Owner, *, for_change: bool = False) -> StoredCart | None:
        found = await original(session, owner, for_change=for_change)
        if owner == Owner("guest", guest.headers["X-Cart-Id"]) and for_change and not started:
            started.append(True)  # the guest's own add reads its cart too: only the merge's first read
            during.append(await guest.post("/api/v1/cart/items", json={"sku": second, "quantity": 1}))
        return found

    store.load = load
    try:
        merged = await me.post("/api/v1/cart/merge", json={"guest_cart_id": guest.headers["X-Cart-Id"]})
    finally:
        store.load = original
    return merged, during[0]
