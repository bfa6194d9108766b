"""Broken object level authorization, black-box through the gateway, in both topologies.

Two tenants: `default` (tenant A: the platform admin of the fixture, customers X and Y) and a
second tenant B (customer B; and B's tenant admin when the platform fixture provides one, see
`_other_admin`). Every refusal is paired with the owner doing the same thing successfully, so a
test cannot pass because an endpoint is simply broken; and every refused write is followed by the
owner's read showing the object unchanged.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from amazonlite.platform.security import InternalTokens, Principal, Role
from tests.e2e import platforms
from tests.e2e.actors import (
    Actor,
    assert_ok,
    assert_problem,
    bearer,
    create_tenant,
    eventually,
    sign_in,
    sign_up,
    tenant_header,
)

pytestmark = [pytest.mark.xdist_group("e2e")]

TENANT_A = "default"
ADDRESS = {"name": "Home", "line1": "221B Baker Street", "city": "Pune", "postal_code": "411001", "country": "IN",
           "phone": "+91 98765 43210"}


@dataclass
class Catalog:
    category: dict[str, Any]
    brand: dict[str, Any]
    product: dict[str, Any]


@dataclass
class World:
    api: httpx.Client
    tenant_b: str
    admin: Actor  # platform and tenant admin of `default`
    x: Actor  # customers of `default`
    y: Actor
    b: Actor  # a customer of tenant B
    catalog_a: Catalog
    b_admin: Actor  # the tenant admin of B the platform fixture creates
    catalog_b: Catalog


def make_catalog(api: httpx.Client, admin: Actor, label: str) -> Catalog:
    tag = uuid.uuid4().hex[:6]
    category = assert_ok(api.post("/categories", json={"name": f"{label} lenses {tag}"}, headers=admin.auth), 201)
    brand = assert_ok(api.post("/brands", json={"name": f"{label} optics {tag}"}, headers=admin.auth), 201)
    product = assert_ok(api.post("/products", headers=admin.auth, json={
        "name": f"{label} prime lens {tag}", "description": "50mm f/1.8", "status": "active",
        "category_id": category["id"], "brand_id": brand["id"], "attributes": {"focal_mm": 50}, "media": [],
        "variants": [{"sku": f"LENS-{tag}", "name": "Standard", "options": {},
                      "price": {"amount": 1_299_900, "currency": "INR"}}],
    }), 201)
    return Catalog(category, brand, product)


@pytest.fixture(scope="module")
def world(platform: platforms.Platform) -> Iterator[World]:
    with httpx.Client(base_url=f"{platform.base_url}/api/v1", timeout=15) as api:
        admin = sign_in(api, platforms.ADMIN_EMAIL, platforms.ADMIN_PASSWORD, TENANT_A)
        tenant_b = platforms.OTHER_TENANT
        assert create_tenant(api, admin.auth, tenant_b)  # exists already (create-admin made it): 409 is fine
        b_admin = sign_in(api, platforms.OTHER_ADMIN_EMAIL, platforms.OTHER_ADMIN_PASSWORD, tenant_b)
        yield World(
            api=api, tenant_b=tenant_b, admin=admin,
            x=sign_up(api, TENANT_A, name="Xena"), y=sign_up(api, TENANT_A, name="Yusuf"),
            b=sign_up(api, tenant_b, name="Bela"),
            catalog_a=make_catalog(api, admin, "Alpha"), b_admin=b_admin,
            catalog_b=make_catalog(api, b_admin, "Beta"),
        )


def needs_b_admin(world: World) -> tuple[Actor, Catalog]:
    return world.b_admin, world.catalog_b


def addresses_of(api: httpx.Client, actor: Actor) -> list[dict[str, Any]]:
    return assert_ok(api.get("/users/me/addresses", headers=actor.auth))["items"]


def listed(api: httpx.Client, path: str, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every item of a paginated list."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 100, **({"cursor": cursor} if cursor else {})}
        page = assert_ok(api.get(path, params=query, headers=headers))
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def listed_or_refused(api: httpx.Client, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """The list, or nothing when the caller may not list at all (403)."""
    first = api.get(path, headers=headers)
    if first.status_code == 403:
        return []
    return listed(api, path, headers)


def ids(items: list[dict[str, Any]]) -> set[str]:
    return {item["id"] for item in items}


def assert_sees_nothing(response: httpx.Response) -> None:
    """A filter naming another tenant's object matches nothing (an empty page, or a 404/422 problem)."""
    if response.status_code == 200:
        assert response.json()["items"] == [], response.text
    else:
        assert response.status_code in (404, 422), response.text


def forged_internal_token(tenant: str, audience: str, user_id: str | None = None,
                          roles: tuple[Role, ...] = ()) -> str:
    """An internal token as the gateway would mint it, but under a secret the platform does not hold."""
    principal = Principal(tenant_id=tenant, user_id=user_id, roles=frozenset(roles),
                          token_id=uuid.uuid4().hex, token_expires_at=2_000_000_000)
    return InternalTokens(secrets.token_urlsafe(48)).mint(principal, audience=audience, caller="gateway")


def product_of(api: httpx.Client, product_id: str, tenant: str) -> dict[str, Any]:
    return assert_ok(api.get(f"/products/{product_id}", headers=tenant_header(tenant)))


class TestTenantHeaderTampering:
    def test_a_token_naming_another_tenant_is_refused_on_every_resource(self, world: World) -> None:
        api, x, b, tenant_b = world.api, world.x, world.b, world.tenant_b
        own_address = assert_ok(api.post("/users/me/addresses", json=ADDRESS, headers=x.auth), 201)
        product_a = world.catalog_a.product["id"]
        reads = ["/users/me", "/users/me/addresses", "/users/me/preferences", "/auth/me",
                 f"/products/{product_a}", "/products", "/categories", "/brands"]
        for path in reads:
            assert_ok(api.get(path, headers={**x.auth, **tenant_header(TENANT_A)}))  # control: the token's own tenant
            assert_problem(api.get(path, headers={**x.auth, **tenant_header(tenant_b)}), 403)
            assert_problem(api.get(path, headers={**b.auth, **tenant_header(TENANT_A)}), 403)

        crossed = {**x.auth, **tenant_header(tenant_b)}
        assert_problem(api.patch("/users/me", json={"name": "Tampered"}, headers=crossed), 403)
        assert_problem(api.post("/users/me/addresses", json=ADDRESS, headers=crossed), 403)
        assert_problem(api.patch(f"/users/me/addresses/{own_address['id']}", json={"city": "Goa"}, headers=crossed),
                       403)
        assert_problem(api.delete(f"/users/me/addresses/{own_address['id']}", headers=crossed), 403)
        assert own_address in addresses_of(api, x)
        assert assert_ok(api.get("/users/me", headers=x.auth))["name"] == "Xena"
        # Control: the same write with the token's own tenant named goes through.
        assert assert_ok(api.patch(f"/users/me/addresses/{own_address['id']}", json={"city": "Goa"},
                                   headers={**x.auth, **tenant_header(TENANT_A)}))["city"] == "Goa"
        assert_ok(api.delete(f"/users/me/addresses/{own_address['id']}", headers=x.auth), 204)

    def test_an_admin_naming_another_tenant_cannot_write_the_catalog(self, world: World) -> None:
        api, admin, tenant_b = world.api, world.admin, world.tenant_b
        product = world.catalog_a.product
        before = product_of(api, product["id"], TENANT_A)
        crossed = {**admin.auth, **tenant_header(tenant_b)}
        assert_problem(api.patch(f"/products/{product['id']}", json={"name": "Tampered"}, headers=crossed), 403)
        assert_problem(api.delete(f"/products/{product['id']}", headers=crossed), 403)
        assert_problem(api.post("/categories", json={"name": f"Smuggled {uuid.uuid4().hex[:6]}"}, headers=crossed),
                       403)
        assert_problem(api.patch(f"/categories/{world.catalog_a.category['id']}", json={"name": "Tampered"},
                                 headers=crossed), 403)
        assert_problem(api.patch(f"/brands/{world.catalog_a.brand['id']}", json={"name": "Tampered"},
                                 headers=crossed), 403)
        assert product_of(api, product["id"], TENANT_A) == before
        assert world.catalog_a.category in listed(api, "/categories", {})
        assert world.catalog_a.brand in listed(api, "/brands", {})
        # Control: the admin in its own tenant may write (a no-op rename keeps the shared fixture intact).
        assert assert_ok(api.patch(f"/products/{product['id']}", json={"name": before["name"]},
                                   headers={**admin.auth, **tenant_header(TENANT_A)}))["name"] == before["name"]

    def test_a_refresh_or_logout_naming_another_tenant_is_refused(self, world: World) -> None:
        api, x, tenant_b = world.api, world.x, world.tenant_b
        session = x.session(api)
        crossed = {**bearer(session["access_token"]), **tenant_header(tenant_b)}
        assert_problem(api.post("/auth/refresh", json={"refresh_token": session["refresh_token"]}, headers=crossed),
                       403)
        assert_problem(api.post("/auth/logout", json={"refresh_token": session["refresh_token"]}, headers=crossed),
                       403)
        # Neither attempt spent nor revoked anything: the session still works and refreshes.
        assert assert_ok(api.get("/users/me", headers=bearer(session["access_token"])))["id"] == x.user_id
        assert_ok(api.post("/auth/refresh", json={"refresh_token": session["refresh_token"]}))


class TestForgedInternalToken:
    """A client cannot speak for the gateway: its X-Internal-Token is dropped, never believed."""

    def test_a_forged_internal_token_does_not_change_who_is_calling(self, world: World) -> None:
        api, x, y, b = world.api, world.x, world.y, world.b
        as_y = forged_internal_token(TENANT_A, "users", y.user_id, (Role.CUSTOMER,))
        me = assert_ok(api.get("/users/me", headers={**x.auth, "X-Internal-Token": as_y}))
        assert me["id"] == x.user_id and me["email"] == x.email
        assert_ok(api.patch("/users/me", json={"name": "Xena"}, headers={**x.auth, "X-Internal-Token": as_y}))
        assert assert_ok(api.get("/users/me", headers=y.auth))["name"] == "Yusuf"
        me_b = assert_ok(api.get("/users/me", headers={**b.auth, "X-Internal-Token": as_y}))
        assert me_b["id"] == b.user_id
        # Anonymous with a forged token: still anonymous.
        assert_problem(api.get("/users/me", headers={"X-Internal-Token": as_y}), 401)
        assert_problem(api.get("/users/me/addresses", headers={"X-Internal-Token": as_y}), 401)

    def test_a_forged_admin_internal_token_grants_nothing(self, world: World) -> None:
        api, admin = world.api, world.admin
        name = f"Forged {uuid.uuid4().hex[:6]}"
        forged = {"X-Internal-Token": forged_internal_token(TENANT_A, "catalog", admin.user_id,
                                                            (Role.PLATFORM_ADMIN, Role.TENANT_ADMIN))}
        assert_problem(api.post("/categories", json={"name": name}, headers=forged), 401)
        product = world.catalog_a.product
        assert_problem(api.patch(f"/products/{product['id']}", json={"name": name}, headers=forged), 401)
        assert_problem(api.delete(f"/products/{product['id']}", headers={**world.x.auth, **forged}), 403)
        assert name not in {c["name"] for c in listed(api, "/categories", admin.auth)}
        assert product_of(api, product["id"], TENANT_A)["name"] == product["name"]
        # Control: the real admin token does create.
        created = assert_ok(api.post("/categories", json={"name": name}, headers=admin.auth), 201)
        assert_ok(api.delete(f"/categories/{created['id']}", headers=admin.auth), 204)

    def test_a_forged_internal_token_does_not_move_the_tenant(self, world: World) -> None:
        api, product = world.api, world.catalog_a.product
        into_a = {"X-Internal-Token": forged_internal_token(TENANT_A, "catalog")}
        assert_ok(api.get(f"/products/{product['id']}", headers=into_a))  # control: anonymous in `default`
        assert_problem(api.get(f"/products/{product['id']}", headers={**into_a, **tenant_header(world.tenant_b)}),
                       404)
        assert_problem(api.get(f"/products/{product['id']}", headers={**into_a, **world.b.auth}), 404)


class TestCrossTenantCatalog:
    def test_another_tenants_product_is_not_found_by_id(self, world: World) -> None:
        api, product = world.api, world.catalog_a.product
        # Controls first: a shared read cache, if any, then holds A's answer.
        assert assert_ok(api.get(f"/products/{product['id']}"))["id"] == product["id"]
        assert assert_ok(api.get(f"/products/{product['id']}", headers=world.x.auth))["id"] == product["id"]
        assert_problem(api.get(f"/products/{product['id']}", headers=tenant_header(world.tenant_b)), 404)
        assert_problem(api.get(f"/products/{product['id']}", headers=world.b.auth), 404)

    def test_list_filters_naming_another_tenants_objects_match_nothing(self, world: World) -> None:
        api, catalog, tenant_b = world.api, world.catalog_a, world.tenant_b
        for key, ref in (("category", catalog.category), ("brand", catalog.brand)):
            assert ids(listed(api, "/products", {}, **{key: ref["id"]})) == {catalog.product["id"]}  # control
            assert_sees_nothing(api.get("/products", params={key: ref["id"]}, headers=tenant_header(tenant_b)))
            assert_sees_nothing(api.get("/products", params={key: ref["id"]}, headers=world.b.auth))
        b_products = ids(listed(api, "/products", tenant_header(tenant_b)))
        assert catalog.product["id"] not in b_products
        assert catalog.category["id"] in ids(listed(api, "/categories", {}))
        assert catalog.category["id"] not in ids(listed(api, "/categories", tenant_header(tenant_b)))
        assert catalog.brand["id"] in ids(listed(api, "/brands", {}))
        assert catalog.brand["id"] not in ids(listed(api, "/brands", world.b.auth))

    def test_an_admin_cannot_change_another_tenants_catalog_by_id(self, world: World) -> None:
        b_admin, catalog_b = needs_b_admin(world)
        api, admin = world.api, world.admin
        b_product = catalog_b.product["id"]
        before = product_of(api, b_product, world.tenant_b)
        assert_problem(api.get(f"/products/{b_product}", headers=admin.auth), 404)
        assert_problem(api.patch(f"/products/{b_product}", json={"name": "Hijacked"}, headers=admin.auth), 404)
        assert_problem(api.delete(f"/products/{b_product}", headers=admin.auth), 404)
        for kind, obj in (("categories", catalog_b.category), ("brands", catalog_b.brand)):
            assert_problem(api.patch(f"/{kind}/{obj['id']}", json={"name": "Hijacked"}, headers=admin.auth), 404)
            assert_problem(api.delete(f"/{kind}/{obj['id']}", headers=admin.auth), 404)
            assert obj in listed(api, f"/{kind}", b_admin.auth)
            assert obj["id"] not in ids(listed(api, f"/{kind}", admin.auth))
        assert product_of(api, b_product, world.tenant_b) == before
        assert b_product not in ids(listed(api, "/products", admin.auth))
        assert b_product not in ids(listed(api, "/products", admin.auth, category=catalog_b.category["id"]))
        # Control: B's own admin changes the same objects by the same ids.
        renamed = f"{before['name']} II"
        assert assert_ok(api.patch(f"/products/{b_product}", json={"name": renamed}, headers=b_admin.auth))[
            "name"] == renamed
        assert_ok(api.patch(f"/products/{b_product}", json={"name": before["name"]}, headers=b_admin.auth))
        name = catalog_b.category["name"]
        assert_ok(api.patch(f"/categories/{catalog_b.category['id']}", json={"name": name}, headers=b_admin.auth))

    def test_another_tenants_admin_cannot_change_this_tenants_catalog(self, world: World) -> None:
        b_admin, _ = needs_b_admin(world)
        api, catalog = world.api, world.catalog_a
        before = product_of(api, catalog.product["id"], TENANT_A)
        assert_problem(api.patch(f"/products/{catalog.product['id']}", json={"name": "Hijacked"},
                                 headers=b_admin.auth), 404)
        assert_problem(api.delete(f"/products/{catalog.product['id']}", headers=b_admin.auth), 404)
        for kind, obj in (("categories", catalog.category), ("brands", catalog.brand)):
            assert_problem(api.patch(f"/{kind}/{obj['id']}", json={"name": "Hijacked"}, headers=b_admin.auth), 404)
            assert_problem(api.delete(f"/{kind}/{obj['id']}", headers=b_admin.auth), 404)
            assert obj in listed(api, f"/{kind}", {})
        assert product_of(api, catalog.product["id"], TENANT_A) == before

    def test_a_product_cannot_point_at_another_tenants_category_or_brand(self, world: World) -> None:
        _, catalog_b = needs_b_admin(world)
        api, admin, product = world.api, world.admin, world.catalog_a.product
        before = product_of(api, product["id"], TENANT_A)
        for field, ref in (("category_id", catalog_b.category), ("brand_id", catalog_b.brand)):
            refused = api.patch(f"/products/{product['id']}", json={field: ref["id"]}, headers=admin.auth)
            assert 400 <= refused.status_code < 500, refused.text
            created = api.post("/products", headers=admin.auth, json={
                "name": f"Cross {uuid.uuid4().hex[:6]}", "status": "active", field: ref["id"],
                "variants": [{"sku": f"X-{uuid.uuid4().hex[:8]}", "name": "x",
                              "price": {"amount": 100, "currency": "INR"}}]})
            assert 400 <= created.status_code < 500, created.text
        assert product_of(api, product["id"], TENANT_A) == before
        assert_sees_nothing(api.get("/products", params={"category": catalog_b.category["id"]}))


class TestCrossTenantUsers:
    def test_another_tenants_address_cannot_be_read_changed_or_deleted(self, world: World) -> None:
        api, x, b, admin = world.api, world.x, world.b, world.admin
        address = assert_ok(api.post("/users/me/addresses", json={**ADDRESS, "name": "Bela home"}, headers=b.auth),
                            201)
        path = f"/users/me/addresses/{address['id']}"
        for intruder in (x, admin):
            assert api.get(path, headers=intruder.auth).status_code in (404, 405)
            assert_problem(api.patch(path, json={"city": "Stolen"}, headers=intruder.auth), 404)
            assert_problem(api.delete(path, headers=intruder.auth), 404)
            assert address["id"] not in ids(addresses_of(api, intruder))
        assert_problem(api.patch(path, json={"city": "Stolen"}, headers=tenant_header(world.tenant_b)), 401)
        assert_problem(api.delete(path, headers=tenant_header(world.tenant_b)), 401)
        assert address in addresses_of(api, b)
        # Control: the owner does the same by the same id.
        assert assert_ok(api.patch(path, json={"city": "Mumbai"}, headers=b.auth))["city"] == "Mumbai"
        assert_ok(api.delete(path, headers=b.auth), 204)
        assert address["id"] not in ids(addresses_of(api, b))

    def test_this_tenants_address_is_out_of_reach_of_another_tenants_customer(self, world: World) -> None:
        api, x, b = world.api, world.x, world.b
        address = assert_ok(api.post("/users/me/addresses", json={**ADDRESS, "name": "Xena home"}, headers=x.auth),
                            201)
        path = f"/users/me/addresses/{address['id']}"
        assert_problem(api.patch(path, json={"line1": "Elsewhere"}, headers=b.auth), 404)
        assert_problem(api.delete(path, headers=b.auth), 404)
        assert address["id"] not in ids(addresses_of(api, b))
        assert address in addresses_of(api, x)
        assert_ok(api.delete(path, headers=x.auth), 204)  # control

    def test_profiles_and_preferences_stay_in_their_tenant(self, world: World) -> None:
        api, x, b = world.api, world.x, world.b
        me_x = assert_ok(api.get("/users/me", headers=x.auth))
        me_b = assert_ok(api.get("/users/me", headers=b.auth))
        assert (me_x["id"], me_x["email"]) == (x.user_id, x.email)
        assert (me_b["id"], me_b["email"]) == (b.user_id, b.email)
        prefs_x = assert_ok(api.get("/users/me/preferences", headers=x.auth))
        changed = {**prefs_x["notifications"], "marketing": {"email": True, "sms": True}}
        assert assert_ok(api.put("/users/me/preferences", json={"notifications": changed}, headers=b.auth))[
            "notifications"]["marketing"] == {"email": True, "sms": True}
        assert assert_ok(api.get("/users/me/preferences", headers=x.auth)) == prefs_x
        assert_ok(api.patch("/users/me", json={"name": "Bela B"}, headers=b.auth))
        assert assert_ok(api.get("/users/me", headers=x.auth))["name"] == me_x["name"]
        assert_ok(api.patch("/users/me", json={"name": "Bela"}, headers=b.auth))

    def test_the_same_email_in_another_tenant_is_another_account(self, world: World) -> None:
        api, x = world.api, world.x
        twin = sign_up(api, world.tenant_b, name="Xena Twin", email=x.email, password="a-different-pass-77")
        assert twin.user_id != x.user_id and twin.tenant == world.tenant_b
        assert assert_ok(api.get("/users/me", headers=twin.auth))["name"] == "Xena Twin"
        assert assert_ok(api.get("/users/me", headers=x.auth))["name"] == "Xena"
        # X's account and password in `default` are untouched.
        assert sign_in(api, x.email, x.password, TENANT_A).user_id == x.user_id


class TestSameTenantCustomers:
    def test_another_customers_address_cannot_be_read_changed_or_deleted(self, world: World) -> None:
        api, x, y = world.api, world.x, world.y
        address = assert_ok(api.post("/users/me/addresses", json={**ADDRESS, "name": "Yusuf home"}, headers=y.auth),
                            201)
        path = f"/users/me/addresses/{address['id']}"
        assert api.get(path, headers=x.auth).status_code in (404, 405)
        assert_problem(api.patch(path, json={"city": "Stolen", "is_default": True}, headers=x.auth), 404)
        assert_problem(api.patch(path, json={"is_default": False}, headers=x.auth), 404)
        assert_problem(api.delete(path, headers=x.auth), 404)
        assert address["id"] not in ids(addresses_of(api, x))
        assert address in addresses_of(api, y)
        # Control: Y does the same by the same id.
        assert assert_ok(api.patch(path, json={"city": "Chennai"}, headers=y.auth))["city"] == "Chennai"
        assert_ok(api.delete(path, headers=y.auth), 204)
        assert address["id"] not in ids(addresses_of(api, y))

    def test_a_customer_changes_only_their_own_profile_and_preferences(self, world: World) -> None:
        api, x, y = world.api, world.x, world.y
        profile_y = assert_ok(api.get("/users/me", headers=y.auth))
        prefs_y = assert_ok(api.get("/users/me/preferences", headers=y.auth))
        renamed = assert_ok(api.patch("/users/me", json={"name": "Xena Prime"}, headers=x.auth))
        assert renamed["id"] == x.user_id and renamed["name"] == "Xena Prime"
        flipped = {kind: {"email": not channels["email"], "sms": not channels["sms"]}
                   for kind, channels in prefs_y["notifications"].items()}
        flipped["account_security"]["email"] = True  # security emails cannot be turned off
        assert assert_ok(api.put("/users/me/preferences", json={"notifications": flipped}, headers=x.auth))[
            "notifications"] == flipped
        assert assert_ok(api.get("/users/me", headers=y.auth)) == profile_y
        assert assert_ok(api.get("/users/me/preferences", headers=y.auth)) == prefs_y
        assert_ok(api.patch("/users/me", json={"name": "Xena"}, headers=x.auth))


class TestRefreshTokens:
    def test_a_refresh_token_does_not_refresh_in_another_tenant(self, world: World) -> None:
        api = world.api
        for actor, elsewhere in ((world.x, world.tenant_b), (world.b, TENANT_A)):
            session = actor.session(api)
            assert_problem(api.post("/auth/refresh", json={"refresh_token": session["refresh_token"]},
                                    headers=tenant_header(elsewhere)), 401)
            # Control: in its own tenant the same token refreshes (the foreign attempt spent nothing).
            rotated = assert_ok(api.post("/auth/refresh", json={"refresh_token": session["refresh_token"]},
                                         headers=tenant_header(actor.tenant)))
            me = assert_ok(api.get("/auth/me", headers=bearer(rotated["access_token"])))
            assert (me["user_id"], me["tenant_id"]) == (actor.user_id, actor.tenant)

    def test_logging_out_with_someone_elses_refresh_token_revokes_nothing(self, world: World) -> None:
        api, x, y, b = world.api, world.x, world.y, world.b
        victim_y, victim_x = y.session(api), x.session(api)
        for intruder, victim in ((x, victim_y), (b, victim_x)):
            throwaway = intruder.session(api)
            assert_ok(api.post("/auth/logout", json={"refresh_token": victim["refresh_token"]},
                               headers=bearer(throwaway["access_token"])), 204)
            victim.update(assert_ok(api.post("/auth/refresh", json={"refresh_token": victim["refresh_token"]},
                                             headers=tenant_header(TENANT_A))))
        # Control: logging out with one's own refresh token does revoke it.
        own = y.session(api)
        assert_ok(api.post("/auth/logout", json={"refresh_token": own["refresh_token"]},
                           headers=bearer(own["access_token"])), 204)
        assert_problem(api.post("/auth/refresh", json={"refresh_token": own["refresh_token"]}), 401)


class TestTenantSettings:
    def test_a_tenant_admin_cannot_read_or_change_another_tenants_settings(self, world: World) -> None:
        b_admin, _ = needs_b_admin(world)
        api, platform_admin = world.api, world.admin
        roles = assert_ok(api.get("/auth/me", headers=b_admin.auth))["roles"]
        if Role.PLATFORM_ADMIN.value in roles:
            pytest.skip(f"the second tenant's admin is a platform admin ({roles}): may see every tenant by design")
        before = assert_ok(api.get(f"/admin/tenants/{TENANT_A}", headers=platform_admin.auth))  # control
        assert api.get(f"/admin/tenants/{TENANT_A}", headers=b_admin.auth).status_code in (403, 404)
        for change in ({"name": "Hijacked"}, {"tax_rate_bp": 9_999}, {"status": "suspended"}):
            refused = api.patch(f"/admin/tenants/{TENANT_A}", json=change, headers=b_admin.auth)
            assert refused.status_code in (403, 404), refused.text
        assert TENANT_A not in {t["id"] for t in listed_or_refused(api, "/admin/tenants", b_admin.auth)}
        assert assert_ok(api.get(f"/admin/tenants/{TENANT_A}", headers=platform_admin.auth)) == before
        # Control: B's admin reads and changes B's own settings.
        own = assert_ok(api.get(f"/admin/tenants/{world.tenant_b}", headers=b_admin.auth))
        renamed = assert_ok(api.patch(f"/admin/tenants/{world.tenant_b}", json={"name": f"{own['name']} II"},
                                      headers=b_admin.auth))
        assert renamed["name"] == f"{own['name']} II"
        assert_ok(api.patch(f"/admin/tenants/{world.tenant_b}", json={"name": own["name"]}, headers=b_admin.auth))

    def test_customers_cannot_read_or_change_tenant_settings(self, world: World) -> None:
        api = world.api
        for customer, tenant in ((world.x, TENANT_A), (world.b, world.tenant_b), (world.x, world.tenant_b)):
            assert_problem(api.get(f"/admin/tenants/{tenant}", headers=customer.auth), 403)
            assert_problem(api.patch(f"/admin/tenants/{tenant}", json={"tax_rate_bp": 1}, headers=customer.auth), 403)
        assert_problem(api.get(f"/admin/tenants/{world.tenant_b}", headers=tenant_header(world.tenant_b)), 401)
        assert assert_ok(api.get(f"/admin/tenants/{TENANT_A}", headers=world.admin.auth))["tax_rate_bp"] != 1


def stock(api: httpx.Client, admin: Actor, sku: str, units: int) -> dict[str, Any]:
    """Set `sku`'s stock in the default warehouse, once inventory knows the SKU (from the catalog's event)."""
    def set_it() -> dict[str, Any] | None:
        response = api.put(f"/inventory/{sku}/warehouses/default", headers=admin.auth,
                           json={"set": units, "reason": "isolation test"})
        return assert_ok(response) if response.status_code != 404 else None
    return eventually(set_it, timeout=60, what=f"inventory to know {sku}")


def sku_of(catalog: Catalog) -> str:
    return str(catalog.product["variants"][0]["sku"])


def added(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


class TestStockStaysInItsTenant:
    def test_another_tenants_admin_cannot_see_or_change_this_tenants_stock(self, world: World) -> None:
        api, sku_a = world.api, sku_of(world.catalog_a)
        stock(api, world.admin, sku_a, 7)
        assert assert_ok(api.get(f"/inventory/{sku_a}"))["available"] == 7  # control: anonymous of A
        # B's admin: A's SKU does not exist in B, whatever B's admin tries.
        assert_problem(api.put(f"/inventory/{sku_a}/warehouses/default", headers=world.b_admin.auth,
                               json={"set": 1000, "reason": "cross-tenant"}), 404)
        assert_problem(api.get(f"/inventory/{sku_a}/ledger", headers=world.b_admin.auth), 404)
        seen_by_b = api.get(f"/inventory/{sku_a}", headers=world.b_admin.auth)
        assert seen_by_b.status_code == 404 or seen_by_b.json()["available"] == 0, seen_by_b.text
        batch = assert_ok(api.get("/inventory", params={"sku": sku_a}, headers=tenant_header(world.tenant_b)))
        assert batch["items"][0]["available"] == 0
        crossed = {**world.admin.auth, **tenant_header(world.tenant_b)}
        assert_problem(api.put(f"/inventory/{sku_a}/warehouses/default", headers=crossed,
                               json={"set": 1000, "reason": "tampered header"}), 403)
        warehouses_b = assert_ok(api.get("/inventory/warehouses", headers=world.b_admin.auth))["items"]
        code = f"iso-{uuid.uuid4().hex[:6]}"
        assert_ok(api.post("/inventory/warehouses", headers=world.admin.auth,
                           json={"code": code, "name": "Isolation", "priority": 9}), 201)
        after_b = assert_ok(api.get("/inventory/warehouses", headers=world.b_admin.auth))["items"]
        assert after_b == warehouses_b and code not in {w["code"] for w in after_b}
        # Customers are not admins: no per-warehouse figures, no writes.
        assert not assert_ok(api.get(f"/inventory/{sku_a}", headers=world.x.auth)).get("warehouses")
        assert_problem(api.put(f"/inventory/{sku_a}/warehouses/default", headers=world.x.auth,
                               json={"set": 1000, "reason": "customer"}), 403)
        assert assert_ok(api.get(f"/inventory/{sku_a}"))["available"] == 7


class TestCartsArePrivate:
    def test_a_guest_cart_id_is_worthless_in_another_tenant_and_to_customers(self, world: World) -> None:
        api, sku_a = world.api, sku_of(world.catalog_a)
        stock(api, world.admin, sku_a, 50)
        guest = added(api.post("/cart/items", json={"sku": sku_a, "quantity": 2}))
        cart_id = guest["id"]
        assert assert_ok(api.get("/cart", headers={"X-Cart-Id": cart_id}))["items"][0]["quantity"] == 2  # control
        # The same id in tenant B, or forged ids: no such cart.
        assert_problem(api.get("/cart", headers={"X-Cart-Id": cart_id, **tenant_header(world.tenant_b)}), 404)
        assert_problem(api.get("/cart", headers={"X-Cart-Id": cart_id[:-2] + "AA"}), 404)
        stock(api, world.b_admin, sku_of(world.catalog_b), 5)
        b_cart = added(api.post("/cart/items", headers={"X-Cart-Id": cart_id, **tenant_header(world.tenant_b)},
                                json={"sku": sku_of(world.catalog_b), "quantity": 1}))
        assert b_cart["id"] != cart_id  # an id unknown to the tenant is never adopted
        # A customer sending the guest's id reads their own cart, not the guest's.
        own = assert_ok(api.get("/cart", headers={**world.y.auth, "X-Cart-Id": cart_id}))
        assert own["id"] != cart_id and all(item["quantity"] != 2 or item["sku"] != sku_a for item in own["items"])
        # Another tenant's customer cannot merge it; the guest's cart is unchanged.
        assert_problem(api.post("/cart/merge", headers=world.b.auth, json={"guest_cart_id": cart_id}), 404)
        assert assert_ok(api.get("/cart", headers={"X-Cart-Id": cart_id}))["items"][0]["quantity"] == 2

    def test_customers_see_only_their_own_cart(self, world: World) -> None:
        api, sku_a = world.api, sku_of(world.catalog_a)
        stock(api, world.admin, sku_a, 50)
        mine = added(api.post("/cart/items", headers=world.x.auth, json={"sku": sku_a, "quantity": 3}))
        assert {(i["sku"], i["quantity"]) for i in mine["items"]} >= {(sku_a, 3)}
        theirs = assert_ok(api.get("/cart", headers=world.y.auth))
        assert (sku_a, 3) not in {(i["sku"], i["quantity"]) for i in theirs["items"]}
        assert_problem(api.get("/cart", headers={**world.x.auth, **tenant_header(world.tenant_b)}), 403)
        # Y removing that SKU touches Y's cart only (whatever Y is answered), never X's.
        api.delete(f"/cart/items/{sku_a}", headers=world.y.auth)
        assert {(i["sku"], i["quantity"]) for i in assert_ok(api.get("/cart", headers=world.x.auth))["items"]} \
            >= {(sku_a, 3)}
        assert_ok(api.delete(f"/cart/items/{sku_a}", headers=world.x.auth))


class TestCouponsStayInTheirTenant:
    def test_a_coupon_of_one_tenant_does_not_exist_in_another(self, world: World) -> None:
        api = world.api
        code = f"ISO{uuid.uuid4().hex[:6]}".upper()
        assert_ok(api.post("/coupons", headers=world.admin.auth, json={
            "code": code, "kind": "fixed", "value": 100, "min_subtotal": 0, "usage_limit": 10,
            "once_per_customer": False}), 201)
        assert code in {c["code"] for c in assert_ok(api.get("/coupons", headers=world.admin.auth))["items"]}
        assert code not in {c["code"] for c in assert_ok(api.get("/coupons", headers=world.b_admin.auth))["items"]}
        assert_problem(api.patch(f"/coupons/{code}", headers=world.b_admin.auth, json={"value": 99_999}), 404)
        assert_problem(api.delete(f"/coupons/{code}", headers=world.b_admin.auth), 404)
        assert_problem(api.get("/coupons", headers=world.x.auth), 403)
        assert_problem(api.post("/coupons", headers=world.x.auth, json={
            "code": f"{code}X", "kind": "fixed", "value": 100, "min_subtotal": 0, "usage_limit": 1,
            "once_per_customer": False}), 403)
        stock(api, world.b_admin, sku_of(world.catalog_b), 5)
        added(api.post("/cart/items", headers=world.b.auth, json={"sku": sku_of(world.catalog_b), "quantity": 1}))
        refused = assert_problem(api.post("/cart/coupon", headers=world.b.auth, json={"code": code}), 422)
        assert refused["type"].endswith("/coupon-not-found")
        coupon = next(c for c in assert_ok(api.get("/coupons", headers=world.admin.auth))["items"] if c["code"] == code)
        assert coupon["value"] == 100
