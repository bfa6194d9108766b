"""The search service wired to the real tenants and catalog services in-process: the catalog's events
keep the index fresh, an empty index rebuilds itself from the catalog's listing, and the HTTP
answers (results, facets, suggestions, problems) — on each engine."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from amazonlite.contracts import ProductRatingUpdatedV1
from amazonlite.platform.bus.memory import InProcessTransport
from amazonlite.services.catalog.app import SERVICE as CATALOG
from amazonlite.services.search.app import SERVICE as SEARCH
from amazonlite.services.search.settings import SearchSettings
from amazonlite.services.tenants.app import SERVICE as TENANTS
from tests.support.harness import Harness, fast_platform_settings, running_service

SECRET = "search-tests-internal-token-secret-0123456789"


@dataclass
class Shop:
    tenants: Harness
    catalog: Harness
    search: Harness | None = None

    async def product(self, name: str, *, tenant: str = "default", **extra: Any) -> dict[str, Any]:
        body = {"name": name, "description": extra.pop("description", f"{name}, described."), "status": "active",
                "variants": [{"sku": f"S-{uuid.uuid4().hex[:10]}", "name": "One",
                              "price": {"amount": extra.pop("price", 100_000), "currency": "INR"}}], **extra}
        async with self.catalog.client(tenant=tenant, user_id=uuid.uuid4(), roles=("tenant_admin",)) as api:
            made = await api.post("/api/v1/products", json=body)
        assert made.status_code == 201, made.text
        return dict(made.json())

    async def category(self, name: str, **extra: Any) -> dict[str, Any]:
        async with self.catalog.client(user_id=uuid.uuid4(), roles=("tenant_admin",)) as api:
            made = await api.post("/api/v1/categories", json={"name": name, **extra})
        assert made.status_code == 201, made.text
        return dict(made.json())

    async def tenant(self, tenant: str) -> None:
        async with self.tenants.client(user_id=uuid.uuid4(), roles=("platform_admin",)) as api:
            made = await api.post("/api/v1/admin/tenants", json={"id": tenant, "name": tenant})
        assert made.status_code == 201, made.text

    async def find(self, tenant: str = "default", **params: Any) -> Any:
        assert self.search is not None
        async with self.search.client(tenant=tenant) as api:
            return await api.get("/api/v1/search", params=params)

    async def hits(self, q: str, tenant: str = "default", **params: Any) -> list[str]:
        answer = await self.find(tenant, q=q, **params)
        assert answer.status_code == 200, answer.text
        return [hit["name"] for hit in answer.json()["items"]]


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 10.0) -> Any:
    """Poll `check` until it is truthy (never a fixed sleep): the index follows events asynchronously."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        last = await check()
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s (last: {last!r})")
        await asyncio.sleep(0.05)


@dataclass(frozen=True)
class Engine:
    name: str
    url: str | None  # the search service's database; None: SQLite in the test's directory


@pytest.fixture(params=["tantivy", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    if request.param == "postgres":
        return Engine("postgres", request.getfixturevalue("postgres_url"))
    return Engine("tantivy", None)


@asynccontextmanager
async def running_shop(tmp_path: Path, engine: Engine) -> AsyncIterator[
        tuple[Shop, Callable[[], Any]]]:
    """Tenants and catalog on SQLite, on one in-process bus; `start_search()` adds the search service
    (tantivy on SQLite, or the PostgreSQL engine in a database of its own)."""
    platform = fast_platform_settings(tmp_path, internal_token_secret=SECRET)
    transport = InProcessTransport()
    await transport.start()
    async with AsyncExitStack() as stack:
        stack.push_async_callback(transport.stop)

        async def start(module: Any, name: str, **extra: Any) -> Harness:
            url = extra.pop("url", f"sqlite+aiosqlite:///{tmp_path / f'{name}.sqlite3'}")
            return await stack.enter_async_context(running_service(
                module, url, tmp_path, transport=transport, start_transport=False, platform=platform, **extra))

        shop = Shop(await start(TENANTS, "tenants"), await start(CATALOG, "catalog"))

        async def start_search() -> Harness:
            url = engine.url or f"sqlite+aiosqlite:///{tmp_path / 'search.sqlite3'}"
            settings = SearchSettings(database_url=url, backend=engine.name, index_dir=tmp_path / "index",
                                      replica="r1")
            shop.search = await start(SEARCH, "search", url=url, settings=settings,
                                      services={"tenants": shop.tenants.app, "catalog": shop.catalog.app})
            return shop.search

        yield shop, start_search


class TestFollowingTheCatalog:
    async def test_changes_are_found_and_filters_facets_ratings_and_deletion_apply(
            self, tmp_path: Path, engine: Engine) -> None:
        async with running_shop(tmp_path, engine) as (shop, start_search):
            search = await start_search()
            cameras = await shop.category("Cameras")
            mirrorless = await shop.category("Mirrorless", parent_id=cameras["id"])
            m10 = await shop.product("Lumo M10 Mirrorless Camera", category_id=mirrorless["id"], price=5_499_900,
                                     attributes={"megapixels": 24}, description="Interchangeable lenses.")
            z2 = await shop.product("Zeiko Z2 Compact Camera", category_id=cameras["id"], price=2_099_900)
            await shop.product("Kettle", description="Boils water.")
            await eventually(lambda: _has(shop.hits("camera"), 2), "the cameras to be searchable")
            assert sorted(await shop.hits("camera")) == sorted([m10["name"], z2["name"]])
            assert await shop.hits("mirorless") == [m10["name"]]  # a typo
            assert await shop.hits("camera", category=mirrorless["id"]) == [m10["name"]]
            assert await shop.hits("camera", category=cameras["id"], max_price=3_000_000) == [z2["name"]]
            assert await shop.hits("camera", attribute="megapixels:24") == [m10["name"]]

            answer = (await shop.find(q="camera")).json()
            assert answer["total"] == 2
            categories = {c["name"]: c["count"] for c in answer["facets"]["categories"]}
            assert categories == {"Cameras": 2, "Mirrorless": 1}
            assert sum(band["count"] for band in answer["facets"]["price_bands"]) == 2
            hit = next(h for h in answer["items"] if h["product_id"] == m10["id"])
            assert hit["price"] == {"amount": 5_499_900, "currency": "INR"} and "<mark>" in hit["snippet"]

            # The better rated of two equal matches first, once its rating arrives.
            await search.deliver(ProductRatingUpdatedV1(
                product_id=uuid.UUID(z2["id"]), average=4.9, count=40,
                histogram={"5": 40, "4": 0, "3": 0, "2": 0, "1": 0}, as_of=dt.datetime.now(dt.UTC)))
            assert (await shop.hits("camera", sort="rating"))[0] == z2["name"]

            async with shop.catalog.client(user_id=uuid.uuid4(), roles=("tenant_admin",)) as api:
                assert (await api.patch(f"/api/v1/products/{m10['id']}", json={"name": "Lumo M11 Camera"})
                        ).status_code == 200
                assert (await api.delete(f"/api/v1/products/{z2['id']}")).status_code == 204
            await eventually(lambda: _is(shop.hits("camera"), ["Lumo M11 Camera"]), "the rename and the deletion")
            assert await shop.hits("m10") == []  # the old name is forgotten
            assert await shop.hits("zeiko") == []

    async def test_tenants_keep_apart_and_bad_queries_are_problems(self, tmp_path: Path, engine: Engine) -> None:
        async with running_shop(tmp_path, engine) as (shop, start_search):
            await start_search()
            await shop.product("Acme Anvil", tenant="acme")
            await shop.product("Default Anvil")
            await eventually(lambda: _has(shop.hits("anvil", "acme"), 1), "acme's anvil")
            await eventually(lambda: _has(shop.hits("anvil"), 1), "default's anvil")
            assert await shop.hits("anvil", "acme") == ["Acme Anvil"]
            assert await shop.hits("anvil") == ["Default Anvil"]
            async with shop.search.client(tenant="acme") as api:  # type: ignore[union-attr]
                suggested = (await api.get("/api/v1/search/autocomplete", params={"q": "an"})).json()["items"]
                assert [s["text"] for s in suggested] == ["Acme Anvil"]
                for params, status in (({"q": ""}, 422), ({"q": "x" * 201}, 422), ({"q": "   "}, 400),
                                       ({"q": "anvil", "cursor": "bogus"}, 400),
                                       ({"q": "anvil", "attribute": "colour"}, 400),
                                       ({"q": "anvil", "min_price": 10, "max_price": 5}, 400),
                                       ({"q": "anvil", "limit": 0}, 422)):
                    answer = await api.get("/api/v1/search", params=params)
                    assert answer.status_code == status, (params, answer.text)
                    assert answer.headers["content-type"] == "application/problem+json"


async def _is(hits: Awaitable[list[str]], expected: list[str]) -> bool:
    return await hits == expected


class TestRebuild:
    async def test_an_empty_index_is_built_from_the_catalog_of_every_tenant(self, tmp_path: Path,
                                                                            engine: Engine) -> None:
        async with running_shop(tmp_path, engine) as (shop, start_search):
            await shop.tenant("acme")
            for n in range(7):
                await shop.product(f"Telescope {n}")
            await shop.product("Acme Telescope", tenant="acme")
            # Their events went out before search existed: only the catalog's listing has them.
            search = await start_search()
            await eventually(lambda: _ready(search), "the rebuild")
            assert len(await shop.hits("telescope", limit=50)) == 7
            assert await shop.hits("telescope", "acme") == ["Acme Telescope"]
            await shop.product("Telescope 7")  # and events flow after it
            await eventually(lambda: _has(shop.hits("telescope", limit=50), 8), "the new telescope")


async def _ready(search: Harness) -> bool:
    async with search.client() as api:
        answer = await api.get("/health/ready")
    return answer.status_code == 200 and answer.json()["checks"]["index"] == "ok"


async def _has(hits: Awaitable[list[str]], count: int) -> bool:
    return len(await hits) == count


class TestReindexCommand:
    def test_it_empties_the_index_and_builds_it_again_from_the_catalog(self, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
        """`amazonlite search reindex` on a data directory with the demo catalog, as an operator runs
        it with the platform stopped: every tenant's index rebuilt, a search then finds the products."""
        from typer.testing import CliRunner

        from amazonlite.cli import app
        from amazonlite.platform.config import platform_settings
        from amazonlite.services.search.engine.base import SearchQuery
        from amazonlite.services.search.engine.tantivy_engine import TantivySearchEngine

        for name in ("AMAZONLITE_REDIS_URL", "AMAZONLITE_KAFKA_BOOTSTRAP"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AMAZONLITE_ENVIRONMENT", "development")
        monkeypatch.setenv("AMAZONLITE_SEARCH_REPLICA", "r1")
        platform_settings.cache_clear()
        data = tmp_path / "data"
        try:
            seeded = CliRunner().invoke(app, ["seed", "--data-dir", str(data)])
            assert seeded.exit_code == 0, seeded.output
            done = CliRunner().invoke(app, ["search", "reindex", "--data-dir", str(data)])
            assert done.exit_code == 0, done.output
            counts = dict(line.split(": ") for line in done.output.splitlines() if line.startswith("Tenant "))
            indexed = int(counts["Tenant 'default'"].split()[0])
            assert indexed > 50

            async def look() -> tuple[int, list[str]]:
                engine = TantivySearchEngine(data / "search-index" / "r1")
                try:
                    found = await engine.search("default", SearchQuery(q="smartphone"))
                    return await engine.count("default"), [hit.name for hit in found.hits]
                finally:
                    await engine.close()

            count, names = asyncio.run(look())
            assert count == indexed
            assert "Voltra Nova 5G Smartphone" in names
        finally:
            platform_settings.cache_clear()
