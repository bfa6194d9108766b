from __future__ import annotations

from pathlib import Path
from typing import Any

from amazonlite.services.catalog.app import SERVICE
from tests.services.catalog.factories import anonymous, count_products, outbox
from tests.support.harness import Harness, running_service


async def all_products(svc: Harness, *, tenant: str = "default") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    async with anonymous(svc, tenant=tenant) as public:
        while True:
            params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = (await public.get("/api/v1/products", params=params)).json()
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items


class TestSeed:
    async def test_seed_loads_a_demo_catalog_once(self, any_database_url: str, tmp_path: Path) -> None:
        assert SERVICE.seed is not None
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            await SERVICE.seed(svc.runtime, "default")
            products = await all_products(svc)
            assert len(products) >= 60
            assert {p["status"] for p in products} == {"active"}
            assert len({p["slug"] for p in products}) == len(products)
            for product in products:
                assert 1 <= len(product["variants"]) <= 4, product["name"]
                assert product["brand"] is not None and product["category"] is not None
                assert product["attributes"] and product["description"]
                assert product["media"] and all(m["url"].startswith("https://images.amazonlite.dev/")
                                                for m in product["media"])
                assert {v["price"]["currency"] for v in product["variants"]} == {"INR"}
                assert all(v["price"]["amount"] > 0 and v["price"]["amount"] % 100 == 0 for v in product["variants"])
            assert any(len(p["variants"]) > 1 and p["variants"][0]["options"] for p in products)
            skus = [v["sku"] for p in products for v in p["variants"]]
            assert len(set(skus)) == len(skus)

            async with anonymous(svc) as public:
                categories = (await public.get("/api/v1/categories")).json()["items"]
                brands = (await public.get("/api/v1/brands")).json()["items"]
                electronics = next(c for c in categories if c["slug"] == "electronics")
                under_electronics = (await public.get("/api/v1/products", params={
                    "category": electronics["id"], "limit": 100})).json()["items"]
            assert len(categories) >= 6
            assert len(brands) >= 8
            assert len(under_electronics) > 10  # the root category spans its subcategories

            events = [e for e in await outbox(svc) if e["topic"] == "product.updated.v1"]
            assert sorted(e["aggregate_id"] for e in events) == sorted(p["id"] for p in products)
            assert all(e["payload"]["brand_name"] and e["payload"]["category_name"] for e in events)

            await SERVICE.seed(svc.runtime, "default")
            assert await count_products(svc) == len(products)
            assert len(await outbox(svc)) == len(events)
            assert [p["id"] for p in await all_products(svc)] == [p["id"] for p in products]

    async def test_each_tenant_gets_its_own_copy(self, sqlite_url: str, tmp_path: Path) -> None:
        assert SERVICE.seed is not None
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await SERVICE.seed(svc.runtime, "acme")
            await SERVICE.seed(svc.runtime, "globex")
            acme, globex = await all_products(svc, tenant="acme"), await all_products(svc, tenant="globex")
            assert len(acme) == len(globex) >= 60
            assert sorted(p["slug"] for p in acme) == sorted(p["slug"] for p in globex)
            assert not {p["id"] for p in acme} & {p["id"] for p in globex}
            assert await all_products(svc, tenant="default") == []
