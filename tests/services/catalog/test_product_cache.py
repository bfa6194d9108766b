"""The catalog's hot products: `GET /products/{id}` answers from a cache (Redis, or the process's
memory without one) that every change to the product's document empties once it commits; and the
ratings reviews publish, kept on the product."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from amazonlite.contracts import ProductRatingUpdatedV1
from amazonlite.platform.read_cache import TOMBSTONE, MemoryStore, ReadCache
from amazonlite.services.catalog.app import SERVICE
from amazonlite.services.catalog.cache import ProductCache
from tests.services.catalog.factories import admin, anonymous, product_body
from tests.support.harness import Harness, fast_platform_settings, running_service
from tests.support.servers import redis_prefix, redis_url

PRODUCTS = "/api/v1/products"


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@asynccontextmanager
async def running_catalog(backend: str, database_url: str, data_dir: Path, **settings: Any
                          ) -> AsyncIterator[tuple[Harness, Redis | None, str]]:
    """The catalog with its product cache in memory or in a real Redis (under a prefix of its own,
    deleted afterwards)."""
    prefix = redis_prefix()
    client = Redis.from_url(redis_url(), socket_timeout=2, socket_connect_timeout=2) if backend == "redis" else None
    try:
        async with running_service(SERVICE, database_url, data_dir, redis=client,
                                   platform=fast_platform_settings(data_dir, redis_prefix=prefix),
                                   settings=SERVICE.settings(database_url=database_url, **settings)) as svc:
            yield svc, client, prefix
    finally:
        if client is not None:
            keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()


async def behind_the_cache(svc: Harness, sql: str, **params: Any) -> None:
    """Change the database directly, as nothing in the service would: the cache does not hear of it."""
    async with svc.runtime.db.engine.begin() as conn:
        await conn.execute(text(sql), params)


async def create(svc: Harness, **body: Any) -> dict[str, Any]:
    async with admin(svc) as api:
        response = await api.post(PRODUCTS, json=product_body(**body))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def read(svc: Harness, product_id: str) -> Any:
    async with anonymous(svc) as client:
        return await client.get(f"{PRODUCTS}/{product_id}")


class TestHotProducts:
    async def test_reads_come_from_the_cache_until_the_product_changes(
            self, backend: str, sqlite_url: str, tmp_path: Path) -> None:
        async with running_catalog(backend, sqlite_url, tmp_path) as (svc, redis, prefix):
            product = await create(svc, name="Cached Shoe")
            first = await read(svc, product["id"])
            assert first.status_code == 200 and first.json()["name"] == "Cached Shoe"
            assert first.headers["content-type"] == "application/json"
            if redis is not None:
                key = f"{prefix}:catalog:product:default:{product['id']}"
                assert 0 < await redis.ttl(key) <= 300

            await behind_the_cache(svc, "UPDATE products SET name = 'Renamed In SQL'")
            again = await read(svc, product["id"])
            assert again.json() == first.json()  # the cached document
            async with admin(svc) as api:  # admins read the database (they also see drafts)
                assert (await api.get(f"{PRODUCTS}/{product['id']}")).json()["name"] == "Renamed In SQL"
                patched = await api.patch(f"{PRODUCTS}/{product['id']}", json={"description": "Now waterproof."})
                assert patched.status_code == 200, patched.text

            after = (await read(svc, product["id"])).json()
            assert (after["name"], after["description"]) == ("Renamed In SQL", "Now waterproof.")

    async def test_a_renamed_brand_or_category_reaches_the_cached_document(
            self, backend: str, sqlite_url: str, tmp_path: Path) -> None:
        async with running_catalog(backend, sqlite_url, tmp_path) as (svc, _redis, _prefix):
            async with admin(svc) as api:
                brand = (await api.post("/api/v1/brands", json={"name": "Acme"})).json()
                category = (await api.post("/api/v1/categories", json={"name": "Shoes"})).json()
            product = await create(svc, brand_id=brand["id"], category_id=category["id"])
            assert (await read(svc, product["id"])).json()["brand"]["name"] == "Acme"

            async with admin(svc) as api:
                renamed = await api.patch(f"/api/v1/brands/{brand['id']}", json={"name": "Acme Sports"})
                assert renamed.status_code == 200
                assert (await api.patch(f"/api/v1/categories/{category['id']}",
                                        json={"name": "Running Shoes"})).status_code == 200
            document = (await read(svc, product["id"])).json()
            assert (document["brand"]["name"], document["category"]["name"]) == ("Acme Sports", "Running Shoes")

    async def test_a_product_made_a_draft_or_deleted_is_no_longer_served(
            self, backend: str, sqlite_url: str, tmp_path: Path) -> None:
        async with running_catalog(backend, sqlite_url, tmp_path) as (svc, _redis, _prefix):
            drafted, deleted = await create(svc), await create(svc)
            for product in (drafted, deleted):
                assert (await read(svc, product["id"])).status_code == 200
            async with admin(svc) as api:
                assert (await api.patch(f"{PRODUCTS}/{drafted['id']}", json={"status": "draft"})).status_code == 200
                assert (await api.delete(f"{PRODUCTS}/{deleted['id']}")).status_code == 204
            assert (await read(svc, drafted["id"])).status_code == 404
            assert (await read(svc, deleted["id"])).status_code == 404

    async def test_the_cache_is_per_tenant(self, backend: str, sqlite_url: str, tmp_path: Path) -> None:
        async with running_catalog(backend, sqlite_url, tmp_path) as (svc, _redis, _prefix):
            product = await create(svc)
            assert (await read(svc, product["id"])).status_code == 200  # cached for tenant default
            async with anonymous(svc, tenant="other") as client:
                assert (await client.get(f"{PRODUCTS}/{product['id']}")).status_code == 404

    async def test_a_time_to_live_of_zero_turns_the_cache_off(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_catalog("memory", sqlite_url, tmp_path, product_cache_ttl_seconds=0) as (svc, _r, _p):
            assert svc.runtime.state.product_cache is None
            product = await create(svc)
            assert (await read(svc, product["id"])).status_code == 200
            await behind_the_cache(svc, "UPDATE products SET name = 'Renamed In SQL'")
            assert (await read(svc, product["id"])).json()["name"] == "Renamed In SQL"


class TestMemoryStore:
    async def test_a_read_that_raced_a_change_cannot_put_the_old_document_back(self) -> None:
        cache = ReadCache(MemoryStore(10), name="test", ttl_seconds=60)
        await cache.drop("k")  # the change committed ...
        await cache.put("k", b'{"old": true}')  # ... after a read had loaded the old row
        assert await cache.get("k") is None
        await cache.drop("new", guard=False)
        await cache.put("new", b"{}")
        assert await cache.get("new") == b"{}"

    async def test_it_keeps_at_most_its_entries_and_each_until_it_expires(self) -> None:
        now = [0.0]
        store = MemoryStore(2, clock=lambda: now[0])
        await store.put("a", b"1", ttl_seconds=10)
        await store.put("b", b"2", ttl_seconds=10)
        assert await store.get("a") == b"1"  # read: "b" is now the least recently used
        await store.put("c", b"3", ttl_seconds=10)
        assert (await store.get("a"), await store.get("b"), await store.get("c")) == (b"1", None, b"3")
        now[0] = 10.5
        assert await store.get("a") is None
        await store.tombstone("c", ttl_seconds=1)
        assert await store.get("c") == TOMBSTONE


def test_keys_name_the_tenant_and_the_product() -> None:
    product_id = uuid.uuid4()
    cache = ProductCache(ReadCache(MemoryStore(1), name="test", ttl_seconds=1), prefix="p")
    assert cache.key("acme", product_id) == f"p:catalog:product:acme:{product_id}"


class TestRatingsFromReviews:
    async def test_the_latest_rating_is_kept_and_reaches_a_cached_document(
            self, backend: str, sqlite_url: str, tmp_path: Path) -> None:
        async with running_catalog(backend, sqlite_url, tmp_path) as (svc, _redis, _prefix):
            product = await create(svc)
            assert (await read(svc, product["id"])).json()["rating"] == {"average": None, "count": 0}  # cached
            now = dt.datetime.now(dt.UTC)
            await svc.deliver(rated(product["id"], average=4.5, count=2, as_of=now))
            assert (await read(svc, product["id"])).json()["rating"] == {"average": 4.5, "count": 2}

            await svc.deliver(rated(product["id"], average=1.0, count=1, as_of=now - dt.timedelta(seconds=1)))
            assert (await read(svc, product["id"])).json()["rating"] == {"average": 4.5, "count": 2}  # late: older
            await svc.deliver(rated(product["id"], average=4.0, count=3, as_of=now + dt.timedelta(seconds=1)))
            async with admin(svc) as api:
                listed = (await api.get(PRODUCTS)).json()["items"]
            assert [p["rating"] for p in listed] == [{"average": 4.0, "count": 3}]
            assert (await read(svc, product["id"])).json()["rating"] == {"average": 4.0, "count": 3}

    async def test_a_rating_of_an_unknown_product_or_another_tenants_changes_nothing(
            self, backend: str, sqlite_url: str, tmp_path: Path) -> None:
        async with running_catalog(backend, sqlite_url, tmp_path) as (svc, _redis, _prefix):
            product = await create(svc)
            now = dt.datetime.now(dt.UTC)
            await svc.deliver(rated(str(uuid.uuid4()), average=5.0, count=1, as_of=now))
            await svc.deliver(rated(product["id"], average=5.0, count=1, as_of=now), tenant="other")
            assert (await read(svc, product["id"])).json()["rating"] == {"average": None, "count": 0}


def rated(product_id: str, *, average: float, count: int, as_of: dt.datetime) -> ProductRatingUpdatedV1:
    histogram = {str(star): 0 for star in range(1, 6)}
    histogram[str(round(average))] = count
    return ProductRatingUpdatedV1(product_id=uuid.UUID(product_id), average=average, count=count,
                                  histogram=histogram, as_of=as_of)
