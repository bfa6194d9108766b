from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from tests.services.cart.shop import Shop, money, problem

pytestmark = pytest.mark.asyncio(loop_scope="module")


def sku() -> str:
    return f"SKU-{uuid.uuid4().hex[:10].upper()}"


def coupon(code: str, **terms: Any) -> dict[str, Any]:
    return {"code": code, "kind": "percent", "value": 10, **terms}


def iso(delta: dt.timedelta) -> str:
    return (dt.datetime.now(dt.UTC) + delta).isoformat()


async def cart_with(shop: Shop, tenant: str, client: Any, amount: int, quantity: int = 1) -> dict[str, Any]:
    one = sku()
    await shop.product(tenant, {one: amount})
    answer = await client.post("/api/v1/cart/items", json={"sku": one, "quantity": quantity})
    assert answer.status_code == 200, answer.text
    if answer.json()["id"]:
        client.headers["X-Cart-Id"] = answer.json()["id"]
    return dict(answer.json())


class TestCouponAdmin:
    async def test_create_read_list_change_and_delete(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        async with shop.coupon_admin(tenant) as admin:
            made = await admin.post("/api/v1/coupons", json=coupon("spring-10", min_subtotal=500, usage_limit=3,
                                                                   once_per_customer=True))
            assert made.status_code == 201, made.text
            body = made.json()
            assert (body["code"], body["kind"], body["value"], body["min_subtotal"], body["usage_limit"],
                    body["once_per_customer"], body["used_count"]) == ("SPRING-10", "percent", 10, 500, 3, True, 0)
            problem(await admin.post("/api/v1/coupons", json=coupon("Spring-10")), 409, "duplicate-coupon")
            await admin.post("/api/v1/coupons", json=coupon("AUTUMN", kind="fixed", value=250))

            assert (await admin.get("/api/v1/coupons/spring-10")).json() == body
            page = (await admin.get("/api/v1/coupons", params={"limit": 1})).json()
            assert [c["code"] for c in page["items"]] == ["AUTUMN"]
            rest = (await admin.get("/api/v1/coupons", params={"cursor": page["next_cursor"]})).json()
            assert [c["code"] for c in rest["items"]] == ["SPRING-10"] and rest["next_cursor"] is None

            changed = await admin.patch("/api/v1/coupons/Spring-10", json={"value": 15, "usage_limit": None})
            assert changed.status_code == 200 and (changed.json()["value"], changed.json()["usage_limit"]) == (15, None)
            assert (await admin.delete("/api/v1/coupons/spring-10")).status_code == 204
            problem(await admin.get("/api/v1/coupons/SPRING-10"), 404, "coupon-not-found")
            problem(await admin.delete("/api/v1/coupons/SPRING-10"), 404, "coupon-not-found")
            problem(await admin.patch("/api/v1/coupons/NOPE", json={"value": 5}), 404, "coupon-not-found")

    async def test_bad_coupons_are_refused_and_nothing_is_written(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        async with shop.coupon_admin(tenant) as admin:
            await admin.post("/api/v1/coupons", json=coupon("KEEP"))
            for bad in (
                coupon(""), coupon("X" * 33), coupon("has space"), coupon("ÜMLAUT"), coupon(None),
                coupon("P", value=0), coupon("P", value=101), coupon("P", value=12.5), coupon("P", value="10"),
                coupon("P", kind="bogus"), coupon("F", kind="fixed", value=0), coupon("F", kind="fixed", value=-5),
                coupon("P", min_subtotal=-1), coupon("P", usage_limit=0), coupon("P", usage_limit=10**12),
                coupon("P", starts_at=iso(dt.timedelta(days=2)), ends_at=iso(dt.timedelta(days=1))),
                coupon("P", starts_at="2026-01-01T00:00:00"), coupon("P", ends_at="tomorrow"),
                coupon("P", once_per_customer="yes"), coupon("P", extra=1), {"kind": "percent", "value": 10},
            ):
                problem(await admin.post("/api/v1/coupons", json=bad), 422)
            for bad_change in ({"value": 101}, {"kind": None}, {"value": 0}, {"code": "OTHER"},
                               {"starts_at": iso(dt.timedelta(days=2)), "ends_at": iso(dt.timedelta(days=1))}):
                problem(await admin.patch("/api/v1/coupons/KEEP", json=bad_change), 422)
            problem(await admin.patch("/api/v1/coupons/bad code!", json={"value": 5}), 422)
            problem(await admin.get("/api/v1/coupons", params={"cursor": "garbage"}), 400)
            listed = (await admin.get("/api/v1/coupons")).json()["items"]
            assert [(c["code"], c["value"]) for c in listed] == [("KEEP", 10)]
            # A percent coupon cannot become more than 100 % by switching its kind back and forth.
            assert (await admin.patch("/api/v1/coupons/KEEP", json={"kind": "fixed", "value": 500})).status_code == 200
            problem(await admin.patch("/api/v1/coupons/KEEP", json={"kind": "percent"}), 422, "invalid-coupon")

    async def test_only_the_tenants_admins_manage_its_coupons(self, shop: Shop) -> None:
        tenant, other = await shop.tenant(), await shop.tenant()
        async with shop.coupon_admin(tenant) as admin:
            await admin.post("/api/v1/coupons", json=coupon("MINE"))
        async with shop.customer(tenant) as customer, shop.guest(tenant) as guest:
            problem(await customer.get("/api/v1/coupons"), 403)
            problem(await customer.post("/api/v1/coupons", json=coupon("HACK")), 403)
            problem(await guest.delete("/api/v1/coupons/MINE"), 401)
        async with shop.coupon_admin(other) as elsewhere:
            assert (await elsewhere.get("/api/v1/coupons")).json()["items"] == []
            problem(await elsewhere.get("/api/v1/coupons/MINE"), 404)
            problem(await elsewhere.delete("/api/v1/coupons/MINE"), 404)
            # The same code is free in another tenant.
            assert (await elsewhere.post("/api/v1/coupons", json=coupon("MINE", value=50))).status_code == 201
        async with shop.coupon_admin(tenant) as admin:
            assert (await admin.get("/api/v1/coupons/MINE")).json()["value"] == 10


class TestApplyingACoupon:
    async def test_percent_and_fixed_discounts(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        async with shop.coupon_admin(tenant) as admin:
            await admin.post("/api/v1/coupons", json=coupon("TEN", value=10))
            await admin.post("/api/v1/coupons", json=coupon("BIG", kind="fixed", value=1_000_000))
        async with shop.guest(tenant) as guest:
            await cart_with(shop, tenant, guest, 1005)
            cart = (await guest.post("/api/v1/cart/coupon", json={"code": "ten"})).json()
            assert (cart["subtotal"], cart["discount"], cart["total"]) == (money(1005), money(100), money(905))
            cart = (await guest.post("/api/v1/cart/coupon", json={"code": "BIG"})).json()
            assert (cart["discount"], cart["total"]) == (money(1005), money(0))  # never more than the subtotal
            cart = (await guest.delete("/api/v1/cart/coupon")).json()
            assert cart["coupon"] is None and cart["total"] == money(1005)

    async def test_every_refusal_has_its_own_problem(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        async with shop.coupon_admin(tenant) as admin:
            for body in (coupon("LATER", starts_at=iso(dt.timedelta(days=1))),
                         coupon("GONE", ends_at=iso(-dt.timedelta(seconds=1))),
                         coupon("MIN", min_subtotal=5000),
                         coupon("ONE", usage_limit=1),
                         coupon("ONCE", once_per_customer=True)):
                assert (await admin.post("/api/v1/coupons", json=body)).status_code == 201
        customer_id = uuid.uuid4()
        await shop.confirmed(tenant, "ONE")
        await shop.confirmed(tenant, "ONCE", customer_id=customer_id)
        async with shop.customer(tenant, customer_id) as me:
            before = await cart_with(shop, tenant, me, 1000)
            problem(await me.post("/api/v1/cart/coupon", json={"code": "NOPE"}), 422, "coupon-not-found")
            problem(await me.post("/api/v1/cart/coupon", json={"code": "LATER"}), 422, "coupon-not-started")
            problem(await me.post("/api/v1/cart/coupon", json={"code": "GONE"}), 422, "coupon-expired")
            short = problem(await me.post("/api/v1/cart/coupon", json={"code": "MIN"}), 422, "coupon-minimum-not-met")
            assert short["min_subtotal"] == 5000
            problem(await me.post("/api/v1/cart/coupon", json={"code": "ONE"}), 409, "coupon-exhausted")
            problem(await me.post("/api/v1/cart/coupon", json={"code": "ONCE"}), 409, "coupon-already-used")
            for bad in ("", "X" * 33, "sp ace", None, 5):
                problem(await me.post("/api/v1/cart/coupon", json={"code": bad}), 422)
            after = (await me.get("/api/v1/cart")).json()
            assert after["coupon"] is None and after["version"] == before["version"]
        # A guest may apply the once-per-customer coupon (checked again at merge and checkout).
        async with shop.guest(tenant) as guest:
            await cart_with(shop, tenant, guest, 1000)
            assert (await guest.post("/api/v1/cart/coupon", json={"code": "ONCE"})).json()["coupon"]["applies"]
            guest_id = guest.headers["X-Cart-Id"]
        async with shop.customer(tenant, customer_id) as me:
            merged = (await me.post("/api/v1/cart/merge", json={"guest_cart_id": guest_id})).json()
            assert merged["coupon"] is None  # this customer used it already: not carried over
        async with shop.guest(tenant) as guest:
            await cart_with(shop, tenant, guest, 1000)
            await guest.post("/api/v1/cart/coupon", json={"code": "ONCE"})
            guest_id = guest.headers["X-Cart-Id"]
        async with shop.customer(tenant) as newcomer:
            merged = (await newcomer.post("/api/v1/cart/merge", json={"guest_cart_id": guest_id})).json()
            assert merged["coupon"]["code"] == "ONCE" and merged["coupon"]["applies"] is True

    async def test_a_coupon_that_stops_applying_is_shown_without_a_discount(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        async with shop.coupon_admin(tenant) as admin:
            await admin.post("/api/v1/coupons", json=coupon("MIN", kind="fixed", value=100, min_subtotal=2000))
        async with shop.customer(tenant) as me:
            cart = await cart_with(shop, tenant, me, 1000, quantity=2)
            line = cart["items"][0]["sku"]
            assert (await me.post("/api/v1/cart/coupon", json={"code": "MIN"})).json()["discount"] == money(100)
            cart = (await me.patch(f"/api/v1/cart/items/{line}", json={"quantity": 1})).json()
            assert cart["coupon"]["applies"] is False and cart["coupon"]["reason"]
            assert (cart["discount"], cart["total"]) == (money(0), money(1000))
            cart = (await me.patch(f"/api/v1/cart/items/{line}", json={"quantity": 3})).json()
            assert cart["coupon"]["applies"] is True and cart["discount"] == money(100)
            async with shop.coupon_admin(tenant) as admin:
                await admin.delete("/api/v1/coupons/MIN")
            cart = (await me.get("/api/v1/cart")).json()  # a deleted coupon applies no more
            assert (cart["coupon"]["code"], cart["coupon"]["applies"]) == ("MIN", False)
            assert cart["discount"] == money(0)

    async def test_coupons_of_another_tenant_do_not_exist_here(self, shop: Shop) -> None:
        tenant, other = await shop.tenant(), await shop.tenant()
        async with shop.coupon_admin(other) as admin:
            await admin.post("/api/v1/coupons", json=coupon("THEIRS"))
        async with shop.customer(tenant) as me:
            await cart_with(shop, tenant, me, 1000)
            problem(await me.post("/api/v1/cart/coupon", json={"code": "THEIRS"}), 422, "coupon-not-found")


class TestRemovingNoCoupon:
    async def test_removing_a_coupon_the_cart_does_not_have_changes_no_version(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        async with shop.customer(tenant) as me, shop.customer(tenant) as newcomer:
            cart = await cart_with(shop, tenant, me, 1000)
            again = await me.delete("/api/v1/cart/coupon")
            assert again.status_code == 200 and again.json() == cart and again.headers["ETag"] == f'"{cart["version"]}"'
            # Another tab's If-Match still holds.
            more = await me.patch(f"/api/v1/cart/items/{cart['items'][0]['sku']}", json={"quantity": 2},
                                  headers={"If-Match": f'"{cart["version"]}"'})
            assert more.status_code == 200, more.text
            # A customer with no cart gets none stored.
            assert (await newcomer.delete("/api/v1/cart/coupon")).json()["version"] == 0
            assert (await newcomer.get("/api/v1/cart")).json()["version"] == 0


class TestOncePerCustomerLater:
    async def test_once_per_customer_cannot_be_turned_on_after_uses_were_counted(self, shop: Shop) -> None:
        """Uses counted before the flag carry no once-per-customer key, so turning it on would not
        cover them: a customer with such a use would be counted again."""
        tenant = await shop.tenant()
        async with shop.coupon_admin(tenant) as admin:
            await admin.post("/api/v1/coupons", json=coupon("LATER"))
            await admin.post("/api/v1/coupons", json=coupon("UNUSED"))
            await shop.confirmed(tenant, "LATER")
            problem(await admin.patch("/api/v1/coupons/LATER", json={"once_per_customer": True}), 422,
                    "invalid-coupon")
            kept = (await admin.get("/api/v1/coupons/LATER")).json()
            assert (kept["once_per_customer"], kept["used_count"]) == (False, 1)
            assert (await admin.patch("/api/v1/coupons/UNUSED", json={"once_per_customer": True})
                    ).json()["once_per_customer"] is True
