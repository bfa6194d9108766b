"""How the tenant-scope walk (test_tenant_scope_walk.py) calls each public method of the cart
service's repositories. A method missing here fails `test_every_repository_method_has_a_plan`."""

from __future__ import annotations

from tests.platform.tenant_walk import Add, Delete, Plan, Read, Write, later

PLANS: dict[str, dict[str, Plan]] = {
    "CartRepository": {
        "get": Read(lambda r, t, w: r.get(t.carts.owner, now=w.now)),
        "add": Add("carts"),
        "replace": Write(lambda r, t, w: r.replace(t.carts.owner, t.carts.version, {"lines": [1]}, now=w.now,
                                                   expires_at=None)),
        "delete": Write(lambda r, t, w: r.delete(t.carts.owner, t.carts.version)),
        "touch": Write(lambda r, t, w: r.touch(t.carts.owner, expires_at=later(w))),
        "purge_expired": Write(lambda r, t, w: r.purge_expired(now=later(w))),
    },
    "SkuPriceRepository": {
        "of": Read(lambda r, t, w: r.of([t.sku_prices.sku])),
        "rows": Read(lambda r, t, w: r.rows([t.sku_prices.sku])),
        "of_product": Read(lambda r, t, w: r.of_product(t.sku_prices.product_id)),
        "add": Add("sku_prices"),
    },
    "CouponRepository": {
        "get": Read(lambda r, t, w: r.get(t.coupons.code)),
        "lock": Read(lambda r, t, w: r.lock(t.coupons.code)),
        "page": Read(lambda r, t, w: r.page(limit=10, after=None)),
        "add": Add("coupons"),
        "delete": Delete("coupons"),
        "take_use": Write(lambda r, t, w: r.take_use(t.coupons.id)),
        "give_use_back": Write(lambda r, t, w: r.give_use_back(t.coupons.id)),
        "used_by": Read(lambda r, t, w: r.used_by(t.coupon_redemptions.coupon_id,
                                                  t.coupon_redemptions.customer_id)),
        "redemption": Read(lambda r, t, w: r.redemption(t.coupon_redemptions.order_id)),
        "record": Add("coupon_redemptions"),
        "release": Write(lambda r, t, w: r.release(t.coupon_redemptions.id, outcome="released",
                                                   from_outcome=t.coupon_redemptions.outcome)),
    },
}
