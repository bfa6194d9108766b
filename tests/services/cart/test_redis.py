"""Distributed carts: guests' in Redis with the idle TTL, customers' in SQL with a Redis copy, so
that losing Redis (FLUSHALL) loses no customer's cart (a real Redis server of this module's own)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import func, select

from amazonlite.platform.db import TransientConflict
from amazonlite.services.cart.models import Cart
from tests.services.cart.shop import Shop, merge_while_the_guest_adds, money, problem, running_shop
from tests.support import servers

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.redis]

TTL = 3600


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def redis_shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    # A Redis of this module's own: losing Redis is a real FLUSHALL, which would wipe the keys of
    # every other test sharing the machine's Redis.
    with servers.private_redis() as url:
        async with running_shop(tmp_path_factory.mktemp("redis-shop"), redis_url=url,
                                redis_prefix=servers.redis_prefix(), idle_ttl_seconds=TTL) as shop:
            yield shop


def redis_of(shop: Shop) -> Redis:
    return shop.cart.runtime.redis  # type: ignore[no-any-return]


def prefix_of(shop: Shop) -> str:
    return shop.cart.runtime.platform.redis_prefix


async def lose_redis(shop: Shop) -> None:
    """FLUSHALL: every key gone, as after a restart without persistence."""
    redis = redis_of(shop)
    await redis.flushall()
    assert await redis.dbsize() == 0


async def sql_carts(shop: Shop) -> int:
    async with shop.cart.runtime.db.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(Cart.__table__)) or 0)


def sku() -> str:
    return f"SKU-{uuid.uuid4().hex[:10].upper()}"


class TestGuestCartsInRedis:
    async def test_a_guest_cart_is_a_redis_key_of_its_tenant_with_the_idle_ttl(self, redis_shop: Shop) -> None:
        shop = redis_shop
        tenant = await shop.tenant()
        shoe = sku()
        await shop.product(tenant, {shoe: 2500})
        before = await sql_carts(shop)
        async with shop.guest(tenant) as guest:
            cart = (await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 2})).json()
            guest.headers["X-Cart-Id"] = cart["id"]
            key = f"{prefix_of(shop)}:cart:{tenant}:guest:{cart['id']}"
            assert 0 < await redis_of(shop).ttl(key) <= TTL
            assert await sql_carts(shop) == before  # not in SQL
            await redis_of(shop).expire(key, 100)
            read = (await guest.get("/api/v1/cart")).json()
            assert read == cart and read["subtotal"] == money(5000)
            assert await redis_of(shop).ttl(key) > 100  # a read pushes the expiry back

            await redis_of(shop).delete(key)  # expired
            problem(await guest.get("/api/v1/cart"), 404, "cart-not-found")

    async def test_concurrent_adds_to_one_guest_cart_lose_no_update(self, redis_shop: Shop) -> None:
        shop = redis_shop
        tenant = await shop.tenant()
        skus = [sku() for _ in range(5)]
        await shop.product(tenant, dict.fromkeys(skus, 100))
        async with shop.guest(tenant) as guest:
            guest.headers["X-Cart-Id"] = (await guest.post("/api/v1/cart/items", json={"sku": skus[0], "quantity": 1})
                                          ).json()["id"]
            answers = await asyncio.gather(*(guest.post("/api/v1/cart/items", json={"sku": s, "quantity": 1})
                                             for s in skus for _ in range(2)))
            assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers if a.status_code != 200]
            cart = (await guest.get("/api/v1/cart")).json()
            assert sorted((i["sku"], i["quantity"]) for i in cart["items"]) == sorted(
                [(skus[0], 3)] + [(s, 2) for s in skus[1:]])
            assert cart["version"] == 11

    async def test_a_stale_if_match_is_refused(self, redis_shop: Shop) -> None:
        shop = redis_shop
        tenant = await shop.tenant()
        shoe = sku()
        await shop.product(tenant, {shoe: 100})
        async with shop.guest(tenant) as guest:
            guest.headers["X-Cart-Id"] = (await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})
                                          ).json()["id"]
            await guest.patch(f"/api/v1/cart/items/{shoe}", json={"quantity": 2}, headers={"If-Match": '"1"'})
            problem(await guest.patch(f"/api/v1/cart/items/{shoe}", json={"quantity": 3}, headers={"If-Match": '"1"'}),
                    412, "cart-version-mismatch")
            assert (await guest.get("/api/v1/cart")).json()["items"][0]["quantity"] == 2


class TestLosingRedis:
    async def test_a_customers_cart_survives_and_a_guests_does_not(self, redis_shop: Shop) -> None:
        shop = redis_shop
        tenant = await shop.tenant()
        shoe, sock = sku(), sku()
        await shop.product(tenant, {shoe: 1000, sock: 100})
        me = uuid.uuid4()
        async with shop.customer(tenant, me) as customer:
            await customer.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 2})
            cart = (await customer.post("/api/v1/cart/items", json={"sku": sock, "quantity": 1})).json()
            assert await redis_of(shop).exists(f"{prefix_of(shop)}:cart:{tenant}:user:{me}")
        async with shop.guest(tenant) as guest:
            guest_id = (await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})).json()["id"]

        await lose_redis(shop)

        async with shop.customer(tenant, me) as customer:
            assert (await customer.get("/api/v1/cart")).json() == cart
            more = (await customer.patch(f"/api/v1/cart/items/{sock}", json={"quantity": 3})).json()
            assert more["version"] == cart["version"] + 1
            assert await redis_of(shop).exists(f"{prefix_of(shop)}:cart:{tenant}:user:{me}")
        async with shop.guest(tenant, guest_id) as guest:
            problem(await guest.get("/api/v1/cart"), 404, "cart-not-found")

    async def test_a_stale_copy_never_replaces_a_newer_one(self, redis_shop: Shop) -> None:
        shop = redis_shop
        tenant = await shop.tenant()
        shoe = sku()
        await shop.product(tenant, {shoe: 1000})
        me = uuid.uuid4()
        async with shop.customer(tenant, me) as customer:
            await customer.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})
            await customer.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})
            key = f"{prefix_of(shop)}:cart:{tenant}:user:{me}"
            # A copy written late (after a newer one) is refused by the set-if-newer script.
            store = shop.cart.runtime.state.carts
            stale = await store._set_if_newer(keys=[key], args=[1, '{"lines": []}', TTL])
            assert stale == 0
            assert [i["quantity"] for i in (await customer.get("/api/v1/cart")).json()["items"]] == [2]


    async def test_a_copy_left_stale_by_a_redis_blip_is_not_served_for_long(self, redis_shop: Shop) -> None:
        """Writing a customer's copy and then dropping it both fail: the old copy stays, but only for
        the copy's short TTL (not the carts' idle TTL); then reads come from SQL again."""
        shop = redis_shop
        tenant = await shop.tenant()
        shoe = sku()
        await shop.product(tenant, {shoe: 1000})
        store = shop.cart.runtime.state.carts
        me = uuid.uuid4()

        async def blip(*args: Any, **kwargs: Any) -> Any:
            raise RedisConnectionError("connection reset")

        kept_ttl = store.copy_ttl_seconds
        store.copy_ttl_seconds = 2
        try:
            async with shop.customer(tenant, me) as customer:
                await customer.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})  # copied, 2 s
                write, drop = store._set_if_newer, store.redis.delete
                store._set_if_newer, store.redis.delete = blip, blip
                try:
                    changed = (await customer.patch(f"/api/v1/cart/items/{shoe}", json={"quantity": 2})).json()
                finally:
                    store._set_if_newer, store.redis.delete = write, drop
                await asyncio.sleep(2.5)  # the copy's TTL
                assert (await customer.get("/api/v1/cart")).json() == changed
        finally:
            store.copy_ttl_seconds = kept_ttl


class TestMergeFromRedis:
    async def test_a_guest_cart_in_redis_merges_and_dies(self, redis_shop: Shop) -> None:
        shop = redis_shop
        tenant = await shop.tenant()
        shoe = sku()
        await shop.product(tenant, {shoe: 1000})
        async with shop.guest(tenant) as guest:
            guest_id = (await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 3})).json()["id"]
        async with shop.customer(tenant) as customer:
            await customer.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 2})
            cart = (await customer.post("/api/v1/cart/merge", json={"guest_cart_id": guest_id})).json()
            assert [i["quantity"] for i in cart["items"]] == [5]
            assert (await customer.post("/api/v1/cart/merge", json={"guest_cart_id": guest_id})).json() == cart
        assert not await redis_of(shop).exists(f"{prefix_of(shop)}:cart:{tenant}:guest:{guest_id}")
        async with shop.guest(tenant, guest_id) as guest:
            problem(await guest.get("/api/v1/cart"), 404, "cart-not-found")

    async def test_two_customers_merging_one_guest_cart_at_once_get_it_once(self, redis_shop: Shop) -> None:
        shop = redis_shop
        tenant = await shop.tenant()
        shoe = sku()
        await shop.product(tenant, {shoe: 1000})
        async with shop.guest(tenant) as guest:
            guest_id = (await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 2})).json()["id"]
        async with shop.customer(tenant) as one, shop.customer(tenant) as two:
            answers = await asyncio.gather(*(c.post("/api/v1/cart/merge", json={"guest_cart_id": guest_id})
                                             for c in (one, two)))
            assert sorted(a.status_code for a in answers) == [200, 404]
            carts = [(await c.get("/api/v1/cart")).json()["items"] for c in (one, two)]
            assert sorted(len(items) for items in carts) == [0, 1]


class TestRedisDown:
    async def test_customers_carts_work_from_sql_and_guests_are_503(self, tmp_path_factory: pytest.TempPathFactory
                                                                     ) -> None:
        dead = f"redis://127.0.0.1:{servers.free_port()}/0"
        async with running_shop(tmp_path_factory.mktemp("no-redis"), redis_url=dead) as shop:
            tenant = await shop.tenant()
            shoe = sku()
            await shop.product(tenant, {shoe: 1000})
            async with shop.customer(tenant) as me:
                added = await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 2})
                assert added.status_code == 200, added.text
                assert (await me.get("/api/v1/cart")).json() == added.json()
            async with shop.guest(tenant) as guest:
                problem(await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1}), 503,
                        "cart-store-unavailable")
            async with shop.guest(tenant, "A" * 32) as guest:
                problem(await guest.get("/api/v1/cart"), 503, "cart-store-unavailable")


class TestMergeRacingTheGuest:
    async def test_a_guest_add_during_a_merge_is_merged_too(self, redis_shop: Shop) -> None:
        shop = redis_shop
        tenant = await shop.tenant()
        shoe, sock = sku(), sku()
        await shop.product(tenant, {shoe: 100, sock: 200})
        async with shop.guest(tenant) as guest, shop.customer(tenant) as me:
            merged, during = await merge_while_the_guest_adds(shop, guest, me, shoe, sock)
            assert during.status_code == 200, during.text
            assert merged.status_code == 200, merged.text
            assert sorted((i["sku"], i["quantity"]) for i in merged.json()["items"]) == sorted([(shoe, 1), (sock, 1)])
            problem(await guest.get("/api/v1/cart"), 404, "cart-not-found")


class TestNothingToUndoAfterRedis:
    async def test_a_guest_change_has_no_sql_write_left_to_fail_once_redis_holds_it(self, redis_shop: Shop) -> None:
        """The commit after a guest's Redis write fails whenever it has something to write (as a
        deadlock or a busy database would make it): the change must have nothing left to write, or
        the client is told "undone, retry" while Redis holds the change, and a retry with the same
        Idempotency-Key applies it twice."""
        shop = redis_shop
        tenant = await shop.tenant()
        shoe = sku()
        await shop.product(tenant, {shoe: 100})
        store = shop.cart.runtime.state.carts
        original = store.save

        async def save_then_a_commit_with_writes_fails(session: Any, cart: Any, **kwargs: Any) -> bool:
            done = await original(session, cart, **kwargs)
            raw = (await session.connection()).sync_connection.connection.dbapi_connection
            if raw._connection.in_transaction:  # SQLite began a write transaction: the commit could fail
                raise TransientConflict("the unit of work's commit lost a race")
            return bool(done)

        async with shop.guest(tenant) as guest:
            guest.headers["X-Cart-Id"] = (await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})
                                          ).json()["id"]
            await reprice_unannounced(shop, tenant, shoe, 150)  # the cart learns the price from the catalog
            key = {"Idempotency-Key": str(uuid.uuid4())}
            store.save = save_then_a_commit_with_writes_fails
            try:
                first = await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1}, headers=key)
            finally:
                store.save = original
            again = await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1}, headers=key)
            assert first.status_code == 200, first.text
            assert again.headers.get("Idempotent-Replayed") == "true"
            cart = (await guest.get("/api/v1/cart")).json()
            assert [(i["quantity"], i["unit_price"]) for i in cart["items"]] == [(2, money(150))]


async def reprice_unannounced(shop: Shop, tenant: str, one_sku: str, price: int) -> None:
    """A new price in the catalog whose event the cart has not had yet."""
    async with shop.admin(shop.catalog, tenant) as api:
        found = (await api.get("/api/v1/products", params={"limit": 100})).json()["items"]
        product = next(p for p in found if any(v["sku"] == one_sku for v in p["variants"]))
        variants = [{**{k: v[k] for k in ("sku", "name", "options")}, "price": {**v["price"], "amount": price}}
                    for v in product["variants"]]
        answer = await api.patch(f"/api/v1/products/{product['id']}", json={"variants": variants})
        assert answer.status_code == 200, answer.text
