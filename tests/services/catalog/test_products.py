from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from amazonlite.services.catalog.app import SERVICE
from amazonlite.services.catalog.repository import ProductRepository
from tests.services.catalog.factories import (
    admin,
    anonymous,
    assert_problem,
    count_products,
    customer,
    outbox,
    product_body,
    variant,
)
from tests.support.harness import running_service


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


class TestProductLifecycle:
    async def test_admin_creates_lists_filters_sorts_updates_and_deletes(
            self, any_database_url: str, tmp_path: Path) -> None:
        async with (running_service(SERVICE, any_database_url, tmp_path) as svc,
                    admin(svc) as api, anonymous(svc) as public):
            cameras = (await api.post("/api/v1/categories", json={"name": "Cameras"})).json()
            mirrorless = (await api.post("/api/v1/categories",
                                         json={"name": "Mirrorless", "parent_id": cameras["id"]})).json()
            lumo = (await api.post("/api/v1/brands", json={"name": "Lumo"})).json()
            zeiko = (await api.post("/api/v1/brands", json={"name": "Zeiko"})).json()

            created = await api.post("/api/v1/products", json=product_body(
                name="Lumo M10 Mirrorless Camera", category_id=mirrorless["id"], brand_id=lumo["id"],
                variants=[variant(sku="M10-BODY", price=5_499_900, options={"kit": "Body only"}),
                          variant(sku="M10-KIT", price=6_299_900, options={"kit": "With 18-55 mm"})]))
            assert created.status_code == 201, created.text
            m10 = created.json()
            compact = (await api.post("/api/v1/products", json=product_body(
                name="Zeiko Z2 Compact Camera", category_id=cameras["id"], brand_id=zeiko["id"],
                sku="Z2", price=2_099_900))).json()
            draft = (await api.post("/api/v1/products", json=product_body(
                name="Lumo M20 Prototype", brand_id=lumo["id"], sku="M20", price=9_999_900,
                status="draft"))).json()

            shown = (await public.get(f"/api/v1/products/{m10['id']}")).json()
            assert shown == m10
            assert shown["slug"] == "lumo-m10-mirrorless-camera"
            assert shown["brand"] == {"id": lumo["id"], "name": "Lumo"}
            assert shown["category"] == {"id": mirrorless["id"], "name": "Mirrorless"}
            assert shown["attributes"] == {"material": "mesh", "sizes": ["UK 8", "UK 9"]}
            assert shown["media"] == [{"url": "https://images.amazonlite.dev/test/1.jpg",
                                       "alt": "Lumo M10 Mirrorless Camera"}]
            assert shown["variants"] == [
                {"sku": "M10-BODY", "name": "M10-BODY", "options": {"kit": "Body only"},
                 "price": {"amount": 5_499_900, "currency": "INR"}, "compare_at_price": None},
                {"sku": "M10-KIT", "name": "M10-KIT", "options": {"kit": "With 18-55 mm"},
                 "price": {"amount": 6_299_900, "currency": "INR"}, "compare_at_price": None},
            ]
            assert shown["rating"] == {"average": None, "count": 0}
            assert shown["status"] == "active"

            listing = "/api/v1/products"
            assert ids(await public.get(listing)) == [compact["id"], m10["id"]]  # newest first, no draft
            assert ids(await public.get(listing, params={"category": cameras["id"]})) == [
                compact["id"], m10["id"]]  # a category includes its subcategories
            assert ids(await public.get(listing, params={"category": mirrorless["id"]})) == [m10["id"]]
            assert ids(await public.get(listing, params={"brand": lumo["id"]})) == [m10["id"]]
            assert ids(await public.get(listing, params={"min_price": 3_000_000})) == [m10["id"]]
            assert ids(await public.get(listing, params={"max_price": 3_000_000})) == [compact["id"]]
            assert ids(await public.get(listing, params={"min_price": 2_099_900, "max_price": 5_499_900,
                                                         "brand": zeiko["id"]})) == [compact["id"]]
            assert ids(await public.get(listing, params={"sort": "price_asc"})) == [compact["id"], m10["id"]]
            assert ids(await public.get(listing, params={"sort": "price_desc"})) == [m10["id"], compact["id"]]
            assert ids(await public.get(listing, params={"sort": "name"})) == [m10["id"], compact["id"]]
            assert ids(await api.get(listing, params={"status": "draft"})) == [draft["id"]]
            assert ids(await public.get(listing, params={"category": str(uuid.uuid4())})) == []

            updated = await api.patch(f"/api/v1/products/{m10['id']}", json={
                "name": "Lumo M10 II", "category_id": None,
                "variants": [variant(sku="M10-KIT", price=5_999_900, name="Kit"),
                             variant(sku="M10-TWIN", price=1_999_900, name="Twin lens")],
            })
            assert updated.status_code == 200, updated.text
            changed = updated.json()
            assert changed["name"] == "Lumo M10 II"
            assert changed["slug"] == "lumo-m10-mirrorless-camera"  # a slug stays put unless given
            assert changed["category"] is None
            assert changed["brand"] == {"id": lumo["id"], "name": "Lumo"}
            assert [(v["sku"], v["name"], v["price"]["amount"]) for v in changed["variants"]] == [
                ("M10-KIT", "Kit", 5_999_900), ("M10-TWIN", "Twin lens", 1_999_900)]
            assert changed["updated_at"] > m10["updated_at"]
            assert (await public.get(f"/api/v1/products/{m10['id']}")).json() == changed
            # the lowest price follows the new variants
            assert ids(await public.get(listing, params={"sort": "price_asc"})) == [m10["id"], compact["id"]]
            assert ids(await public.get(listing, params={"category": cameras["id"]})) == [compact["id"]]

            assert (await api.delete(f"/api/v1/products/{compact['id']}")).status_code == 204
            assert_problem(await public.get(f"/api/v1/products/{compact['id']}"), 404, "product-not-found")
            assert_problem(await api.delete(f"/api/v1/products/{compact['id']}"), 404)
            assert ids(await public.get(listing)) == [m10["id"]]
            # a brand still used is kept; once unused it goes
            assert_problem(await api.delete(f"/api/v1/brands/{lumo['id']}"), 409, "brand-in-use")
            assert (await api.delete(f"/api/v1/brands/{zeiko['id']}")).status_code == 204
            assert_problem(await api.delete(f"/api/v1/categories/{cameras['id']}"), 409, "category-in-use")
            assert (await api.delete(f"/api/v1/categories/{mirrorless['id']}")).status_code == 204
            assert (await api.delete(f"/api/v1/categories/{cameras['id']}")).status_code == 204


class TestSlugs:
    async def test_a_derived_slug_gets_a_suffix_and_a_chosen_one_conflicts(self, sqlite_url: str,
                                                                           tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api:
            slugs = [(await api.post("/api/v1/products", json=product_body(name="Café Crème 500 g"))).json()["slug"]
                     for _ in range(3)]
            assert slugs == ["cafe-creme-500-g", "cafe-creme-500-g-2", "cafe-creme-500-g-3"]
            assert_problem(await api.post("/api/v1/products", json=product_body(slug="cafe-creme-500-g-2")),
                           409, "duplicate-slug")
            chosen = await api.post("/api/v1/products", json=product_body(slug="house-blend"))
            assert chosen.json()["slug"] == "house-blend"
            other = (await api.post("/api/v1/products", json=product_body(name="Other"))).json()
            assert_problem(await api.patch(f"/api/v1/products/{other['id']}", json={"slug": "house-blend"}),
                           409, "duplicate-slug")
            assert (await api.patch(f"/api/v1/products/{other['id']}", json={"slug": "other-2"})).json()["slug"] \
                == "other-2"


class TestDuplicateSku:
    async def test_a_taken_sku_is_409_and_nothing_is_written(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api:
            first = (await api.post("/api/v1/products", json=product_body(sku="TEE-RED-M"))).json()
            events = await outbox(svc)

            body = assert_problem(await api.post("/api/v1/products", json=product_body(
                name="Another tee", variants=[variant(sku="TEE-BLUE-M"), variant(sku="TEE-RED-M")])),
                409, "duplicate-sku")
            assert body["skus"] == ["TEE-RED-M"]
            assert await count_products(svc) == 1
            assert len(await outbox(svc)) == len(events)
            # the other SKU of the refused product was not kept either
            second = await api.post("/api/v1/products", json=product_body(sku="TEE-BLUE-M"))
            assert second.status_code == 201, second.text

            assert_problem(await api.patch(f"/api/v1/products/{second.json()['id']}",
                                           json={"variants": [variant(sku="TEE-RED-M")]}), 409, "duplicate-sku")
            assert (await api.get(f"/api/v1/products/{second.json()['id']}")).json()["variants"][0]["sku"] \
                == "TEE-BLUE-M"
            assert (await api.get(f"/api/v1/products/{first['id']}")).json() == first

    async def test_the_same_sku_twice_in_one_product_is_422(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api:
            response = await api.post("/api/v1/products", json=product_body(
                variants=[variant(sku="A-1"), variant(sku="A-1", price=10)]))
            assert_problem(response, 422, "validation-error")
            assert await count_products(svc) == 0

    async def test_a_race_past_the_check_is_still_409(self, sqlite_url: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api:
            await api.post("/api/v1/products", json=product_body(sku="RACE-1"))

            async def nothing_taken(*_args: Any, **_kwargs: Any) -> list[str]:
                return []  # as if the other request committed just after our check

            monkeypatch.setattr(ProductRepository, "skus_taken", nothing_taken)
            assert_problem(await api.post("/api/v1/products", json=product_body(sku="RACE-1")), 409, "duplicate-sku")
            assert await count_products(svc) == 1


class TestVariantReplacement:
    async def test_a_reappearing_sku_keeps_its_row_and_the_rest_are_replaced(self, sqlite_url: str,
                                                                            tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api:
            product = (await api.post("/api/v1/products", json=product_body(
                variants=[variant(sku="P-S"), variant(sku="P-M"), variant(sku="P-L")]))).json()
            response = await api.patch(f"/api/v1/products/{product['id']}", json={
                "variants": [variant(sku="P-XL", price=1), variant(sku="P-M", price=2)]})
            assert [(v["sku"], v["price"]["amount"]) for v in response.json()["variants"]] == [("P-XL", 1), ("P-M", 2)]
            # a removed SKU is free again for another product
            assert (await api.post("/api/v1/products", json=product_body(sku="P-S"))).status_code == 201


class TestValidation:
    async def test_bad_bodies_are_422_problems(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api:
            bad_bodies = [
                product_body(variants=[]),
                product_body(variants=[variant(sku="X-1", currency="INR"), variant(sku="X-2", currency="USD")]),
                product_body(variants=[variant(sku="X-1", price=-1)]),
                product_body(variants=[variant(sku="X-1", currency="inr")]),
                product_body(variants=[variant(sku="-leading-dash")]),
                product_body(variants=[variant(sku=f"V-{i}") for i in range(101)]),
                product_body(name="x" * 201),
                product_body(description="x" * 10_001),
                product_body(status="published"),
                product_body(media=[{"url": "ftp://example.com/a.jpg", "alt": ""}]),
                product_body(media=[{"url": f"https://example.com/{i}.jpg"} for i in range(21)]),
                product_body(attributes={f"k{i}": i for i in range(51)}),
                product_body(attributes={"nested": {"not": "allowed"}}),
                product_body(unknown_field=True),
                {**product_body(), "variants": [{**variant(sku="X-1"), "price": {"amount": "100", "currency": "INR"}}]},
            ]
            for body in bad_bodies:
                assert_problem(await api.post("/api/v1/products", json=body), 422)
            product = (await api.post("/api/v1/products", json=product_body())).json()
            for patch in ({"name": None}, {"variants": None}, {"status": "gone"}, {"sku": "X"}):
                assert_problem(await api.patch(f"/api/v1/products/{product['id']}", json=patch), 422)
            assert await count_products(svc) == 1

    async def test_unknown_category_or_brand_is_422(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api:
            assert_problem(await api.post("/api/v1/products", json=product_body(category_id=str(uuid.uuid4()))),
                           422, "unknown-category")
            assert_problem(await api.post("/api/v1/products", json=product_body(brand_id=str(uuid.uuid4()))),
                           422, "unknown-brand")
            product = (await api.post("/api/v1/products", json=product_body())).json()
            assert_problem(await api.patch(f"/api/v1/products/{product['id']}",
                                           json={"brand_id": str(uuid.uuid4())}), 422, "unknown-brand")
            assert await count_products(svc) == 1

    async def test_bad_query_and_path_parameters_are_problems(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, anonymous(svc) as api:
            assert_problem(await api.get("/api/v1/products/not-a-uuid"), 422, "validation-error")
            assert_problem(await api.get("/api/v1/products", params={"sort": "popular"}), 422)
            assert_problem(await api.get("/api/v1/products", params={"limit": 0}), 422)
            assert_problem(await api.get("/api/v1/products", params={"limit": 101}), 422)
            assert_problem(await api.get("/api/v1/products", params={"min_price": -1}), 422)
            assert_problem(await api.get("/api/v1/products", params={"category": "books"}), 422)
            assert_problem(await api.get("/api/v1/products", params={"min_price": 10, "max_price": 5}),
                           422, "invalid-price-range")
            for cursor in ("%%%not-a-cursor", "bm90IGpzb24", "WzEsMiwzXQ", "WyJuYW1lIiwxLCJ4Il0"):
                assert_problem(await api.get("/api/v1/products", params={"cursor": cursor}), 400, "invalid-cursor")


def _walk_expected(products: list[dict[str, Any]], sort: str) -> list[str]:
    def price(p: dict[str, Any]) -> int:
        return min(v["price"]["amount"] for v in p["variants"])

    def key(p: dict[str, Any]) -> tuple[Any, uuid.UUID]:
        value: Any = {"newest": lambda: dt.datetime.fromisoformat(p["created_at"]),
                      "name": lambda: p["name"]}.get(sort, lambda: price(p))()
        return value, uuid.UUID(p["id"])

    return [p["id"] for p in sorted(products, key=key, reverse=sort in ("newest", "price_desc"))]


class TestCursorPagination:
    # Lowercase ASCII words sort alike under every database's collation; repeats test the id tie-break.
    WORDS = ["quartz", "amber", "lotus", "amber", "cedar", "zinnia", "maple", "lotus", "birch", "fern",
             "amber", "olive", "cedar", "dahlia", "ivy", "jasmine", "kale", "lotus", "nutmeg", "pepper",
             "quince", "rose", "sage", "thyme", "umber"]

    async def test_every_sort_walks_all_pages_without_duplicates_or_gaps(
            self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            async with admin(svc) as api:
                products = []
                for i, word in enumerate(self.WORDS):
                    response = await api.post("/api/v1/products", json=product_body(
                        name=word, sku=f"PG-{i}", price=(i % 4) * 50_000))  # repeated prices too
                    assert response.status_code == 201, response.text
                    products.append(response.json())
                await api.post("/api/v1/products", json=product_body(name="hidden", sku="PG-D", status="draft"))
            async with customer(svc) as shopper:
                for sort in ("newest", "price_asc", "price_desc", "name"):
                    seen: list[str] = []
                    cursor = None
                    pages = 0
                    while True:
                        params: dict[str, Any] = {"sort": sort, "limit": 7}
                        if cursor:
                            params["cursor"] = cursor
                        page = (await shopper.get("/api/v1/products", params=params)).json()
                        pages += 1
                        seen += [item["id"] for item in page["items"]]
                        cursor = page["next_cursor"]
                        if cursor is None:
                            break
                    assert pages == 4, sort
                    assert seen == _walk_expected(products, sort), sort

                first = (await shopper.get("/api/v1/products", params={"sort": "name", "limit": 7})).json()
                assert_problem(await shopper.get("/api/v1/products", params={
                    "sort": "price_asc", "cursor": first["next_cursor"]}), 400, "invalid-cursor")
                assert_problem(await shopper.get("/api/v1/products", params={"cursor": first["next_cursor"]}),
                               400, "invalid-cursor")

    async def test_an_exactly_full_last_page_has_no_next_cursor(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            async with admin(svc) as api:
                for i in range(4):
                    await api.post("/api/v1/products", json=product_body(sku=f"F-{i}"))
                first = (await api.get("/api/v1/products", params={"limit": 2})).json()
                second = (await api.get("/api/v1/products", params={"limit": 2, "cursor": first["next_cursor"]})).json()
            assert len(second["items"]) == 2
            assert second["next_cursor"] is None


class TestVisibility:
    async def test_customers_and_anonymous_callers_see_only_active_products(self, sqlite_url: str,
                                                                            tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            async with admin(svc) as api:
                live = (await api.post("/api/v1/products", json=product_body(name="Live"))).json()
                draft = (await api.post("/api/v1/products", json=product_body(name="Draft", status="draft"))).json()
                archived = (await api.post("/api/v1/products", json=product_body(name="Old", status="archived"))
                            ).json()
                assert (await api.get(f"/api/v1/products/{draft['id']}")).status_code == 200
                assert ids(await api.get("/api/v1/products", params={"status": "archived"})) == [archived["id"]]
                assert ids(await api.get("/api/v1/products")) == [live["id"]]
            for client in (customer(svc), anonymous(svc)):
                async with client as viewer:
                    assert ids(await viewer.get("/api/v1/products")) == [live["id"]]
                    for hidden in (draft, archived):
                        assert_problem(await viewer.get(f"/api/v1/products/{hidden['id']}"), 404)
                    assert_problem(await viewer.get("/api/v1/products", params={"status": "draft"}),
                                   403, "status-filter-forbidden")
                    assert ids(await viewer.get("/api/v1/products", params={"status": "active"})) == [live["id"]]


class TestWritesNeedAnAdmin:
    async def test_anonymous_is_401_and_customer_is_403_and_nothing_changes(self, sqlite_url: str,
                                                                           tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            async with admin(svc) as api:
                product = (await api.post("/api/v1/products", json=product_body(sku="KEEP-1"))).json()
                category = (await api.post("/api/v1/categories", json={"name": "Kept"})).json()
                brand = (await api.post("/api/v1/brands", json={"name": "Kept"})).json()
            events = len(await outbox(svc))
            attempts = [
                ("POST", "/api/v1/products", product_body(sku="NOPE-1")),
                ("PATCH", f"/api/v1/products/{product['id']}", {"name": "Hacked"}),
                ("DELETE", f"/api/v1/products/{product['id']}", None),
                ("POST", "/api/v1/categories", {"name": "Nope"}),
                ("PATCH", f"/api/v1/categories/{category['id']}", {"name": "Nope"}),
                ("DELETE", f"/api/v1/categories/{category['id']}", None),
                ("POST", "/api/v1/brands", {"name": "Nope"}),
                ("PATCH", f"/api/v1/brands/{brand['id']}", {"name": "Nope"}),
                ("DELETE", f"/api/v1/brands/{brand['id']}", None),
            ]
            for client, status in ((anonymous(svc), 401), (customer(svc), 403)):
                async with client as caller:
                    for method, url, body in attempts:
                        assert_problem(await caller.request(method, url, json=body), status)
            async with svc.anonymous_client_without_token() as stranger:
                assert_problem(await stranger.get("/api/v1/products"), 401)
            async with anonymous(svc) as public:
                assert (await public.get(f"/api/v1/products/{product['id']}")).json() == product
                assert [c["name"] for c in (await public.get("/api/v1/categories")).json()["items"]] == ["Kept"]
                assert [b["name"] for b in (await public.get("/api/v1/brands")).json()["items"]] == ["Kept"]
            assert await count_products(svc) == 1
            assert len(await outbox(svc)) == events

    async def test_a_platform_admin_may_write(self, sqlite_url: str, tmp_path: Path) -> None:
        async with (running_service(SERVICE, sqlite_url, tmp_path) as svc,
                    svc.client(user_id=uuid.uuid4(), roles=("platform_admin",)) as api):
            assert (await api.post("/api/v1/products", json=product_body())).status_code == 201


class TestTenantIsolation:
    async def test_another_tenants_product_is_invisible_and_unmodifiable(self, sqlite_url: str,
                                                                         tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            async with admin(svc, tenant="acme") as acme:
                brand = (await acme.post("/api/v1/brands", json={"name": "Acme"})).json()
                category = (await acme.post("/api/v1/categories", json={"name": "Anvils"})).json()
                product = (await acme.post("/api/v1/products", json=product_body(
                    name="Anvil", sku="ANVIL-1", brand_id=brand["id"], category_id=category["id"]))).json()
            async with admin(svc, tenant="globex") as globex:
                url = f"/api/v1/products/{product['id']}"
                assert_problem(await globex.get(url), 404)
                assert_problem(await globex.patch(url, json={"name": "Stolen"}), 404)
                assert_problem(await globex.delete(url), 404)
                assert ids(await globex.get("/api/v1/products")) == []
                assert ids(await globex.get("/api/v1/products", params={"status": "draft"})) == []
                assert (await globex.get("/api/v1/categories")).json()["items"] == []
                assert (await globex.get("/api/v1/brands")).json()["items"] == []
                assert_problem(await globex.patch(f"/api/v1/brands/{brand['id']}", json={"name": "X"}), 404)
                assert_problem(await globex.delete(f"/api/v1/categories/{category['id']}"), 404)
                assert_problem(await globex.post("/api/v1/products", json=product_body(brand_id=brand["id"])),
                               422, "unknown-brand")
                # SKUs and slugs are unique per tenant only
                twin = await globex.post("/api/v1/products", json=product_body(name="Anvil", sku="ANVIL-1"))
                assert twin.status_code == 201, twin.text
                assert twin.json()["slug"] == "anvil"
            async with anonymous(svc, tenant="acme") as public:
                assert (await public.get(f"/api/v1/products/{product['id']}")).json() == product
                assert ids(await public.get("/api/v1/products")) == [product["id"]]


class TestQueryCount:
    async def test_reads_use_a_fixed_number_of_queries(self, sqlite_url: str, tmp_path: Path) -> None:
        from sqlalchemy import event

        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            async with admin(svc) as api:
                brand = (await api.post("/api/v1/brands", json={"name": "B"})).json()
                category = (await api.post("/api/v1/categories", json={"name": "C"})).json()
                created = [(await api.post("/api/v1/products", json=product_body(
                    sku=f"Q-{i}", brand_id=brand["id"], category_id=category["id"],
                    variants=[variant(sku=f"Q-{i}-{n}") for n in range(3)]))).json() for i in range(12)]
            statements: list[str] = []

            def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
                if "outbox" not in statement:  # the relay polls the same engine
                    statements.append(statement)

            event.listen(svc.runtime.db.engine.sync_engine, "before_cursor_execute", record)
            async with anonymous(svc) as public:
                await public.get(f"/api/v1/products/{created[0]['id']}")
                one = len(statements)
                statements.clear()
                await public.get("/api/v1/products", params={"limit": 2})
                small = len(statements)
                statements.clear()
                await public.get("/api/v1/products", params={"limit": 12})
                large = len(statements)
            event.remove(svc.runtime.db.engine.sync_engine, "before_cursor_execute", record)
            assert one == 1
            assert small == large == 2


class TestStoredCurrencies:
    async def test_a_price_in_a_code_withdrawn_since_it_was_written_still_reads(
            self, sqlite_url: str, tmp_path: Path) -> None:
        """Writes take only ISO 4217 codes in force; a product written in a code that has been
        withdrawn since (the Croatian kuna, HRK, in 2023) must stay readable, not become a 500."""
        async with (running_service(SERVICE, sqlite_url, tmp_path) as svc,
                    admin(svc) as api, anonymous(svc) as public):
            created = await api.post("/api/v1/products", json=product_body(name="Old Stock", sku="OLD-1"))
            assert created.status_code == 201, created.text
            product_id = created.json()["id"]
            async with svc.runtime.db.engine.begin() as conn:  # as the row was written back then
                await conn.execute(text("UPDATE variants SET currency = 'HRK'"))
                await conn.execute(text("UPDATE products SET currency = 'HRK'"))
            shown = await public.get(f"/api/v1/products/{product_id}")
            assert shown.status_code == 200, shown.text
            assert shown.json()["variants"][0]["price"]["currency"] == "HRK"
            listed = await public.get("/api/v1/products")
            assert listed.status_code == 200 and product_id in ids(listed)
