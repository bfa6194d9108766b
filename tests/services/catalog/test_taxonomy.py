"""The category tree and its attribute definitions: breadcrumbs on categories and products (kept
through renames and moves, with the products republished), and product attributes held to the
definitions of their category and its ancestors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from amazonlite.services.catalog import demo
from amazonlite.services.catalog.app import SERVICE
from amazonlite.services.catalog.attributes import check, effective
from tests.services.catalog.factories import admin, anonymous, assert_problem, count_products, outbox, product_body
from tests.support.harness import running_service

CATEGORIES = "/api/v1/categories"
PRODUCTS = "/api/v1/products"

BOOK_ATTRIBUTES = [
    {"key": "author", "label": "Author", "type": "text", "required": True},
    {"key": "pages", "label": "Pages", "type": "number"},
    {"key": "binding", "label": "Binding", "type": "one_of", "options": ["Hardcover", "Paperback"]},
    {"key": "illustrated", "label": "Illustrated", "type": "boolean"},
    {"key": "tags", "label": "Tags", "type": "text", "multiple": True},
]


def crumbs(*categories: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": c["id"], "name": c["name"], "slug": c["slug"]} for c in categories]


async def make(api: Any, name: str, **extra: Any) -> dict[str, Any]:
    response = await api.post(CATEGORIES, json={"name": name, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


class TestBreadcrumbs:
    async def test_renames_and_moves_rewrite_the_subtree_and_republish_its_products(
            self, any_database_url: str, tmp_path: Path) -> None:
        async with (running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as api,
                    anonymous(svc) as public):
            books = await make(api, "Books")
            fiction = await make(api, "Fiction", parent_id=books["id"])
            crime = await make(api, "Crime", parent_id=fiction["id"])
            other = await make(api, "Other")
            assert crime["breadcrumbs"] == crumbs(books, fiction, crime)
            novel = (await api.post(PRODUCTS, json=product_body(name="A Novel", category_id=crime["id"]))).json()
            elsewhere = (await api.post(PRODUCTS, json=product_body(name="Elsewhere",
                                                                    category_id=other["id"]))).json()
            assert novel["breadcrumbs"] == crumbs(books, fiction, crime)
            assert (await public.get(f"{PRODUCTS}/{novel['id']}")).json()["breadcrumbs"] == novel["breadcrumbs"]
            seen = len(await outbox(svc))

            renamed = (await api.patch(f"{CATEGORIES}/{books['id']}", json={"name": "All Books",
                                                                            "slug": "all-books"})).json()
            assert renamed["breadcrumbs"] == crumbs(renamed)
            fiction = (await public.get(f"{CATEGORIES}/{fiction['id']}")).json()
            crime = (await public.get(f"{CATEGORIES}/{crime['id']}")).json()
            assert crime["breadcrumbs"] == crumbs(renamed, fiction, crime)
            shown = (await public.get(f"{PRODUCTS}/{novel['id']}")).json()  # read (and cached) before the rename
            assert shown["breadcrumbs"] == crumbs(renamed, fiction, crime)
            republished = (await outbox(svc))[seen:]
            assert [e["aggregate_id"] for e in republished] == [novel["id"]]  # not the product elsewhere
            assert [c["name"] for c in republished[0]["payload"]["category_path"]] == ["All Books", "Fiction", "Crime"]

            moved = await api.patch(f"{CATEGORIES}/{fiction['id']}", json={"parent_id": other["id"]})
            assert moved.status_code == 200, moved.text
            crime = (await public.get(f"{CATEGORIES}/{crime['id']}")).json()
            assert crime["breadcrumbs"] == crumbs(other, fiction, crime)
            assert (await public.get(f"{PRODUCTS}/{novel['id']}")).json()["breadcrumbs"] == crime["breadcrumbs"]
            listed = (await public.get(PRODUCTS, params={"category": other["id"]})).json()["items"]
            assert sorted(p["id"] for p in listed) == sorted([novel["id"], elsewhere["id"]])
            assert {p["id"]: p["breadcrumbs"] for p in listed}[novel["id"]] == crime["breadcrumbs"]

            to_root = await api.patch(f"{CATEGORIES}/{fiction['id']}", json={"parent_id": None})
            assert to_root.json()["breadcrumbs"] == crumbs(fiction)
            last = [e for e in await outbox(svc) if e["aggregate_id"] == novel["id"]][-1]["payload"]
            assert [c["name"] for c in last["category_path"]] == ["Fiction", "Crime"]

    async def test_a_category_cannot_move_under_itself_or_below_and_an_unknown_one_is_404(
            self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api:
            top = await make(api, "Top")
            child = await make(api, "Child", parent_id=top["id"])
            assert_problem(await api.patch(f"{CATEGORIES}/{top['id']}", json={"parent_id": child["id"]}),
                           422, "invalid-category-parent")
            assert (await api.get(f"{CATEGORIES}/{child['id']}")).json()["breadcrumbs"] == crumbs(top, child)
            assert_problem(await api.get(f"{CATEGORIES}/{'0' * 8}-0000-0000-0000-{'0' * 12}"), 404,
                           "category-not-found")


class TestAttributeDefinitions:
    async def test_products_are_held_to_their_categorys_and_its_ancestors_definitions(
            self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as api:
            books = await make(api, "Books", attributes=BOOK_ATTRIBUTES)
            comics = await make(api, "Comics", parent_id=books["id"], attributes=[
                {"key": "illustrated", "label": "Illustrated", "type": "boolean", "required": True},
                {"key": "artist", "label": "Artist", "type": "text"}])
            assert [d["key"] for d in comics["attributes"]] == ["illustrated", "artist"]
            assert comics["attributes"][1] == {"key": "artist", "label": "Artist", "type": "text", "options": [],
                                               "multiple": False, "required": False}

            def body(attributes: dict[str, Any], category: dict[str, Any] = books) -> dict[str, Any]:
                return product_body(name="A Book", category_id=category["id"], attributes=attributes)

            good = {"author": "Meera V", "pages": 320, "binding": "Paperback", "illustrated": False,
                    "tags": ["family", "monsoon"]}
            created = await api.post(PRODUCTS, json=body(good))
            assert created.status_code == 201, created.text
            assert created.json()["attributes"] == good

            for attributes, attribute in [
                ({**good, "colour": "red"}, "colour"),                 # not defined
                ({**good, "pages": "many"}, "pages"),                  # a number
                ({**good, "pages": True}, "pages"),                    # a boolean is no number
                ({**good, "binding": "Spiral"}, "binding"),            # not one of the options
                ({**good, "illustrated": "yes"}, "illustrated"),       # a boolean
                ({**good, "tags": "family"}, "tags"),                  # a list
                ({**good, "author": ["A", "B"]}, "author"),            # one value
                ({"pages": 10}, "author"),                             # required
            ]:
                problem = assert_problem(await api.post(PRODUCTS, json=body(attributes)), 422, "invalid-attribute")
                assert problem["attribute"] == attribute, problem
                assert repr(attribute) in problem["detail"]
            assert await count_products(svc) == 1  # nothing written by a refused one

            # A subcategory's products carry its ancestors' attributes too; the nearer definition wins.
            unsaid = {key: value for key, value in good.items() if key != "illustrated"}
            assert (await api.post(PRODUCTS, json=body(unsaid))).status_code == 201  # optional in Books
            problem = assert_problem(await api.post(PRODUCTS, json=body(unsaid, comics)), 422, "invalid-attribute")
            assert problem["attribute"] == "illustrated"  # required in Comics
            comic = await api.post(PRODUCTS, json=body({**good, "illustrated": True, "artist": "Ravi"}, comics))
            assert comic.status_code == 201, comic.text

            # A move into a category with definitions checks the attributes the product has.
            free = await make(api, "Free")
            loose = (await api.post(PRODUCTS, json=body({"anything": "goes"}, free))).json()
            problem = assert_problem(await api.patch(f"{PRODUCTS}/{loose['id']}", json={"category_id": books["id"]}),
                                     422, "invalid-attribute")
            assert problem["attribute"] == "anything"
            moved = await api.patch(f"{PRODUCTS}/{loose['id']}", json={
                "category_id": books["id"], "attributes": {"author": "Someone"}})
            assert moved.status_code == 200, moved.text
            # A change of something else leaves the attributes unchecked (definitions apply to writes of them).
            await api.patch(f"{CATEGORIES}/{books['id']}", json={"attributes": [
                *BOOK_ATTRIBUTES, {"key": "isbn", "label": "ISBN", "type": "text", "required": True}]})
            assert (await api.patch(f"{PRODUCTS}/{loose['id']}", json={"name": "Renamed"})).status_code == 200
            assert_problem(await api.patch(f"{PRODUCTS}/{loose['id']}", json={"attributes": {"author": "X"}}),
                           422, "invalid-attribute")

    async def test_bad_definitions_are_422(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api:
            for attributes in (
                [{"key": "size", "label": "Size", "type": "one_of"}],                            # no options
                [{"key": "size", "label": "Size", "type": "text", "options": ["S"]}],            # options, not one_of
                [{"key": "size", "label": "Size", "type": "one_of", "options": ["S", "S"]}],     # an option twice
                [{"key": "size", "label": "Size", "type": "text"}] * 2,                          # a key twice
                [{"key": "Size Chart", "label": "Size", "type": "text"}],                        # not an identifier
                [{"key": "size", "label": "Size", "type": "colour"}],                            # no such type
                [{"key": "size", "label": "Size", "type": "text", "required": "yes"}],           # not a boolean
            ):
                assert_problem(await api.post(CATEGORIES, json={"name": "Shirts", "attributes": attributes}), 422)
            shirts = await make(api, "Shirts")
            assert_problem(await api.patch(f"{CATEGORIES}/{shirts['id']}", json={"attributes": None}), 422)
            assert (await api.get(CATEGORIES)).json()["items"] == [shirts]

    def test_the_demo_catalog_follows_its_own_definitions(self) -> None:
        for product in demo.PRODUCTS:
            check(product.attributes, effective([demo.ATTRIBUTE_DEFINITIONS.get(product.category, ())]),
                  category=product.category)
        assert demo.ATTRIBUTE_DEFINITIONS  # the demo shows definitions in use
