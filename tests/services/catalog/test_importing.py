"""Bulk loads: `amazonlite catalog import FILE` (JSON Lines and CSV, idempotent on SKU, bad lines
reported by number while the rest load) and `amazonlite seed --products N` (a synthetic catalog)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from amazonlite.cli import app
from amazonlite.platform.config import platform_settings
from amazonlite.services.catalog import synthetic
from amazonlite.services.catalog.app import SERVICE
from amazonlite.services.catalog.commands import import_lines, seed_products
from amazonlite.services.catalog.importing import Outcome, UnsupportedFile, read_lines
from tests.e2e.operator import query
from tests.services.catalog.factories import admin, anonymous, outbox
from tests.support.harness import Harness, running_service

PRODUCTS = "/api/v1/products"


def line(name: str, sku: str, *, price: int = 10_000, **extra: Any) -> str:
    return json.dumps({"name": name, "variants": [{"sku": sku, "name": sku,
                                                   "price": {"amount": price, "currency": "INR"}}], **extra})


async def load(svc: Harness, path: Path, *, tenant: str = "default", batch_size: int = 500) -> Outcome:
    return await import_lines(svc.runtime, tenant, read_lines(path), batch_size=batch_size)


async def listed(svc: Harness, *, tenant: str = "default") -> dict[str, dict[str, Any]]:
    async with admin(svc, tenant=tenant) as api:
        items = (await api.get(PRODUCTS, params={"limit": 100})).json()["items"]
    return {item["variants"][0]["sku"]: item for item in items}


class TestJsonLines:
    async def test_it_loads_the_good_lines_reports_the_bad_and_a_second_run_adds_nothing(
            self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            async with admin(svc) as api:
                books = (await api.post("/api/v1/categories", json={"name": "Books", "attributes": [
                    {"key": "author", "label": "Author", "type": "text", "required": True}]})).json()
            path = tmp_path / "products.jsonl"
            path.write_text("\n".join([
                line("Lumo M10", "M10", category="Cameras > Mirrorless", brand="Lumo",
                     attributes={"megapixels": 24}, media=[{"url": "https://img.example/m10.jpg", "alt": "M10"}]),
                "{not json",
                line("", "EMPTY"),
                line("A Novel", "NOVEL-1", category="Books", brand="lumo", attributes={"author": "Meera"}),
                line("No Author", "NOVEL-2", category="Books"),                       # breaks Books' definitions
                "",
                line("Same SKU again", "M10"),                                        # a SKU of an earlier line
                line("Priced oddly", "ODD", price=-5),
                "[1, 2]",
            ]) + "\n")

            outcome = await load(svc, path, batch_size=3)  # several batches, lines split across them

            assert (outcome.created, outcome.updated) == (2, 0)
            assert [number for number, _ in outcome.errors] == [2, 3, 5, 7, 8, 9]
            problems = dict(outcome.errors)
            assert "not JSON" in problems[2] and "name" in problems[3] and "'author'" in problems[5]
            assert problems[7] == "a SKU of line 1"
            assert "variants.0.price.amount" in problems[8]
            products = await listed(svc)
            assert sorted(products) == ["M10", "NOVEL-1"]
            m10 = products["M10"]
            assert [c["name"] for c in m10["breadcrumbs"]] == ["Cameras", "Mirrorless"]
            assert m10["brand"]["name"] == "Lumo" and m10["status"] == "active"
            assert products["NOVEL-1"]["brand"] == m10["brand"]  # brands match without regard to case
            assert products["NOVEL-1"]["category"]["id"] == books["id"]
            assert m10["media"] == [{"url": "https://img.example/m10.jpg", "alt": "M10"}]
            async with anonymous(svc) as public:  # the filter rows were written too
                found = (await public.get(PRODUCTS, params={"attribute": "megapixels:24"})).json()["items"]
            assert [p["id"] for p in found] == [m10["id"]]
            events = [e for e in await outbox(svc) if e["topic"] == "product.updated.v1"]
            assert sorted(e["aggregate_id"] for e in events) == sorted(p["id"] for p in products.values())
            assert [c["name"] for c in next(e for e in events if e["aggregate_id"] == m10["id"])["payload"][
                "category_path"]] == ["Cameras", "Mirrorless"]

            again = await load(svc, path)
            assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
            assert len(await outbox(svc)) == len(events)  # nothing changed, nothing published
            assert await listed(svc) == products

            path.write_text(line("Lumo M10 II", "M10", price=12_000, category="Cameras > Mirrorless",
                                 brand="Lumo", attributes={"megapixels": 26}) + "\n")
            changed = await load(svc, path)
            assert (changed.created, changed.updated) == (0, 1)
            m10_now = (await listed(svc))["M10"]
            assert (m10_now["id"], m10_now["name"], m10_now["variants"][0]["price"]["amount"]) == (
                m10["id"], "Lumo M10 II", 12_000)
            assert (await outbox(svc))[-1]["payload"]["name"] == "Lumo M10 II"

    async def test_skus_of_two_products_on_one_line_are_refused_and_tenants_keep_apart(
            self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            path = tmp_path / "first.jsonl"
            path.write_text(line("One", "ONE") + "\n" + line("Two", "TWO") + "\n")
            assert (await load(svc, path)).created == 2
            assert (await load(svc, path, tenant="acme")).created == 2  # the same SKUs in another tenant
            both = tmp_path / "both.jsonl"
            both.write_text(json.dumps({"name": "Merged", "variants": [
                {"sku": sku, "name": sku, "price": {"amount": 1, "currency": "INR"}} for sku in ("ONE", "TWO")]}))
            outcome = await load(svc, both)
            assert outcome.errors == [(1, "its SKUs belong to more than one product")]
            assert sorted(await listed(svc)) == sorted(await listed(svc, tenant="acme")) == ["ONE", "TWO"]


class TestCsv:
    async def test_rows_of_a_handle_are_one_product_and_a_bad_row_names_its_line(
            self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            path = tmp_path / "products.csv"
            path.write_text(
                "handle,name,description,category,brand,attributes,media,sku,variant_name,options,price,"
                "compare_at_price,currency\n"
                'tee,Plain Tee,"Soft, light",Fashion > Shirts,Threadline,"{""fabric"": ""cotton""}",'
                "https://img.example/tee.jpg,TEE-S,Small,size=S,49900,59900,INR\n"
                "tee,,,,,,,TEE-M,Medium,size=M,49900,,INR\n"
                "mug,Mug,,Home,,,,MUG-1,Mug,,abc,,INR\n"
                'kettle,Kettle,,Home,,,,KET-1,Kettle,"{""capacity"": ""1.5 l""}",129900,,INR\n')
            outcome = await load(svc, path)
            assert (outcome.created, outcome.errors) == (2, [(4, "sku 'MUG-1': a price is an integer amount "
                                                                "in minor units")])
            products = await listed(svc)
            tee = products["TEE-S"]
            assert (tee["name"], tee["description"], tee["attributes"]) == ("Plain Tee", "Soft, light",
                                                                            {"fabric": "cotton"})
            assert [(v["sku"], v["options"], v["price"]["amount"], v["compare_at_price"]) for v in tee["variants"]] == [
                ("TEE-S", {"size": "S"}, 49_900, {"amount": 59_900, "currency": "INR"}),
                ("TEE-M", {"size": "M"}, 49_900, None)]
            assert products["KET-1"]["variants"][0]["options"] == {"capacity": "1.5 l"}

    def test_an_unknown_column_or_suffix_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "products.csv"
        path.write_text("handle,name,colour\nx,y,z\n")
        [only] = list(read_lines(path))
        assert only.number == 1 and "colour" in (only.error or "")
        with pytest.raises(UnsupportedFile):
            read_lines(tmp_path / "products.xlsx")


class TestSyntheticCatalog:
    async def test_it_is_valid_deterministic_and_a_second_seed_adds_nothing(self, sqlite_url: str,
                                                                          tmp_path: Path) -> None:
        # Product 7 is the same whatever N is: its SKUs name its number, so a second seed finds it.
        assert synthetic.product(7)["variants"][0]["sku"] == "SYN0000007-1"
        assert synthetic.product(7) == list(synthetic.products(9))[6]
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            outcome = await seed_products(svc.runtime, "default", 60, batch_size=25)
            assert (outcome.created, outcome.errors) == (60, [])
            async with anonymous(svc) as public:
                categories = (await public.get("/api/v1/categories", params={"limit": 100})).json()["items"]
                books = next(c for c in categories if c["name"] == "Fiction")
                assert [d["key"] for d in books["attributes"]] == ["author", "pages", "language", "genre"]
                page = (await public.get(PRODUCTS, params={"limit": 100})).json()["items"]
            assert len(page) == 60 and len({p["brand"]["name"] for p in page}) > 10
            assert len({p["category"]["id"] for p in page}) > 5
            again = await seed_products(svc.runtime, "default", 60)
            assert (again.created, again.updated, again.unchanged) == (0, 0, 60)


class TestCommandLine:
    def test_import_reports_bad_lines_and_exits_1(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("AMAZONLITE_REDIS_URL", raising=False)
        platform_settings.cache_clear()
        path = tmp_path / "products.jsonl"
        path.write_text(line("Good", "GOOD-1") + "\nnope\n")
        result = CliRunner().invoke(app, ["catalog", "import", str(path), "--data-dir", str(tmp_path / "data")])
        assert result.exit_code == 1, result.output
        assert "line 2:" in result.output and "1 products created" in result.output
        catalog = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'catalog.sqlite3'}"
        assert [row.sku for row in query(catalog, "SELECT sku FROM variants")] == ["GOOD-1"]
        platform_settings.cache_clear()
