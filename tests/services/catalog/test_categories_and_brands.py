from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from amazonlite.services.catalog.app import SERVICE
from tests.services.catalog.factories import admin, anonymous, assert_problem, product_body
from tests.support.harness import running_service


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


class TestCategories:
    async def test_admin_creates_renames_moves_and_deletes_categories(self, sqlite_url: str,
                                                                      tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api:
            home = await api.post("/api/v1/categories", json={"name": "Home & Kitchen"})
            assert home.status_code == 201, home.text
            assert home.json()["slug"] == "home-kitchen"
            assert home.json()["parent_id"] is None
            cookware = (await api.post("/api/v1/categories", json={
                "name": "Cookware", "slug": "pots-and-pans", "parent_id": home.json()["id"]})).json()
            assert cookware["slug"] == "pots-and-pans"
            assert cookware["parent_id"] == home.json()["id"]

            renamed = await api.patch(f"/api/v1/categories/{cookware['id']}", json={"name": "Cookware & Bakeware"})
            assert renamed.status_code == 200, renamed.text
            assert renamed.json()["name"] == "Cookware & Bakeware"
            assert renamed.json()["slug"] == "pots-and-pans"
            moved = await api.patch(f"/api/v1/categories/{cookware['id']}", json={"parent_id": None})
            assert moved.json()["parent_id"] is None

            async with anonymous(svc) as public:
                assert names(await public.get("/api/v1/categories")) == ["Cookware & Bakeware", "Home & Kitchen"]
            assert (await api.delete(f"/api/v1/categories/{cookware['id']}")).status_code == 204
            assert_problem(await api.patch(f"/api/v1/categories/{cookware['id']}", json={"name": "X"}), 404,
                           "category-not-found")
            assert names(await api.get("/api/v1/categories")) == ["Home & Kitchen"]

    async def test_a_chosen_slug_that_is_taken_is_409(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api:
            books = (await api.post("/api/v1/categories", json={"name": "Books"})).json()
            assert_problem(await api.post("/api/v1/categories", json={"name": "Novels", "slug": "books"}),
                           409, "duplicate-slug")
            comics = (await api.post("/api/v1/categories", json={"name": "Comics"})).json()
            assert_problem(await api.patch(f"/api/v1/categories/{comics['id']}", json={"slug": books["slug"]}),
                           409, "duplicate-slug")
            assert names(await api.get("/api/v1/categories")) == ["Books", "Comics"]

    async def test_a_category_cannot_sit_under_itself_or_its_descendants(self, sqlite_url: str,
                                                                         tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api:
            top = (await api.post("/api/v1/categories", json={"name": "Top"})).json()
            mid = (await api.post("/api/v1/categories", json={"name": "Mid", "parent_id": top["id"]})).json()
            low = (await api.post("/api/v1/categories", json={"name": "Low", "parent_id": mid["id"]})).json()
            for parent in (top, low):
                assert_problem(await api.patch(f"/api/v1/categories/{top['id']}", json={"parent_id": parent["id"]}),
                               422, "invalid-category-parent")
            assert_problem(await api.patch(f"/api/v1/categories/{top['id']}", json={"parent_id": str(uuid.uuid4())}),
                           422, "unknown-category")
            assert_problem(await api.post("/api/v1/categories", json={"name": "Orphan",
                                                                     "parent_id": str(uuid.uuid4())}),
                           422, "unknown-category")
            # the tree is unchanged; a sibling move is fine
            assert (await api.patch(f"/api/v1/categories/{low['id']}", json={"parent_id": top["id"]})).json()[
                "parent_id"] == top["id"]

    async def test_a_category_with_products_or_subcategories_is_not_deleted(self, sqlite_url: str,
                                                                           tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api:
            parent = (await api.post("/api/v1/categories", json={"name": "Parent"})).json()
            await api.post("/api/v1/categories", json={"name": "Child", "parent_id": parent["id"]})
            used = (await api.post("/api/v1/categories", json={"name": "Used"})).json()
            await api.post("/api/v1/products", json=product_body(category_id=used["id"]))
            assert_problem(await api.delete(f"/api/v1/categories/{parent['id']}"), 409, "category-in-use")
            assert_problem(await api.delete(f"/api/v1/categories/{used['id']}"), 409, "category-in-use")
            assert names(await api.get("/api/v1/categories")) == ["Child", "Parent", "Used"]

    async def test_listing_pages_by_name(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api:
            wanted = ["alpha", "bravo", "charlie", "delta", "echo"]
            for name in reversed(wanted):
                await api.post("/api/v1/categories", json={"name": name})
            seen: list[str] = []
            cursor = None
            while True:
                params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
                page = (await api.get("/api/v1/categories", params=params)).json()
                seen += [c["name"] for c in page["items"]]
                cursor = page["next_cursor"]
                if not cursor:
                    break
            assert seen == wanted
            assert (await api.get("/api/v1/categories", params={"limit": 5})).json()["next_cursor"] is None
            assert_problem(await api.get("/api/v1/categories", params={"cursor": "garbage"}), 400, "invalid-cursor")


class TestBrands:
    async def test_admin_creates_renames_and_deletes_brands(self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as api:
            created = await api.post("/api/v1/brands", json={"name": "Hearth & Co"})
            assert created.status_code == 201, created.text
            brand = created.json()
            assert brand["slug"] == "hearth-co"
            assert_problem(await api.post("/api/v1/brands", json={"name": "Hearth", "slug": "hearth-co"}),
                           409, "duplicate-slug")
            other = (await api.post("/api/v1/brands", json={"name": "Kosha", "slug": "kosha-living"})).json()
            assert other["slug"] == "kosha-living"

            changed = await api.patch(f"/api/v1/brands/{brand['id']}", json={"name": "Hearth and Co",
                                                                            "slug": "hearth"})
            assert changed.status_code == 200, changed.text
            assert (changed.json()["name"], changed.json()["slug"]) == ("Hearth and Co", "hearth")
            assert_problem(await api.patch(f"/api/v1/brands/{brand['id']}", json={"slug": "kosha-living"}),
                           409, "duplicate-slug")
            assert_problem(await api.patch(f"/api/v1/brands/{brand['id']}", json={"name": None}), 422)
            async with anonymous(svc) as public:
                assert names(await public.get("/api/v1/brands")) == ["Hearth and Co", "Kosha"]

            assert (await api.delete(f"/api/v1/brands/{other['id']}")).status_code == 204
            assert_problem(await api.delete(f"/api/v1/brands/{other['id']}"), 404, "brand-not-found")
            assert names(await api.get("/api/v1/brands")) == ["Hearth and Co"]


class TestDerivedSlugs:
    async def test_a_name_whose_slug_is_taken_gets_the_next_free_one(self, any_database_url: str,
                                                                      tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as api:
            for listing, fallback in (("/api/v1/categories", "category"), ("/api/v1/brands", "brand")):
                made = [await api.post(listing, json={"name": name})
                        for name in ("Café", "Cafe", "CAFE!", "日本", "😀😀", "Ελλάδα")]
                assert [r.status_code for r in made] == [201] * 6, [r.text for r in made]
                assert [r.json()["slug"] for r in made] == [
                    "cafe", "cafe-2", "cafe-3", fallback, f"{fallback}-2", f"{fallback}-3"]
                # a slug the client chose is never renamed: taken means 409
                assert_problem(await api.post(listing, json={"name": "Kaffee", "slug": "cafe-2"}),
                               409, "duplicate-slug")
                # a long name keeps room for the suffix within the 140 characters of a slug
                long = [(await api.post(listing, json={"name": "x" * 120})).json()["slug"] for _ in range(2)]
                assert long[1] == long[0] + "-2"
                assert all(len(slug) <= 140 for slug in long)
