"""The response cache of public catalog reads: what it keeps, for whom, and what makes it forget."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from redis.asyncio import Redis

from amazonlite.gateway.app import CachePolicy, GatewaySettings, Upstream, create_gateway
from amazonlite.gateway.cache import Entry
from amazonlite.platform.bus import Message
from amazonlite.platform.bus.memory import InProcessTransport
from amazonlite.platform.config import PlatformSettings
from amazonlite.platform.events import Envelope
from amazonlite.platform.revocation import MemoryRevocationStore
from tests.gateway.support import SigningKeys, bearer, kernel_app, verified_principal
from tests.support import servers

PRODUCTS = "/api/v1/products"
UPDATED = "product.updated.v1"
POLICY = CachePolicy(routes=frozenset({PRODUCTS, "/api/v1/brands"}), invalidated_by=(UPDATED, "product.deleted.v1"))


class Catalog:
    """A catalog upstream that counts what reaches it and can be held mid-request."""

    def __init__(self, platform: PlatformSettings) -> None:
        self.served: list[str] = []
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        app = self.app = kernel_app("catalog", platform)

        @app.get("/api/v1/products")
        async def products(request: Request) -> Any:
            return await self._answer(request, {"items": [{"name": "kettle"}]})

        @app.get("/api/v1/products/private")
        async def private(request: Request) -> Response:
            await self._answer(request, {})
            return JSONResponse({"secret": 1}, headers={"Cache-Control": "private"})

        @app.get("/api/v1/products/cookie")
        async def cookie(request: Request) -> Response:
            await self._answer(request, {})
            return JSONResponse({"n": 1}, headers={"Set-Cookie": "session=abc"})

        @app.get("/api/v1/products/big")
        async def big(request: Request) -> Any:
            return await self._answer(request, {"blob": "x" * 4096})

        @app.get("/api/v1/products/{product_id}")
        async def product(product_id: str, request: Request) -> Any:
            if product_id == "missing":
                await self._answer(request, {})
                return JSONResponse({"status": 404}, status_code=404)
            return await self._answer(request, {"id": product_id, "price": {"amount": 100, "currency": "INR"}})

        @app.post("/api/v1/products")
        async def create(request: Request) -> Any:
            verified_principal(request, "catalog")
            body = await request.json()
            if body.get("fail"):
                return JSONResponse({"status": 422}, status_code=422)
            return JSONResponse({"id": "new"}, status_code=201)

        @app.get("/api/v1/brands")
        async def brands(request: Request) -> Any:
            return await self._answer(request, {"items": []})

    async def _answer(self, request: Request, document: dict[str, Any]) -> dict[str, Any]:
        principal = verified_principal(request, "catalog")
        self.served.append(f"{principal.tenant_id} {request.url.path}?{request.url.query}")
        if self.gate is not None:
            self.entered.set()
            await self.gate.wait()
        return {**document, "served": len(self.served)}


@pytest.fixture
def catalog(platform: PlatformSettings) -> Catalog:
    return Catalog(platform)


@asynccontextmanager
async def running(gateway: FastAPI, bus: InProcessTransport) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway.router.lifespan_context(gateway), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=gateway), base_url="http://gateway") as client:
        yield client


def make_gateway(platform: PlatformSettings, auth: FastAPI, catalog: Catalog, bus: InProcessTransport | None,
                 *, redis: Any = None, **settings: Any) -> FastAPI:
    return create_gateway(platform, [Upstream("auth", app=auth), Upstream("catalog", app=catalog.app)],
                          revocations=MemoryRevocationStore(), settings=GatewaySettings(**settings),
                          cache_policy=POLICY, events=bus, redis=redis,
                          on_startup=[bus.start] if bus else [], on_shutdown=[bus.stop] if bus else [])


def event(topic: str, tenant: str) -> Message:
    envelope = Envelope(event_id=uuid.uuid4(), event_type=topic, occurred_at=dt.datetime.now(dt.UTC),
                        producer="catalog", schema_version=1, trace_id="0" * 32, correlation_id="c",
                        tenant_id=tenant, payload={"id": "p1"})
    return Message(topic=topic, key=b"p1", value=envelope.to_json())


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest,
                platform: PlatformSettings) -> AsyncIterator[tuple[Any, PlatformSettings]]:
    """The cache's store: this process's memory, or a real Redis under this test's own prefix."""
    if request.param == "memory":
        yield None, platform
        return
    redis = Redis.from_url(servers.redis_url())
    prefix = servers.redis_prefix()
    try:
        yield redis, platform.model_copy(update={"redis_prefix": prefix})
    finally:
        keys = [key async for key in redis.scan_iter(f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


@pytest.fixture
async def cached(store: tuple[Any, PlatformSettings], auth: FastAPI, catalog: Catalog
                 ) -> AsyncIterator[tuple[httpx.AsyncClient, InProcessTransport]]:
    redis, platform = store
    bus = InProcessTransport()
    async with running(make_gateway(platform, auth, catalog, bus, redis=redis, response_cache_max_body_bytes=1024),
                       bus) as client:
        yield client, bus


class TestPublicReads:
    async def test_the_second_read_is_answered_by_the_gateway(self, cached: Any, catalog: Catalog) -> None:
        client, _bus = cached
        first = await client.get(PRODUCTS, params={"limit": "5"})
        second = await client.get(PRODUCTS, params={"limit": "5"})
        assert first.status_code == second.status_code == 200
        assert first.headers["x-cache"] == "miss" and second.headers["x-cache"] == "hit"
        assert second.json() == first.json() == {"items": [{"name": "kettle"}], "served": 1}
        assert catalog.served == ["default /api/v1/products?limit=5"]
        assert int(second.headers["age"]) >= 0
        assert second.headers["content-type"] == "application/json"
        # Per-request headers are the request's own, not the stored answer's.
        assert second.headers["x-correlation-id"] != first.headers["x-correlation-id"]
        assert "ratelimit-remaining" in second.headers
        assert second.headers["x-content-type-options"] == "nosniff"

    async def test_the_key_is_tenant_path_and_query_with_parameters_in_any_order(
            self, cached: Any, catalog: Catalog) -> None:
        client, _bus = cached
        await client.get(f"{PRODUCTS}?brand=b&limit=5&tag=x&tag=y")
        same = await client.get(f"{PRODUCTS}?limit=5&tag=x&brand=b&tag=y")
        values_reordered = await client.get(f"{PRODUCTS}?brand=b&limit=5&tag=y&tag=x")
        other_query = await client.get(f"{PRODUCTS}?limit=6&brand=b")
        other_tenant = await client.get(f"{PRODUCTS}?brand=b&limit=5&tag=x&tag=y", headers={"X-Tenant-ID": "acme"})
        other_path = await client.get(f"{PRODUCTS}/p1")
        assert same.headers["x-cache"] == "hit"
        assert values_reordered.headers["x-cache"] == "miss"
        assert [other_query.headers["x-cache"], other_tenant.headers["x-cache"], other_path.headers["x-cache"]] == [
            "miss", "miss", "miss"]
        assert other_tenant.json()["served"] == 4
        assert len(catalog.served) == 5

    async def test_a_customer_shares_the_public_answer_and_an_admin_always_reaches_the_catalog(
            self, cached: Any, catalog: Catalog, keys: SigningKeys) -> None:
        client, _bus = cached
        await client.get(PRODUCTS)
        customer = await client.get(PRODUCTS, headers=bearer(keys.token(roles=["customer"])))
        admin = bearer(keys.token(roles=["tenant_admin"]))
        first_admin = await client.get(PRODUCTS, headers=admin)
        second_admin = await client.get(PRODUCTS, headers=admin)
        assert customer.headers["x-cache"] == "hit"
        assert "x-cache" not in first_admin.headers and "x-cache" not in second_admin.headers
        assert [first_admin.json()["served"], second_admin.json()["served"]] == [2, 3]

    @pytest.mark.parametrize("path", ["/missing", "/private", "/cookie", "/big"])
    async def test_errors_private_answers_cookies_and_large_bodies_are_not_kept(
            self, cached: Any, catalog: Catalog, path: str) -> None:
        client, _bus = cached
        first = await client.get(PRODUCTS + path)
        second = await client.get(PRODUCTS + path)
        assert second.headers["x-cache"] == "miss"
        assert second.status_code == first.status_code
        assert len(catalog.served) == 2

    async def test_routes_outside_the_policy_are_never_cached(self, cached: Any, keys: SigningKeys) -> None:
        client, _bus = cached
        me = await client.get("/api/v1/auth/me", headers=bearer(keys.token()))
        assert me.status_code == 200 and "x-cache" not in me.headers


class TestInvalidation:
    async def test_a_catalog_event_drops_the_tenants_entries_and_only_that_tenants(
            self, cached: Any, catalog: Catalog) -> None:
        client, bus = cached
        await client.get(PRODUCTS)
        await client.get("/api/v1/brands")
        await client.get(PRODUCTS, headers={"X-Tenant-ID": "acme"})
        await bus.publish([event(UPDATED, "default")])
        after = [await client.get(PRODUCTS), await client.get("/api/v1/brands"),
                 await client.get(PRODUCTS, headers={"X-Tenant-ID": "acme"})]
        assert [a.headers["x-cache"] for a in after] == ["miss", "miss", "hit"]
        assert after[0].json()["served"] == 4

    async def test_an_unreadable_event_is_dropped_without_stopping_the_bus(self, cached: Any) -> None:
        client, bus = cached
        await client.get(PRODUCTS)
        await bus.publish([Message(topic=UPDATED, key=b"x", value=b"{not json")])
        assert (await client.get(PRODUCTS)).headers["x-cache"] == "hit"
        await bus.publish([event("product.deleted.v1", "default")])
        assert (await client.get(PRODUCTS)).headers["x-cache"] == "miss"

    async def test_a_successful_write_through_the_gateway_drops_the_entries_at_once_a_refused_one_does_not(
            self, cached: Any, keys: SigningKeys) -> None:
        client, _bus = cached
        admin = bearer(keys.token(roles=["tenant_admin"]))
        await client.get(PRODUCTS)
        refused = await client.post(PRODUCTS, json={"fail": True}, headers=admin)
        assert refused.status_code == 422
        assert (await client.get(PRODUCTS)).headers["x-cache"] == "hit"
        created = await client.post(PRODUCTS, json={"name": "new"}, headers=admin)
        assert created.status_code == 201
        assert (await client.get(PRODUCTS)).headers["x-cache"] == "miss"

    async def test_a_read_sent_as_soon_as_a_write_is_answered_does_not_get_the_answer_from_before_it(
            self, store: tuple[Any, PlatformSettings], auth: FastAPI, catalog: Catalog, keys: SigningKeys) -> None:
        redis, platform = store
        bus = InProcessTransport()
        gateway = make_gateway(platform, auth, catalog, bus, redis=redis)
        reads: list[httpx.Response] = []

        async def writer_app(scope: Any, receive: Any, send: Any) -> None:
            async def send_then_read(message: Any) -> None:
                await send(message)
                if message["type"] == "http.response.body" and not message.get("more_body", False):
                    # The writer has its whole answer now; it (or anyone it told) reads the list.
                    reads.append(await client.get(PRODUCTS))

            await gateway(scope, receive, send_then_read)

        async with running(gateway, bus) as client, httpx.AsyncClient(
                transport=httpx.ASGITransport(app=writer_app), base_url="http://gateway") as writer:
            await client.get(PRODUCTS)
            created = await writer.post(PRODUCTS, json={"name": "new"},
                                        headers=bearer(keys.token(roles=["tenant_admin"])))
        assert created.status_code == 201
        assert reads[0].headers["x-cache"] == "miss"
        assert reads[0].json()["served"] == 2

    async def test_an_answer_fetched_before_an_invalidation_is_never_served_after_it(
            self, cached: Any, catalog: Catalog) -> None:
        client, bus = cached
        catalog.gate = asyncio.Event()
        slow_read = asyncio.create_task(client.get(PRODUCTS))
        await catalog.entered.wait()  # the catalog has read the old state
        await bus.publish([event(UPDATED, "default")])  # ... and then the product changed
        catalog.gate.set()
        stale = await slow_read
        assert stale.json()["served"] == 1
        fresh = await client.get(PRODUCTS)
        assert fresh.headers["x-cache"] == "miss" and fresh.json()["served"] == 2
        assert (await client.get(PRODUCTS)).json()["served"] == 2


class TestLimits:
    async def test_an_entry_expires_after_its_time_to_live(self, platform: PlatformSettings, auth: FastAPI,
                                                          catalog: Catalog) -> None:
        bus = InProcessTransport()
        async with running(make_gateway(platform, auth, catalog, bus, response_cache_ttl_seconds=0.2), bus) as client:
            await client.get(PRODUCTS)
            assert (await client.get(PRODUCTS)).headers["x-cache"] == "hit"
            await asyncio.sleep(0.3)
            assert (await client.get(PRODUCTS)).headers["x-cache"] == "miss"

    async def test_the_memory_store_keeps_the_most_recently_used_entries_within_its_size(
            self, platform: PlatformSettings, auth: FastAPI, catalog: Catalog) -> None:
        bus = InProcessTransport()
        document = await _document(platform, auth, catalog, PRODUCTS + "/a")
        kept = [(b"content-type", document.headers["content-type"].encode()),
                (b"content-length", document.headers["content-length"].encode())]
        one = Entry(200, kept, document.content, 0).footprint
        catalog.served.clear()
        async with running(make_gateway(platform, auth, catalog, bus, response_cache_max_bytes=2 * one + 1),
                           bus) as client:
            for path in ("/a", "/b", "/a", "/c"):  # /b is the least recently used when /c arrives
                await client.get(PRODUCTS + path)
            answers = {p: (await client.get(PRODUCTS + p)).headers["x-cache"] for p in ("/a", "/c", "/b")}
        assert answers == {"/a": "hit", "/c": "hit", "/b": "miss"}


async def _document(platform: PlatformSettings, auth: FastAPI, catalog: Catalog, path: str) -> httpx.Response:
    async with running(make_gateway(platform, auth, catalog, None), InProcessTransport()) as client:
        return await client.get(path)


class TestWithoutTheCache:
    async def test_without_a_bus_to_invalidate_it_nothing_is_cached(
            self, platform: PlatformSettings, auth: FastAPI, catalog: Catalog) -> None:
        async with running(make_gateway(platform, auth, catalog, None), InProcessTransport()) as client:
            answers = [await client.get(PRODUCTS) for _ in range(2)]
        assert [a.json()["served"] for a in answers] == [1, 2]
        assert all("x-cache" not in a.headers for a in answers)

    async def test_when_redis_is_down_reads_go_to_the_catalog(
            self, platform: PlatformSettings, auth: FastAPI, catalog: Catalog) -> None:
        dead = Redis.from_url(f"redis://127.0.0.1:{servers.free_port()}/0", socket_connect_timeout=0.5)
        bus = InProcessTransport()
        try:
            async with running(make_gateway(platform, auth, catalog, bus, redis=dead), bus) as client:
                answers = [await client.get(PRODUCTS) for _ in range(2)]
        finally:
            await dead.aclose()
        assert [a.status_code for a in answers] == [200, 200]
        assert [a.json()["served"] for a in answers] == [1, 2]
