"""Concurrent writes: the last `product.updated.v1` of a product is always its committed state, and a
unique violation that slipped past our checks is named by the constraint it broke."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from amazonlite.services.catalog import publishing, taxonomy
from amazonlite.services.catalog.app import SERVICE
from amazonlite.services.catalog.repository import BrandRepository, CategoryRepository, ProductRepository
from tests.services.catalog.factories import admin, assert_problem, count_products, outbox, product_body
from tests.support.harness import Harness, running_service

Request = Callable[[], Awaitable[httpx.Response]]


class HeldRequest:
    """Holds the first request that reaches a step of the catalog's service until released, as a
    slow request would. The default step is the brand lookup (`taxonomy.brand_for`), which product
    writes make after reading the product and its category; `publishing.republish` is where a rename
    of a category or brand has locked its products and not yet written their events."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: Any = taxonomy, step: str = "brand_for") -> None:
        self.reached = asyncio.Event()
        self.released = asyncio.Event()
        real = getattr(module, step)

        async def held(*args: Any) -> Any:
            if not self.reached.is_set():
                self.reached.set()
                await self.released.wait()
            return await real(*args)

        monkeypatch.setattr(module, step, held)

    async def race(self, held: Request, other: Request) -> tuple[httpx.Response, httpx.Response]:
        """Start `held`; once it is held, start `other` and give it time to commit (it commits unless
        it has to wait for `held`); then let `held` go on. Both responses, `held` first."""
        first = asyncio.create_task(held())
        await asyncio.wait_for(self.reached.wait(), 10)
        second = asyncio.create_task(other())
        await asyncio.wait({second}, timeout=0.5)
        self.released.set()
        a, b = await asyncio.wait_for(asyncio.gather(first, second), 30)
        return a, b


async def last_event_of(svc: Harness, product_id: str) -> dict[str, Any]:
    events = [e for e in await outbox(svc) if e["aggregate_id"] == product_id]
    return dict(events[-1]["payload"])


class TestConcurrentPatchesOfOneProduct:
    async def test_the_last_event_carries_the_committed_product(self, any_database_url: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as a, admin(svc) as b:
            brand = (await a.post("/api/v1/brands", json={"name": "Kettlecraft"})).json()
            product = (await a.post("/api/v1/products", json=product_body(
                name="Old name", brand_id=brand["id"]))).json()
            url = f"/api/v1/products/{product['id']}"

            held = HeldRequest(monkeypatch)
            first, second = await held.race(
                lambda: a.patch(url, json={"brand_id": None, "description": "From the first request"}),
                lambda: b.patch(url, json={"name": "New name"}))
            assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)

            final = (await a.get(url)).json()
            assert (final["name"], final["description"], final["brand"]) == (
                "New name", "From the first request", None)
            last = await last_event_of(svc, product["id"])
            assert (last["name"], last["description"], last["brand_id"]) == (
                final["name"], final["description"], None)
            names = [e["payload"]["name"] for e in await outbox(svc) if e["aggregate_id"] == product["id"]]
            assert names[-1] == "New name"

    async def test_a_patch_that_changes_nothing_is_still_200(self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as api:
            product = (await api.post("/api/v1/products", json=product_body(name="Same"))).json()
            response = await api.patch(f"/api/v1/products/{product['id']}", json={})
            assert response.status_code == 200, response.text
            assert {k: v for k, v in response.json().items() if k != "updated_at"} == {
                k: v for k, v in product.items() if k != "updated_at"}
            assert (await last_event_of(svc, product["id"]))["name"] == "Same"


class TestCategoryRenameBesideProductWrites:
    async def test_a_product_patched_during_a_rename_ends_with_the_new_name(
            self, any_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as a, admin(svc) as b:
            category = (await a.post("/api/v1/categories", json={"name": "Kettles"})).json()
            brand = (await a.post("/api/v1/brands", json={"name": "Kettlecraft"})).json()
            product = (await a.post("/api/v1/products", json=product_body(
                category_id=category["id"], brand_id=brand["id"]))).json()

            held = HeldRequest(monkeypatch)
            first, second = await held.race(
                lambda: a.patch(f"/api/v1/products/{product['id']}", json={"brand_id": None}),
                lambda: b.patch(f"/api/v1/categories/{category['id']}", json={"name": "Electric Kettles"}))
            assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)

            last = await last_event_of(svc, product["id"])
            assert (last["category_name"], last["brand_id"]) == ("Electric Kettles", None)

    async def test_a_product_moved_into_a_category_during_its_rename_ends_with_the_new_name(
            self, any_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as a, admin(svc) as b:
            category = (await a.post("/api/v1/categories", json={"name": "Kettles"})).json()
            brand = (await a.post("/api/v1/brands", json={"name": "Kettlecraft"})).json()
            product = (await a.post("/api/v1/products", json=product_body(brand_id=brand["id"]))).json()

            held = HeldRequest(monkeypatch)  # holds the move after it has read the category
            first, second = await held.race(
                lambda: a.patch(f"/api/v1/products/{product['id']}",
                                json={"category_id": category["id"], "brand_id": None}),
                lambda: b.patch(f"/api/v1/categories/{category['id']}", json={"name": "Electric Kettles"}))
            assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)

            final = (await a.get(f"/api/v1/products/{product['id']}")).json()
            assert final["category"] == {"id": category["id"], "name": "Electric Kettles"}
            last = await last_event_of(svc, product["id"])
            assert (last["category_id"], last["category_name"]) == (category["id"], "Electric Kettles")


    async def test_a_product_created_in_a_category_during_its_rename_ends_with_the_new_name(
            self, any_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as a, admin(svc) as b:
            category = (await a.post("/api/v1/categories", json={"name": "Kettles"})).json()
            brand = (await a.post("/api/v1/brands", json={"name": "Kettlecraft"})).json()

            held = HeldRequest(monkeypatch)  # holds the creation after it has read the category
            first, second = await held.race(
                lambda: a.post("/api/v1/products", json=product_body(
                    category_id=category["id"], brand_id=brand["id"])),
                lambda: b.patch(f"/api/v1/categories/{category['id']}", json={"name": "Electric Kettles"}))
            assert (first.status_code, second.status_code) == (201, 200), (first.text, second.text)

            last = await last_event_of(svc, first.json()["id"])
            assert (last["category_id"], last["category_name"]) == (category["id"], "Electric Kettles")


class TestRenamesBesideEachOther:
    async def test_renaming_a_products_category_and_brand_at_once_ends_with_both_names(
            self, any_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as a, admin(svc) as b:
            category = (await a.post("/api/v1/categories", json={"name": "Kettles"})).json()
            brand = (await a.post("/api/v1/brands", json={"name": "Kettlecraft"})).json()
            product = (await a.post("/api/v1/products", json=product_body(
                category_id=category["id"], brand_id=brand["id"]))).json()

            held = HeldRequest(monkeypatch, publishing, "republish")  # the category's rename, its product locked
            first, second = await held.race(
                lambda: a.patch(f"/api/v1/categories/{category['id']}", json={"name": "Electric Kettles"}),
                lambda: b.patch(f"/api/v1/brands/{brand['id']}", json={"name": "Kettlecraft Pro"}))
            assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)

            last = await last_event_of(svc, product["id"])
            assert (last["category_name"], last["brand_name"]) == ("Electric Kettles", "Kettlecraft Pro")

    async def test_a_brand_renamed_while_one_of_its_products_moves_to_the_next_brand(
            self, any_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Neighbouring brand ids put the move's new index entry next to the renamed brand's entries
        (on MariaDB, locking the rename's products through that index deadlocked with the move)."""
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as a, admin(svc) as b:
            before = (await a.post("/api/v1/brands", json={"name": "Aardvark"})).json()
            brand = (await a.post("/api/v1/brands", json={"name": "Kettlecraft"})).json()
            stays = (await a.post("/api/v1/products", json=product_body(brand_id=brand["id"]))).json()
            moves = (await a.post("/api/v1/products", json=product_body(brand_id=brand["id"]))).json()

            held = HeldRequest(monkeypatch)
            first, second = await held.race(
                lambda: a.patch(f"/api/v1/products/{moves['id']}", json={"brand_id": before["id"]}),
                lambda: b.patch(f"/api/v1/brands/{brand['id']}", json={"name": "Kettlecraft Pro"}))
            assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)

            assert (await last_event_of(svc, stays["id"]))["brand_name"] == "Kettlecraft Pro"
            moved = await last_event_of(svc, moves["id"])
            assert (moved["brand_id"], moved["brand_name"]) == (before["id"], "Aardvark")


async def _nothing_taken(*_args: Any, **_kwargs: Any) -> Any:
    return False  # as if the other request committed just after our check


class TestUniqueViolationsPastTheChecks:
    async def test_a_slug_holding_the_letters_sku_is_reported_as_a_slug(
            self, any_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as api:
            await api.post("/api/v1/products", json=product_body(slug="sku-socks", sku="SOCK-1"))
            await api.post("/api/v1/categories", json={"name": "Sku", "slug": "sku-bins"})
            await api.post("/api/v1/brands", json={"name": "Sku", "slug": "sku-brand"})
            monkeypatch.setattr(ProductRepository, "slug_taken", _nothing_taken)
            monkeypatch.setattr(CategoryRepository, "slug_taken", _nothing_taken)
            monkeypatch.setattr(BrandRepository, "slug_taken", _nothing_taken)

            assert_problem(await api.post("/api/v1/products", json=product_body(slug="sku-socks", sku="SOCK-2")),
                           409, "duplicate-slug")
            assert await count_products(svc) == 1
            assert_problem(await api.post("/api/v1/categories", json={"name": "Bins", "slug": "sku-bins"}),
                           409, "duplicate-slug")
            assert_problem(await api.post("/api/v1/brands", json={"name": "Other", "slug": "sku-brand"}),
                           409, "duplicate-slug")

    async def test_a_taken_sku_is_reported_as_a_sku(self, any_database_url: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as api:
            await api.post("/api/v1/products", json=product_body(slug="socks", sku="SLUG-1"))

            async def no_skus_taken(*_args: Any, **_kwargs: Any) -> list[str]:
                return []

            monkeypatch.setattr(ProductRepository, "skus_taken", no_skus_taken)
            assert_problem(await api.post("/api/v1/products", json=product_body(slug="slug-socks", sku="SLUG-1")),
                           409, "duplicate-sku")
            assert await count_products(svc) == 1
