"""The SQL cart store's compare-and-set on SQLite, PostgreSQL and MariaDB: concurrent changes of one
cart lose no update, a stale If-Match changes nothing, and a guest cart merges once."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from tests.services.cart.shop import merge_while_the_guest_adds, problem, running_shop


async def test_concurrent_changes_of_one_cart_on_every_store(any_database_url: str, tmp_path: Path) -> None:
    async with running_shop(tmp_path, cart_url=any_database_url) as shop:
        tenant = await shop.tenant()
        skus = [f"SQL-{i}" for i in range(5)]
        await shop.product(tenant, dict.fromkeys(skus, 100))
        async with shop.customer(tenant) as me:
            answers = await asyncio.gather(*(me.post("/api/v1/cart/items", json={"sku": s, "quantity": 1})
                                             for s in skus for _ in range(3)))
            assert [a.status_code for a in answers] == [200] * 15, [a.text for a in answers if a.status_code != 200]
            cart = (await me.get("/api/v1/cart")).json()
            assert sorted((i["sku"], i["quantity"]) for i in cart["items"]) == [(s, 3) for s in skus]
            assert cart["version"] == 15

            stale = {"If-Match": '"14"'}
            refused = await me.patch(f"/api/v1/cart/items/{skus[0]}", json={"quantity": 1}, headers=stale)
            problem(refused, 412, "cart-version-mismatch")
            assert refused.headers["ETag"] == '"15"'  # the version to read or retry from
            assert (await me.get("/api/v1/cart")).json() == cart

        async with shop.guest(tenant) as guest:
            answer = await guest.post("/api/v1/cart/items", json={"sku": skus[0], "quantity": 2})
            guest.headers["X-Cart-Id"] = answer.json()["id"]
            answers = await asyncio.gather(*(guest.post("/api/v1/cart/items", json={"sku": s, "quantity": 1})
                                             for s in skus))
            assert [a.status_code for a in answers] == [200] * 5
            guest_id = guest.headers["X-Cart-Id"]
        async with shop.customer(tenant, uuid.uuid4()) as other, shop.customer(tenant) as third:
            merged = await asyncio.gather(*(c.post("/api/v1/cart/merge", json={"guest_cart_id": guest_id})
                                            for c in (other, third)))
            assert sorted(m.status_code for m in merged) == [200, 404]
            winner = next(m for m in merged if m.status_code == 200).json()
            assert sorted((i["sku"], i["quantity"]) for i in winner["items"]) == [
                (skus[0], 3), *((s, 1) for s in skus[1:])]


async def test_a_guest_change_during_a_merge_is_not_lost(any_database_url: str, tmp_path: Path) -> None:
    """A guest's add that lands between the merge's read of the guest cart and its deletion is
    merged too (PostgreSQL, MariaDB), or the merge is undone with a 409 and the guest cart kept
    (SQLite refuses the stale snapshot): never acknowledged and then dropped."""
    async with running_shop(tmp_path, cart_url=any_database_url) as shop:
        tenant = await shop.tenant()
        shoe, sock = f"M-{uuid.uuid4().hex[:8]}", f"M-{uuid.uuid4().hex[:8]}"
        await shop.product(tenant, {shoe: 100, sock: 200})
        async with shop.guest(tenant) as guest, shop.customer(tenant) as me:
            merged, during = await merge_while_the_guest_adds(shop, guest, me, shoe, sock)
            assert during.status_code == 200, during.text
            left = await guest.get("/api/v1/cart")
        if any_database_url.startswith("sqlite"):
            assert merged.status_code in (200, 409), merged.text
        else:
            assert merged.status_code == 200, merged.text
        if merged.status_code == 200:
            assert sorted((i["sku"], i["quantity"]) for i in merged.json()["items"]) == sorted([(shoe, 1), (sock, 1)])
            problem(left, 404, "cart-not-found")
        else:
            problem(merged, 409, "concurrent-update")
            assert sorted((i["sku"], i["quantity"]) for i in left.json()["items"]) == sorted([(shoe, 1), (sock, 1)])

