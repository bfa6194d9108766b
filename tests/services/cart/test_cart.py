from __future__ import annotations

import uuid

import pytest

from tests.services.cart.shop import Shop, money, problem

pytestmark = pytest.mark.asyncio(loop_scope="module")


def sku() -> str:
    return f"SKU-{uuid.uuid4().hex[:10].upper()}"


class TestGuestCart:
    async def test_add_read_change_and_remove(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        shoe, sock = sku(), sku()
        product = await shop.product(tenant, {shoe: 149_900, sock: 29_900}, name="Trail Shoe")

        async with shop.guest(tenant) as guest:
            added = await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 2})
            assert added.status_code == 200, added.text
            cart = added.json()
            cart_id = cart["id"]
            assert added.headers["X-Cart-Id"] == cart_id and len(cart_id) >= 32
            assert added.headers["ETag"] == '"1"'
            assert cart["version"] == 1 and cart["currency"] == "INR"
            assert cart["items"] == [{
                "sku": shoe, "product_id": product["id"], "name": f"Trail Shoe (Size {shoe})", "quantity": 2,
                "unit_price": money(149_900), "line_total": money(299_800), "price_changed": False,
                "available": True}]
            assert (cart["subtotal"], cart["discount"], cart["tax"], cart["total"]) == (
                money(299_800), money(0), money(0), money(299_800))

            guest.headers["X-Cart-Id"] = cart_id
            cart = (await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})).json()
            cart = (await guest.post("/api/v1/cart/items", json={"sku": sock, "quantity": 3})).json()
            assert [(i["sku"], i["quantity"]) for i in cart["items"]] == [(shoe, 3), (sock, 3)]
            assert cart["id"] == cart_id and cart["version"] == 3

            read = await guest.get("/api/v1/cart")
            assert read.status_code == 200 and read.json() == cart and read.headers["ETag"] == '"3"'

            cart = (await guest.patch(f"/api/v1/cart/items/{shoe}", json={"quantity": 1})).json()
            assert [(i["sku"], i["quantity"]) for i in cart["items"]] == [(shoe, 1), (sock, 3)]
            assert cart["subtotal"] == money(149_900 + 3 * 29_900)

            cart = (await guest.delete(f"/api/v1/cart/items/{sock}")).json()
            assert [i["sku"] for i in cart["items"]] == [shoe] and cart["version"] == 5
            problem(await guest.delete(f"/api/v1/cart/items/{sock}"), 404, "cart-item-not-found")
            problem(await guest.patch(f"/api/v1/cart/items/{sock}", json={"quantity": 1}), 404, "cart-item-not-found")

    async def test_no_id_reads_an_empty_cart_and_an_unknown_id_is_never_adopted(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        shoe = sku()
        await shop.product(tenant, {shoe: 1000})
        async with shop.guest(tenant) as guest:
            empty = await guest.get("/api/v1/cart")
            assert empty.status_code == 200
            assert empty.json()["id"] is None and empty.json()["items"] == [] and empty.json()["version"] == 0
            assert "X-Cart-Id" not in empty.headers
        made_up = "A" * 32
        async with shop.guest(tenant, made_up) as guest:
            problem(await guest.get("/api/v1/cart"), 404, "cart-not-found")
            problem(await guest.patch(f"/api/v1/cart/items/{shoe}", json={"quantity": 1}), 404, "cart-not-found")
            problem(await guest.delete(f"/api/v1/cart/items/{shoe}"), 404, "cart-not-found")
            problem(await guest.delete("/api/v1/cart/coupon"), 404, "cart-not-found")
            added = await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})
            assert added.status_code == 200
            assert added.json()["id"] != made_up and added.headers["X-Cart-Id"] == added.json()["id"]
            problem(await guest.get("/api/v1/cart"), 404, "cart-not-found")  # still not adopted
        async with shop.guest(tenant, "not a cart id!") as guest:
            problem(await guest.get("/api/v1/cart"), 404, "cart-not-found")


class TestLimitsAndChecks:
    async def test_sku_quantity_and_stock_refusals_write_nothing(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        shoe, draft = sku(), sku()
        await shop.product(tenant, {shoe: 1000}, stock=5)
        await shop.product(tenant, {draft: 1000}, status="draft")
        async with shop.customer(tenant) as me:
            problem(await me.post("/api/v1/cart/items", json={"sku": "NO-SUCH-SKU", "quantity": 1}), 404,
                    "sku-not-found")
            problem(await me.post("/api/v1/cart/items", json={"sku": draft, "quantity": 1}), 404, "sku-not-found")
            short = problem(await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 6}), 409,
                            "insufficient-stock")
            assert (short["sku"], short["available"]) == (shoe, 5)
            assert (await me.get("/api/v1/cart")).json()["version"] == 0  # nothing was stored

            assert (await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 4})).status_code == 200
            short = problem(await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 2}), 409,
                            "insufficient-stock")
            assert short["available"] == 5
            problem(await me.patch(f"/api/v1/cart/items/{shoe}", json={"quantity": 6}), 409, "insufficient-stock")
            await shop.stock(tenant, shoe, 100)
            problem(await me.patch(f"/api/v1/cart/items/{shoe}", json={"quantity": 21}), 422, "quantity-over-limit")
            for bad in (0, -1, 1.5, "2", None, True, 10**6):
                problem(await me.patch(f"/api/v1/cart/items/{shoe}", json={"quantity": bad}), 422)
                problem(await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": bad}), 422)
            for bad_sku in ("", "x" * 65, "bad sku", None, 5):
                problem(await me.post("/api/v1/cart/items", json={"sku": bad_sku, "quantity": 1}), 422)
            problem(await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1, "extra": 1}), 422)
            problem(await me.post("/api/v1/cart/items", content=b"{", headers={"content-type": "application/json"}),
                    400)
            cart = (await me.get("/api/v1/cart")).json()
            assert [(i["sku"], i["quantity"]) for i in cart["items"]] == [(shoe, 4)] and cart["version"] == 1

    async def test_a_product_in_another_currency_is_refused(self, shop: Shop) -> None:
        tenant = await shop.tenant(currency="INR")
        dollars = sku()
        await shop.product(tenant, {dollars: 1000}, currency="USD")
        async with shop.customer(tenant) as me:
            problem(await me.post("/api/v1/cart/items", json={"sku": dollars, "quantity": 1}), 422,
                    "currency-mismatch")

    async def test_at_most_max_lines(self, shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> None:
        from tests.services.cart.shop import running_shop

        async with running_shop(tmp_path_factory.mktemp("small"), max_lines=2) as small:
            tenant = await small.tenant()
            skus = [sku() for _ in range(3)]
            await small.product(tenant, dict.fromkeys(skus, 100))
            async with small.customer(tenant) as me:
                for one in skus[:2]:
                    assert (await me.post("/api/v1/cart/items", json={"sku": one, "quantity": 1})).status_code == 200
                problem(await me.post("/api/v1/cart/items", json={"sku": skus[2], "quantity": 1}), 422,
                        "too-many-lines")
                # Adding to a line it has is still fine.
                assert (await me.post("/api/v1/cart/items", json={"sku": skus[0], "quantity": 1})).status_code == 200


class TestPrices:
    async def test_a_price_change_shows_on_the_next_read_and_a_change_takes_it(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        shoe, sock = sku(), sku()
        product = await shop.product(tenant, {shoe: 10_000, sock: 500})
        async with shop.customer(tenant) as me:
            await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 2})
            await me.post("/api/v1/cart/items", json={"sku": sock, "quantity": 1})
            await shop.reprice(tenant, product, {shoe: 12_000})

            cart = (await me.get("/api/v1/cart")).json()
            lines = {i["sku"]: i for i in cart["items"]}
            assert lines[shoe]["unit_price"] == money(12_000) and lines[shoe]["price_changed"] is True
            assert lines[shoe]["line_total"] == money(24_000)
            assert lines[sock]["price_changed"] is False
            assert cart["subtotal"] == money(24_500)

            # Any change of the cart re-snapshots every line: the customer has seen the new totals.
            cart = (await me.patch(f"/api/v1/cart/items/{sock}", json={"quantity": 2})).json()
            assert [i["price_changed"] for i in cart["items"]] == [False, False]
            assert cart["subtotal"] == money(25_000)

    async def test_a_withdrawn_or_deleted_product_stays_listed_but_counts_in_no_total(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        shoe, hat = sku(), sku()
        shoes = await shop.product(tenant, {shoe: 10_000})
        hats = await shop.product(tenant, {hat: 700})
        async with shop.customer(tenant) as me:
            await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})
            await me.post("/api/v1/cart/items", json={"sku": hat, "quantity": 1})
            await shop.reprice(tenant, shoes, {}, status="archived")
            await shop.delete_product(tenant, hats)
            cart = (await me.get("/api/v1/cart")).json()
            assert [(i["sku"], i["available"]) for i in cart["items"]] == [(shoe, False), (hat, False)]
            assert cart["subtotal"] == money(0) and cart["total"] == money(0)
            # It can be removed; it cannot be added to.
            problem(await me.patch(f"/api/v1/cart/items/{shoe}", json={"quantity": 2}), 404, "sku-not-found")
            cart = (await me.delete(f"/api/v1/cart/items/{hat}")).json()
            assert [i["sku"] for i in cart["items"]] == [shoe]

    async def test_lines_priced_in_a_currency_the_shop_no_longer_uses_count_in_no_total(self, shop: Shop) -> None:
        from amazonlite.platform.tenant_settings import tenant_settings

        tenant = await shop.tenant(currency="INR")
        shoe = sku()
        await shop.product(tenant, {shoe: 1000})
        async with shop.customer(tenant) as me:
            await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})
            async with shop.admin(shop.tenants, tenant) as admin:
                changed = await admin.patch(f"/api/v1/admin/tenants/{tenant}", json={"currency": "USD"})
                assert changed.status_code == 200, changed.text
            tenant_settings(shop.cart.runtime).forget(tenant)
            cart = (await me.get("/api/v1/cart")).json()
            assert cart["currency"] == "USD"
            assert cart["items"][0]["available"] is False and cart["items"][0]["unit_price"] == money(1000)
            assert cart["total"] == {"amount": 0, "currency": "USD"}

    async def test_tax_on_the_discounted_lines(self, shop: Shop) -> None:
        tenant = await shop.tenant(tax_rate_bp=1800)
        a, b = sku(), sku()
        await shop.product(tenant, {a: 333, b: 667})
        async with shop.coupon_admin(tenant) as admin:
            assert (await admin.post("/api/v1/coupons", json={"code": "TENOFF", "kind": "fixed", "value": 100})
                    ).status_code == 201
        async with shop.customer(tenant) as me:
            await me.post("/api/v1/cart/items", json={"sku": a, "quantity": 1})
            await me.post("/api/v1/cart/items", json={"sku": b, "quantity": 1})
            cart = (await me.post("/api/v1/cart/coupon", json={"code": "tenoff"})).json()
            # Discount 100 over 333 and 667: 33 and 67 (the remainders 0.3 and 0.7: the larger takes the unit).
            # Tax: round_half_even(300 * 0.18) = 54, round_half_even(600 * 0.18) = 108.
            assert (cart["subtotal"], cart["discount"], cart["tax"], cart["total"]) == (
                money(1000), money(100), money(162), money(1062))
            assert cart["coupon"] == {"code": "TENOFF", "kind": "fixed", "value": 100, "applies": True, "reason": None}


class TestVersions:
    async def test_a_stale_if_match_is_refused_and_changes_nothing(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        shoe = sku()
        await shop.product(tenant, {shoe: 100})
        async with shop.customer(tenant) as me:
            cart = (await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1}, headers={"If-Match": '"0"'})
                    ).json()
            assert cart["version"] == 1
            ok = await me.patch(f"/api/v1/cart/items/{shoe}", json={"quantity": 2}, headers={"If-Match": '"1"'})
            assert ok.status_code == 200 and ok.headers["ETag"] == '"2"'
            stale = problem(await me.patch(f"/api/v1/cart/items/{shoe}", json={"quantity": 3},
                                           headers={"If-Match": '"1"'}), 412, "cart-version-mismatch")
            assert stale["version"] == 2
            problem(await me.delete(f"/api/v1/cart/items/{shoe}", headers={"If-Match": '"7"'}), 412)
            for names_no_version in ("1", "abc", '"-1"', "", '"5", "6"', '"2", x'):
                problem(await me.patch(f"/api/v1/cart/items/{shoe}", json={"quantity": 3},
                                       headers={"If-Match": names_no_version}), 412, "cart-version-mismatch")
            assert (await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1},
                                  headers={"If-Match": '"5", W/"2"'})).status_code == 200  # a list: any of them
            assert (await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1},
                                  headers={"If-Match": "*"})).status_code == 200
            cart = (await me.get("/api/v1/cart")).json()
            assert cart["version"] == 4 and cart["items"][0]["quantity"] == 4

    async def test_concurrent_adds_lose_no_update(self, shop: Shop) -> None:
        import asyncio

        tenant = await shop.tenant()
        skus = [sku() for _ in range(6)]
        await shop.product(tenant, dict.fromkeys(skus, 100))
        async with shop.customer(tenant) as me:
            answers = await asyncio.gather(*(me.post("/api/v1/cart/items", json={"sku": s, "quantity": 1})
                                             for s in skus for _ in range(2)))
            assert [a.status_code for a in answers] == [200] * 12
            cart = (await me.get("/api/v1/cart")).json()
            assert sorted((i["sku"], i["quantity"]) for i in cart["items"]) == sorted((s, 2) for s in skus)
            assert cart["version"] == 12


class TestMerge:
    async def test_a_guest_cart_merges_into_the_customers_once(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        shoe, sock, hat = sku(), sku(), sku()
        await shop.product(tenant, {shoe: 1000, sock: 100, hat: 50}, stock=10)
        await shop.stock(tenant, hat, 25)
        customer_id = uuid.uuid4()
        async with shop.guest(tenant) as guest:
            cart_id = (await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 4})).json()["id"]
            guest.headers["X-Cart-Id"] = cart_id
            await guest.post("/api/v1/cart/items", json={"sku": sock, "quantity": 2})
            await guest.post("/api/v1/cart/items", json={"sku": hat, "quantity": 15})
        async with shop.customer(tenant, customer_id) as me:
            await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 8})
            await me.post("/api/v1/cart/items", json={"sku": hat, "quantity": 15})
            merged = await me.post("/api/v1/cart/merge", json={"guest_cart_id": cart_id})
            assert merged.status_code == 200, merged.text
            cart = merged.json()
            # shoe 8 + 4 capped at the stock (10); hat 15 + 15 capped at the line maximum (20).
            assert sorted((i["sku"], i["quantity"]) for i in cart["items"]) == sorted(
                [(shoe, 10), (hat, 20), (sock, 2)])
            assert cart["id"] is None

            again = await me.post("/api/v1/cart/merge", json={"guest_cart_id": cart_id})
            assert again.status_code == 200 and again.json() == cart

        async with shop.guest(tenant, cart_id) as guest:
            problem(await guest.get("/api/v1/cart"), 404, "cart-not-found")  # the guest id is dead
            problem(await guest.delete(f"/api/v1/cart/items/{shoe}"), 404, "cart-not-found")
            reborn = (await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})).json()
            assert reborn["id"] != cart_id and reborn["version"] == 1  # a new cart, never the dead id
        async with shop.customer(tenant) as someone_else:
            problem(await someone_else.post("/api/v1/cart/merge", json={"guest_cart_id": cart_id}), 404,
                    "cart-not-found")

    async def test_two_customers_merging_one_guest_cart_at_once_get_it_once(self, shop: Shop) -> None:
        import asyncio

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

    async def test_a_merge_of_two_big_carts_keeps_to_the_line_maximum(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        mine, theirs = [f"MINE-{i:03}" for i in range(60)], [f"THEIRS-{i:03}" for i in range(60)]
        await shop.product(tenant, dict.fromkeys(mine, 100), name="Mine")
        await shop.product(tenant, dict.fromkeys(theirs, 100), name="Theirs")
        async with shop.guest(tenant) as guest:
            for one in theirs:
                answer = await guest.post("/api/v1/cart/items", json={"sku": one, "quantity": 1})
                guest.headers["X-Cart-Id"] = answer.json()["id"]
            guest_id = guest.headers["X-Cart-Id"]
        async with shop.customer(tenant) as me:
            for one in mine:
                await me.post("/api/v1/cart/items", json={"sku": one, "quantity": 1})
            merged = await me.post("/api/v1/cart/merge", json={"guest_cart_id": guest_id})
            assert merged.status_code == 200, merged.text  # 120 SKUs checked, in batches the services take
            skus = [i["sku"] for i in merged.json()["items"]]
            assert len(skus) == 100 and skus[:60] == mine and skus[60:] == theirs[:40]

    async def test_merge_needs_a_signed_in_customer_and_a_valid_id(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        async with shop.guest(tenant) as guest:
            problem(await guest.post("/api/v1/cart/merge", json={"guest_cart_id": "A" * 32}), 401)
        async with shop.customer(tenant) as me:
            problem(await me.post("/api/v1/cart/merge", json={"guest_cart_id": "A" * 32}), 404, "cart-not-found")
            for bad in ("", "short", "x" * 65, "bad id with spaces!!", None, 12):
                problem(await me.post("/api/v1/cart/merge", json={"guest_cart_id": bad}), 422)
            assert (await me.get("/api/v1/cart")).json()["version"] == 0


class TestPrivacy:
    async def test_no_one_reads_or_changes_anothers_cart(self, shop: Shop) -> None:
        tenant, other_tenant = await shop.tenant(), await shop.tenant()
        shoe = sku()
        await shop.product(tenant, {shoe: 100})
        await shop.product(other_tenant, {shoe: 100})
        alice, bob = uuid.uuid4(), uuid.uuid4()
        async with shop.customer(tenant, alice) as me:
            await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 3})
        async with shop.guest(tenant) as guest:
            guest_id = (await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})).json()["id"]
        async with shop.customer(tenant, bob) as other:
            assert (await other.get("/api/v1/cart")).json()["items"] == []
        async with shop.customer(other_tenant, alice) as same_id_elsewhere:
            assert (await same_id_elsewhere.get("/api/v1/cart")).json()["items"] == []
            problem(await same_id_elsewhere.post("/api/v1/cart/merge", json={"guest_cart_id": guest_id}), 404)
        async with shop.guest(other_tenant, guest_id) as elsewhere:
            problem(await elsewhere.get("/api/v1/cart"), 404, "cart-not-found")
            problem(await elsewhere.delete(f"/api/v1/cart/items/{shoe}"), 404, "cart-not-found")
        # A customer's X-Cart-Id header names nothing: their cart is their own.
        async with shop.customer(tenant, bob) as other:
            other.headers["X-Cart-Id"] = guest_id
            assert (await other.get("/api/v1/cart")).json()["items"] == []
        async with shop.customer(tenant, alice) as me:
            assert [i["quantity"] for i in (await me.get("/api/v1/cart")).json()["items"]] == [3]
        async with shop.guest(tenant, guest_id) as guest:
            assert [i["quantity"] for i in (await guest.get("/api/v1/cart")).json()["items"]] == [1]
