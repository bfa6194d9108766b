"""Black-box end to end, through the gateway only, in both topologies (see conftest.platform)."""

from __future__ import annotations

import datetime as dt
import json
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from amazonlite.services.auth.keys import decrypt_private_key, key_encryption_key
from amazonlite.services.auth.settings import DEVELOPMENT_KEY_ENCRYPTION_SECRET
from tests.e2e.actors import assert_ok, assert_problem, bearer, eventually, login, sign_up, tenant_header
from tests.e2e.operator import query
from tests.e2e.platforms import ADMIN_EMAIL, ADMIN_PASSWORD, Platform
from tests.gateway.support import b64url, hs256_token, unsigned_token

pytestmark = [pytest.mark.xdist_group("e2e")]


@pytest.fixture
def api(platform: Platform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{platform.base_url}/api/v1", timeout=15) as client:
        yield client


class TestCustomerJourney:
    def test_signup_profile_refresh_rotation_and_logout(self, api: httpx.Client) -> None:
        email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
        password = "analytical-engine-1843"
        signup = api.post("/auth/signup", json={"email": email.upper(), "password": password, "name": "Ada"})
        assert signup.status_code == 201, signup.text
        assert signup.json()["email"] == email

        tokens = login(api, email, password)
        assert tokens["token_type"] == "Bearer" and 0 < tokens["expires_in"] <= 900

        # The profile is created by the users service from user.registered.v1.
        me = eventually(lambda: (r := api.get("/users/me", headers=bearer(tokens["access_token"]))).status_code == 200
                        and r.json(), timeout=60, what="the profile to appear")
        assert me["email"] == email and me["name"] == "Ada"
        patched = api.patch("/users/me", json={"name": "Ada Lovelace"}, headers=bearer(tokens["access_token"]))
        assert patched.status_code == 200 and patched.json()["name"] == "Ada Lovelace"

        # Refresh rotates; reusing the spent token revokes the whole family.
        rotated = api.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert rotated.status_code == 200, rotated.text
        newer = rotated.json()
        assert newer["refresh_token"] != tokens["refresh_token"]
        assert_problem(api.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}), 401)
        assert_problem(api.post("/auth/refresh", json={"refresh_token": newer["refresh_token"]}), 401)

        # Logout makes the access token fail at once.
        session = login(api, email, password)
        assert api.get("/users/me", headers=bearer(session["access_token"])).status_code == 200
        out = api.post("/auth/logout", json={"refresh_token": session["refresh_token"]},
                       headers=bearer(session["access_token"]))
        assert out.status_code == 204, out.text
        assert_problem(api.get("/users/me", headers=bearer(session["access_token"])), 401)
        assert_problem(api.post("/auth/refresh", json={"refresh_token": session["refresh_token"]}), 401)

    def test_wrong_password_and_tampered_token_are_401(self, api: httpx.Client) -> None:
        assert_problem(api.post("/auth/login", json={"email": ADMIN_EMAIL, "password": "not-the-password-1"}), 401)
        admin = login(api, ADMIN_EMAIL, ADMIN_PASSWORD)
        header, payload, signature = admin["access_token"].split(".")
        tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
        assert_problem(api.get("/users/me", headers=bearer(tampered)), 401)
        assert_problem(api.get("/users/me", headers=bearer("not-a-jwt")), 401)

    def test_every_forgery_a_client_can_make_is_401(self, api: httpx.Client) -> None:
        """What an attacker holding a real token and the public JWKS can build. (Expired tokens and
        wrong audiences with a genuine signature need the platform's private key: see
        TestTokensSignedWithThePlatformsOwnKey.)"""
        genuine = login(api, ADMIN_EMAIL, ADMIN_PASSWORD)["access_token"]
        claims = jwt.decode(genuine, options={"verify_signature": False})
        kid = jwt.get_unverified_header(genuine)["kid"]
        published = assert_ok(api.get("/auth/jwks.json"))["keys"]
        public_key = next(k for k in published if k["kid"] == kid)["x"].encode()
        escalated = {**claims, "roles": ["platform_admin"], "tenant": "acme"}
        header, _payload, signature = genuine.split(".")
        forgeries = {
            "alg none": unsigned_token({"alg": "none", "typ": "JWT", "kid": kid}, escalated),
            "HS256 keyed with the published key": hs256_token({"alg": "HS256", "typ": "JWT", "kid": kid},
                                                              escalated, public_key),
            "another key under the real kid": jwt.encode(escalated, Ed25519PrivateKey.generate(), algorithm="EdDSA",
                                                        headers={"kid": kid}),
            "an unknown kid": jwt.encode(escalated, Ed25519PrivateKey.generate(), algorithm="EdDSA",
                                         headers={"kid": "attacker-key-1"}),
            "claims changed after signing": f"{header}.{b64url(json.dumps(escalated).encode())}.{signature}",
        }
        for name, token in forgeries.items():
            refused = api.get("/auth/me", headers=bearer(token))
            assert refused.status_code == 401, f"{name}: {refused.text}"
            assert refused.headers["www-authenticate"] == "Bearer", name
        assert api.get("/auth/me", headers=bearer(genuine)).status_code == 200


class TestCatalogAdministration:
    def test_admin_creates_and_customers_browse(self, api: httpx.Client) -> None:
        admin = bearer(login(api, ADMIN_EMAIL, ADMIN_PASSWORD)["access_token"])
        tag = uuid.uuid4().hex[:6]
        category = api.post("/categories", json={"name": f"Telescopes {tag}"}, headers=admin)
        assert category.status_code == 201, category.text
        brand = api.post("/brands", json={"name": f"Orion {tag}"}, headers=admin)
        assert brand.status_code == 201, brand.text
        body = {
            "name": f"Dobsonian 8 {tag}", "description": "An 8-inch reflector.", "status": "active",
            "category_id": category.json()["id"], "brand_id": brand.json()["id"],
            "attributes": {"aperture_mm": 203}, "media": [{"url": "https://images.example.com/dob.jpg", "alt": "Dob"}],
            "variants": [{"sku": f"DOB-{tag}-8", "name": "8 inch", "options": {"aperture": "8in"},
                          "price": {"amount": 4_599_900, "currency": "INR"}}],
        }
        created = api.post("/products", json=body, headers=admin)
        assert created.status_code == 201, created.text
        product = created.json()
        assert product["variants"][0]["price"] == {"amount": 4_599_900, "currency": "INR"}
        assert product["category"]["id"] == category.json()["id"]

        listed = api.get("/products", params={"category": category.json()["id"]})
        assert listed.status_code == 200
        assert [p["id"] for p in listed.json()["items"]] == [product["id"]]
        assert api.get("/products", params={"category": category.json()["id"], "max_price": 100}).json()["items"] == []
        assert api.get(f"/products/{product['id']}").json()["name"] == body["name"]

        updated = api.patch(f"/products/{product['id']}", json={"name": f"Dobsonian 8 XT {tag}"}, headers=admin)
        assert updated.status_code == 200 and updated.json()["name"] == f"Dobsonian 8 XT {tag}"
        assert api.delete(f"/products/{product['id']}", headers=admin).status_code == 204
        assert_problem(api.get(f"/products/{product['id']}"), 404)

    def test_anonymous_writes_are_401_and_customer_writes_403(self, api: httpx.Client) -> None:
        body = {"name": "Nope", "description": "", "status": "active", "attributes": {}, "media": [],
                "variants": [{"sku": "NOPE-1", "name": "x", "options": {}, "price": {"amount": 1, "currency": "INR"}}]}
        assert_problem(api.post("/products", json=body), 401)
        assert_problem(api.post("/categories", json={"name": "Nope"}), 401)
        email = f"shopper-{uuid.uuid4().hex[:8]}@example.com"
        assert api.post("/auth/signup", json={"email": email, "password": "window-shopping-42", "name": "S"}
                        ).status_code == 201
        customer = bearer(login(api, email, "window-shopping-42")["access_token"])
        assert_problem(api.post("/products", json=body, headers=customer), 403)
        assert_problem(api.post("/brands", json={"name": "Nope"}, headers=customer), 403)


@pytest.fixture(scope="module")
def shop(platform: Platform) -> Iterator[dict[str, Any]]:
    """A tenant of its own (18 % tax) with its admin, a product of two variants, stock and a coupon."""
    tag = uuid.uuid4().hex[:6]
    tenant = f"shop-{tag}"
    with httpx.Client(base_url=f"{platform.base_url}/api/v1", timeout=15) as api:
        root = bearer(login(api, ADMIN_EMAIL, ADMIN_PASSWORD)["access_token"])
        assert_ok(api.post("/admin/tenants", headers=root, json={
            "id": tenant, "name": f"Shop {tag}", "currency": "INR", "tax_rate_bp": 1800}), 201)
        email, password = f"admin@{tenant}.example.com", "stock-keeper-2026"
        platform.cli("users", "create-admin", "--tenant", tenant, "--email", email, "--password", password)
        admin = bearer(login(api, email, password, tenant)["access_token"])
        product = assert_ok(api.post("/products", headers=admin, json={
            "name": f"Kettle {tag}", "description": "1.5 l", "status": "active", "attributes": {}, "media": [],
            "variants": [{"sku": f"KTL-{tag}-S", "name": "Steel", "options": {"finish": "steel"},
                          "price": {"amount": 10_000, "currency": "INR"}},
                         {"sku": f"KTL-{tag}-C", "name": "Copper", "options": {"finish": "copper"},
                          "price": {"amount": 2_550, "currency": "INR"}}]}), 201)
        steel, copper = f"KTL-{tag}-S", f"KTL-{tag}-C"
        # Inventory learns the SKUs from product.updated.v1: stock can be set once it has.
        for sku, units in ((steel, 5), (copper, 3)):
            eventually(lambda sku=sku, units=units: api.put(
                f"/inventory/{sku}/warehouses/default", headers=admin,
                json={"set": units, "reason": "first delivery"}).status_code == 200,
                timeout=60, what=f"inventory to know {sku}")
        now = dt.datetime.now(dt.UTC)
        coupon = assert_ok(api.post("/coupons", headers=admin, json={
            "code": f"WELCOME{tag}".upper(), "kind": "percent", "value": 10, "min_subtotal": 5_000,
            "starts_at": (now - dt.timedelta(hours=1)).isoformat(),
            "ends_at": (now + dt.timedelta(days=1)).isoformat(),
            "usage_limit": 100, "once_per_customer": True}), 201)
        yield {"tenant": tenant, "admin": admin, "product": product, "steel": steel, "copper": copper,
               "coupon": coupon["code"]}


class TestShopping:
    """Stock and the cart, black-box: an admin stocks a product; a guest fills a cart, signs up,
    merges it, applies a coupon and sees totals computed with the tenant's tax rate."""

    def test_an_admin_sets_stock_and_sees_it_in_availability(self, api: httpx.Client, shop: dict[str, Any]) -> None:
        anonymous = tenant_header(shop["tenant"])
        public = assert_ok(api.get(f"/inventory/{shop['steel']}", headers=anonymous))
        assert public["available"] == 5 and not public.get("warehouses")
        adjusted = api.put(f"/inventory/{shop['steel']}/warehouses/default", headers=shop["admin"],
                           json={"adjust": 2, "reason": "found two in the back"})
        assert_ok(adjusted)
        detail = assert_ok(api.get(f"/inventory/{shop['steel']}", headers=shop["admin"]))
        assert detail["available"] == 7
        assert [w["available"] for w in detail["warehouses"] if w["id"] == "default"] == [7]
        both = assert_ok(api.get("/inventory", params=[("sku", shop["steel"]), ("sku", shop["copper"])],
                                 headers=anonymous))
        assert [(i["sku"], i["available"]) for i in both["items"]] == [(shop["steel"], 7), (shop["copper"], 3)]
        assert_problem(api.put(f"/inventory/{shop['steel']}/warehouses/default", headers=anonymous,
                               json={"set": 99, "reason": "anonymous"}), 401)
        assert_ok(api.put(f"/inventory/{shop['steel']}/warehouses/default", headers=shop["admin"],
                          json={"adjust": -2, "reason": "back to five"}))

    def test_a_guest_fills_a_cart_signs_up_merges_and_pays_the_right_totals(
            self, api: httpx.Client, shop: dict[str, Any]) -> None:
        guest = tenant_header(shop["tenant"])
        first = api.post("/cart/items", headers=guest, json={"sku": shop["steel"], "quantity": 2})
        assert first.status_code in (200, 201), first.text
        cart_id = first.headers["x-cart-id"]
        assert first.json()["id"] == cart_id and len(cart_id) >= 22
        guest_cart = {**guest, "X-Cart-Id": cart_id}
        assert_ok(api.post("/cart/items", headers=guest_cart, json={"sku": shop["copper"], "quantity": 1}),
                  first.status_code)
        too_many = assert_problem(api.patch(f"/cart/items/{shop['steel']}", headers=guest_cart,
                                            json={"quantity": 6}), 409)
        assert too_many["sku"] == shop["steel"] and too_many["available"] == 5
        assert_problem(api.post("/cart/items", headers=guest_cart, json={"sku": "NO-SUCH-SKU", "quantity": 1}), 404)

        customer = sign_up(api, shop["tenant"], name="Grace Hopper")
        merged = assert_ok(api.post("/cart/merge", headers=customer.auth, json={"guest_cart_id": cart_id}))
        assert {(i["sku"], i["quantity"]) for i in merged["items"]} == {(shop["steel"], 2), (shop["copper"], 1)}
        assert_problem(api.get("/cart", headers=guest_cart), 404)  # the guest cart is gone, its id dead
        again = assert_ok(api.post("/cart/merge", headers=customer.auth, json={"guest_cart_id": cart_id}))
        assert again["items"] == merged["items"]

        assert_ok(api.post("/cart/coupon", headers=customer.auth, json={"code": shop["coupon"].lower()}))
        cart = assert_ok(api.get("/cart", headers=customer.auth))
        # 2 x 100.00 + 25.50 = 225.50; 10 % off = 22.55 (20.00 + 2.55 by line); 18 % tax on what is left,
        # per line, half-even: 180.00 → 32.40 and 22.95 → 4.131 → 4.13.
        money = {key: cart[key] for key in ("subtotal", "discount", "tax", "total")}
        assert money == {"subtotal": {"amount": 22_550, "currency": "INR"},
                         "discount": {"amount": 2_255, "currency": "INR"},
                         "tax": {"amount": 3_653, "currency": "INR"},
                         "total": {"amount": 23_948, "currency": "INR"}}, cart
        assert cart["coupon"]["code"] == shop["coupon"]

        stale = cart["version"]
        assert_ok(api.patch(f"/cart/items/{shop['copper']}", headers={**customer.auth, "If-Match": f'"{stale}"'},
                            json={"quantity": 2}))
        assert_problem(api.delete(f"/cart/items/{shop['copper']}", headers={**customer.auth, "If-Match": f'"{stale}"'}),
                       412)

    def test_a_customer_checks_out_pays_on_the_sandbox_and_the_order_is_confirmed(
            self, api: httpx.Client, shop: dict[str, Any]) -> None:
        customer = sign_up(api, shop["tenant"], name="Mary Jackson")
        assert_ok(api.post("/cart/items", headers=customer.auth, json={"sku": shop["copper"], "quantity": 1}))
        stock = assert_ok(api.get(f"/inventory/{shop['copper']}", headers=shop["admin"]))["warehouses"][0]
        body = {"payment_provider": "sandbox", "address": {
            "name": "Mary Jackson", "line1": "1 Langley Way", "city": "Hampton", "postal_code": "23666",
            "country": "US"}}
        attempt = {**customer.auth, "Idempotency-Key": uuid.uuid4().hex}
        placed = assert_ok(api.post("/orders", headers=attempt, json=body), 202)
        assert placed["status"] == "RESERVATION_PENDING" and placed["total"]["amount"] == 3_009  # 25.50 + 18 %
        assert assert_ok(api.post("/orders", headers=attempt, json=body), 202)["id"] == placed["id"]  # one order
        path = f"/orders/{placed['id']}"

        # Inventory holds the stock, payments opens a sandbox payment: the order shows how to pay.
        waiting = eventually(lambda: (o := api.get(path, headers=customer.auth).json())["status"] == "PAYMENT_PENDING"
                             and o, timeout=60, what="the order to wait for its payment")
        assert waiting["payment"]["provider"] == "sandbox" and waiting["payment"]["client"]["page_url"]
        eventually(lambda: api.get("/cart", headers=customer.auth).json()["items"] == [], timeout=60,
                   what="the cart to give up the ordered line")
        payment = waiting["payment"]["id"]
        assert_problem(api.post(f"/payments/sandbox/{payment}/complete", json={"outcome": "success"},
                                headers=sign_up(api, shop["tenant"], name="Eve").auth), 404)
        assert_ok(api.post(f"/payments/sandbox/{payment}/complete", json={"outcome": "success"},
                           headers=customer.auth), 202)

        # The sandbox's signed webhook authorizes the payment; orders confirms; inventory deducts.
        confirmed = eventually(lambda: (o := api.get(path, headers=customer.auth).json())["status"] == "CONFIRMED"
                               and o, timeout=60, what="the order to be confirmed")
        assert [h["status"] for h in confirmed["history"]] == ["RESERVATION_PENDING", "PAYMENT_PENDING", "CONFIRMED"]
        assert assert_ok(api.get(f"/payments/{payment}", headers=customer.auth))["status"] in (
            "authorized", "capture_due", "captured")
        eventually(lambda: api.get(f"/inventory/{shop['copper']}", headers=shop["admin"]).json()["warehouses"][0]
                   == {**stock, "on_hand": stock["on_hand"] - 1, "available": stock["available"] - 1},
                   timeout=60, what="inventory to deduct the confirmed order's stock")
        mine = assert_ok(api.get("/orders", headers=customer.auth))["items"]
        assert [order["id"] for order in mine] == [placed["id"]]
        assert_problem(api.get(path, headers=sign_up(api, shop["tenant"], name="Eve").auth), 404)
        assert assert_ok(api.get(path, headers=shop["admin"]))["id"] == placed["id"]

    def test_a_declined_payment_cancels_and_a_paid_order_cancelled_is_refunded_and_restocked(
            self, api: httpx.Client, shop: dict[str, Any]) -> None:
        def available() -> int:
            return int(api.get(f"/inventory/{shop['steel']}", headers=shop["admin"]).json()["available"])

        def order_waiting_for_payment(customer: Any) -> dict[str, Any]:
            assert_ok(api.post("/cart/items", headers=customer.auth, json={"sku": shop["steel"], "quantity": 1}))
            placed = assert_ok(api.post("/orders", headers={**customer.auth, "Idempotency-Key": uuid.uuid4().hex},
                                        json={"payment_provider": "sandbox", "address": {
                                            "name": "Dorothy Vaughan", "line1": "2 Langley Way", "city": "Hampton",
                                            "postal_code": "23666", "country": "US"}}), 202)
            return dict(eventually(lambda: (o := api.get(f"/orders/{placed['id']}", headers=customer.auth).json())[
                "status"] == "PAYMENT_PENDING" and o, timeout=60, what="the order to wait for its payment"))

        before = available()
        declined = sign_up(api, shop["tenant"], name="Dorothy Vaughan")
        order = order_waiting_for_payment(declined)
        assert available() == before - 1
        assert_ok(api.post(f"/payments/sandbox/{order['payment']['id']}/complete", json={"outcome": "failure"},
                           headers=declined.auth), 202)
        cancelled = eventually(lambda: (o := api.get(f"/orders/{order['id']}", headers=declined.auth).json())[
            "status"] == "CANCELLED" and o, timeout=60, what="the declined order to be cancelled")
        assert cancelled["cancel_reason"] == "payment_failed"
        eventually(lambda: available() == before, timeout=60, what="the declined order's stock to be released")

        regretful = sign_up(api, shop["tenant"], name="Christine Darden")
        order = order_waiting_for_payment(regretful)
        assert_ok(api.post(f"/payments/sandbox/{order['payment']['id']}/complete", json={"outcome": "success"},
                           headers=regretful.auth), 202)
        eventually(lambda: api.get(f"/orders/{order['id']}", headers=regretful.auth).json()["status"] == "CONFIRMED",
                   timeout=60, what="the paid order to be confirmed")
        cancelled = assert_ok(api.post(f"/orders/{order['id']}/cancel", headers=regretful.auth))
        assert (cancelled["status"], cancelled["cancel_reason"]) == ("CANCELLED", "customer")
        eventually(lambda: api.get(f"/payments/{order['payment']['id']}", headers=regretful.auth).json()["status"]
                   == "refunded", timeout=60, what="the cancelled order's payment to be refunded")
        eventually(lambda: available() == before, timeout=60, what="the cancelled order's stock to be back on hand")

    def test_a_price_change_shows_on_the_next_read(self, api: httpx.Client, shop: dict[str, Any]) -> None:
        customer = sign_up(api, shop["tenant"], name="Katherine Johnson")
        added = api.post("/cart/items", headers=customer.auth, json={"sku": shop["copper"], "quantity": 1})
        assert added.status_code in (200, 201), added.text
        product = shop["product"]
        variants = [{**{k: v for k, v in variant.items() if k in ("sku", "name", "options", "price")}}
                    for variant in product["variants"]]
        for variant in variants:
            if variant["sku"] == shop["copper"]:
                variant["price"] = {"amount": 2_990, "currency": "INR"}
        assert_ok(api.patch(f"/products/{product['id']}", headers=shop["admin"], json={"variants": variants}))

        def repriced() -> dict[str, Any] | None:
            line = assert_ok(api.get("/cart", headers=customer.auth))["items"][0]
            return line if line["unit_price"]["amount"] == 2_990 else None

        line = eventually(repriced, timeout=60, what="the cart to show the new price")
        assert line["price_changed"] is True


class TestSearch:
    def test_a_new_product_is_found_forgiving_typos_suggested_kept_to_its_tenant_and_gone_when_deleted(
            self, api: httpx.Client) -> None:
        admin = bearer(login(api, ADMIN_EMAIL, ADMIN_PASSWORD)["access_token"])
        word = "".join(random.Random().choice("bcdfghjklmnpqrstvwxz") + "a" for _ in range(4))  # e.g. "kazamaga"
        made = api.post("/products", headers=admin, json={
            "name": f"{word.capitalize()} Refractor Telescope", "description": "A small refractor for the balcony.",
            "status": "active", "variants": [{"sku": f"TEL-{word}", "name": "80 mm",
                                              "price": {"amount": 1_999_900, "currency": "INR"}}]})
        assert made.status_code == 201, made.text
        product = made.json()

        def found(q: str, **headers: str) -> list[str]:
            answer = api.get("/search", params={"q": q}, headers=headers)
            assert answer.status_code == 200, answer.text
            return [hit["product_id"] for hit in answer.json()["items"]]

        eventually(lambda: found(word) == [product["id"]], timeout=30, what="the new product to be searchable")
        typo = word[:3] + word[4] + word[3] + word[5:]  # two letters swapped: one edit
        assert found(typo) == [product["id"]]
        hit = api.get("/search", params={"q": f"{word} refractor"}).json()["items"][0]
        assert hit["price"] == {"amount": 1_999_900, "currency": "INR"} and "<mark>" in hit["snippet"]
        suggested = api.get("/search/autocomplete", params={"q": word[:4]}).json()["items"]
        assert product["id"] in [s["id"] for s in suggested]
        assert found(word, **tenant_header("acme")) == []
        assert_problem(api.get("/search", params={"q": ""}), 422)

        assert api.delete(f"/products/{product['id']}", headers=admin).status_code == 204
        eventually(lambda: found(word) == [], timeout=30, what="the deleted product to leave the index")


class TestBadInput:
    def test_bad_requests_are_problems_and_write_nothing(self, api: httpx.Client) -> None:
        admin = bearer(login(api, ADMIN_EMAIL, ADMIN_PASSWORD)["access_token"])
        before = api.get("/products", params={"limit": 100, "status": "draft"}, headers=admin).json()["items"]
        json_headers = {**admin, "content-type": "application/json"}
        assert_problem(api.post("/products", content=b'{"name": "broken', headers=json_headers), 400)
        assert_problem(api.post("/products", json={"name": 42, "variants": "many"}, headers=admin), 422)
        assert_problem(api.post("/categories", json={"name": "X", "colour": "blue"}, headers=admin), 422)
        assert_problem(api.post("/products", content=b"x" * 2_000_000, headers=json_headers), 413)
        assert_problem(api.get("/products", params={"cursor": "%%%not-a-cursor"}), 400)
        assert_problem(api.get("/products/not-a-uuid"), 422)
        assert_problem(api.get("/products", params={"limit": 0}), 422)
        assert_problem(api.get("/no-such-thing"), 404)
        after = api.get("/products", params={"limit": 100, "status": "draft"}, headers=admin).json()["items"]
        assert after == before

    def test_tenant_header_contradicting_the_token_is_403(self, api: httpx.Client) -> None:
        admin = bearer(login(api, ADMIN_EMAIL, ADMIN_PASSWORD)["access_token"])
        assert_problem(api.get("/users/me", headers={**admin, "X-Tenant-ID": "someone-else"}), 403)
        assert_problem(api.get("/products", headers={"X-Tenant-ID": "Not A Tenant!"}), 400)

    def test_correlation_id_is_echoed(self, api: httpx.Client) -> None:
        response = api.get("/products", headers={"X-Correlation-ID": "e2e-check-123"})
        assert response.headers["x-correlation-id"] == "e2e-check-123"


class TestOps:
    def test_health_metrics_and_docs(self, platform: Platform) -> None:
        with httpx.Client(base_url=platform.base_url, timeout=10) as client:
            assert client.get("/health/live").status_code == 200
            assert client.get("/health/ready").status_code == 200
            metrics = client.get("/metrics")
            assert metrics.status_code == 200 and "amazonlite_http_requests_total" in metrics.text
            spec = client.get("/openapi.json").json()
            for path in ("/api/v1/auth/login", "/api/v1/users/me", "/api/v1/products", "/api/v1/products/{"):
                assert any(p == path or p.startswith(path) for p in spec["paths"]), path
            assert client.get("/docs").status_code == 200


class TestPersonalDataAtRest:
    def test_an_address_is_readable_through_the_api_and_nowhere_in_the_database(
            self, api: httpx.Client, platform: Platform) -> None:
        tag = uuid.uuid4().hex[:8]
        customer = sign_up(api, "default", name="Sherlock Holmes")
        address = {"name": f"Sherlock {tag}", "line1": f"221B Baker Street {tag}", "line2": f"Flat {tag}",
                   "city": "London", "postal_code": "NW1 6XE", "country": "GB", "phone": "+44 20 7224 3688"}
        created = api.post("/users/me/addresses", json=address, headers=customer.auth)
        assert created.status_code == 201, created.text
        assert api.get("/users/me/addresses", headers=customer.auth).json()["items"][0]["line1"] == address["line1"]

        rows = raw_rows(platform.database_urls["users"], "addresses")
        stored = [row for row in rows if str(row["id"]).replace("-", "") == created.json()["id"].replace("-", "")]
        assert len(stored) == 1, "the address row is in the users database"
        raw = " ".join(str(value) for value in stored[0].values())
        for secret in (address["name"], address["line1"], address["line2"], tag, "Baker", "7224 3688"):
            assert secret not in raw, f"{secret!r} is stored in plaintext"


def raw_rows(database_url: str, table: str) -> list[dict[str, Any]]:
    """A table's rows as an operator (or a thief of the disk or a backup) reads them: plain SQL."""
    return [dict(row._mapping) for row in query(database_url, f"SELECT * FROM {table}")]


class TestTokensSignedWithThePlatformsOwnKey:
    def test_expired_wrong_audience_and_wrong_issuer_are_401_though_the_signature_is_genuine(
            self, api: httpx.Client, platform: Platform) -> None:
        """An operator who holds the key-encryption secret (these platforms use the development one)
        can sign with the platform's own key: the signature is genuine, so only the claims decide."""
        kid, key = platform_signing_key(platform.auth_database_url)
        genuine = login(api, ADMIN_EMAIL, ADMIN_PASSWORD)["access_token"]
        claims = jwt.decode(genuine, options={"verify_signature": False})
        now = int(time.time())

        def signed(**changes: Any) -> str:
            return jwt.encode({**claims, "jti": uuid.uuid4().hex, **changes}, key, algorithm="EdDSA",
                              headers={"kid": kid, "typ": "JWT"})

        assert api.get("/auth/me", headers=bearer(signed())).status_code == 200  # the key is the real one
        for name, token in {"expired": signed(iat=now - 900, exp=now - 60),
                            "wrong audience": signed(aud="another-deployment"),
                            "wrong issuer": signed(iss="https://issuer.example")}.items():
            refused = api.get("/auth/me", headers=bearer(token))
            assert refused.status_code == 401, f"{name}: {refused.text}"


def platform_signing_key(auth_database_url: str) -> tuple[str, Ed25519PrivateKey]:
    row = query(auth_database_url, "SELECT kid, public_key, private_key_encrypted FROM signing_keys "
                                   "WHERE retired_at IS NULL ORDER BY created_at LIMIT 1")[0]
    kek = key_encryption_key(DEVELOPMENT_KEY_ENCRYPTION_SECRET)
    return row.kid, decrypt_private_key(kek, row.kid, row.public_key, row.private_key_encrypted)
