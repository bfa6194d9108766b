"""The cart with its dependencies failing, its SKU replica fed by catalog events, Idempotency-Key,
guest cart expiry, metrics and its OpenAPI document."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from amazonlite.contracts.base import Money
from amazonlite.contracts.catalog import ProductDeletedV1, ProductUpdatedV1, ProductVariantV1
from amazonlite.platform.clients import ServiceDirectory
from amazonlite.services.cart.models import Cart, SkuPrice
from amazonlite.services.cart.tasks import expire_guest_carts
from tests.services.cart.shop import Shop, money, problem
from tests.support.servers import free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")


def sku() -> str:
    return f"SKU-{uuid.uuid4().hex[:10].upper()}"


@contextmanager
def down(shop: Shop, *targets: str) -> Iterator[None]:
    """`targets` unreachable from the cart (a port nothing listens on); the others as they were."""
    runtime = shop.cart.runtime
    running = runtime.services
    directory = ServiceDirectory("cart", runtime.internal_tokens)
    for name, svc in (("tenants", shop.tenants), ("catalog", shop.catalog), ("inventory", shop.inventory)):
        if name in targets:
            directory.register(name, url=f"http://127.0.0.1:{free_port()}")
        else:
            directory.register(name, app=svc.app)
    runtime.services = directory
    try:
        yield
    finally:
        runtime.services = running


class TestDependenciesDown:
    async def test_inventory_down_reads_work_and_changes_are_503(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        shoe = sku()
        await shop.product(tenant, {shoe: 1000})
        async with shop.customer(tenant) as me:
            cart = (await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})).json()
            with down(shop, "inventory"):
                assert (await me.get("/api/v1/cart")).json() == cart
                problem(await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1}), 503,
                        "availability-unavailable")
                problem(await me.patch(f"/api/v1/cart/items/{shoe}", json={"quantity": 2}), 503,
                        "availability-unavailable")
                problem(await me.post("/api/v1/cart/items", json={"sku": "NO-SUCH-SKU", "quantity": 1}), 404,
                        "sku-not-found")  # what the catalog says comes first
                # Taking things out needs no stock check.
                assert (await me.delete(f"/api/v1/cart/items/{shoe}")).status_code == 200
            assert (await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})).status_code == 200

    async def test_catalog_down_reads_work_and_adds_are_503(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        shoe = sku()
        await shop.product(tenant, {shoe: 1000})
        async with shop.guest(tenant) as guest:
            cart = (await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})).json()
            guest.headers["X-Cart-Id"] = cart["id"]
            with down(shop, "catalog"):
                assert (await guest.get("/api/v1/cart")).json() == cart
                problem(await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1}), 503,
                        "catalog-unavailable")
            assert (await guest.get("/api/v1/cart")).json() == cart  # nothing was written


class TestSkuReplica:
    async def test_the_newest_product_state_wins_and_a_deletion_is_final(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        shoe, sock = sku(), sku()
        product = await shop.product(tenant, {shoe: 1000, sock: 200})
        product_id = uuid.UUID(product["id"])
        async with shop.customer(tenant) as me:
            await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})
            await me.post("/api/v1/cart/items", json={"sku": sock, "quantity": 1})

            def updated(price: int, at: dt.datetime, *skus: str) -> ProductUpdatedV1:
                return ProductUpdatedV1(
                    product_id=product_id, name="Trail Shoe", slug="trail-shoe", description="", status="active",
                    brand_id=None, brand_name=None, category_id=None, category_name=None, attributes={},
                    variants=[ProductVariantV1(sku=s, name=s, options={}, price=Money(amount=price, currency="INR"))
                              for s in skus], updated_at=at)

            later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
            event_id = uuid.uuid4()
            for _ in range(2):  # redelivered: no second effect
                await shop.cart.deliver(updated(1500, later, shoe, sock), tenant=tenant, event_id=event_id)
            await shop.cart.deliver(updated(900, later - dt.timedelta(minutes=1), shoe, sock), tenant=tenant)  # older
            lines = {i["sku"]: i for i in (await me.get("/api/v1/cart")).json()["items"]}
            assert lines[shoe]["unit_price"] == money(1500) and lines[shoe]["price_changed"] is True

            # The variant `sock` is dropped from its product: its line is no longer for sale.
            await shop.cart.deliver(updated(1500, later + dt.timedelta(minutes=1), shoe), tenant=tenant)
            lines = {i["sku"]: i for i in (await me.get("/api/v1/cart")).json()["items"]}
            assert (lines[shoe]["available"], lines[sock]["available"]) == (True, False)

            deleted_id = uuid.uuid4()
            for _ in range(2):
                await shop.cart.deliver(ProductDeletedV1(product_id=product_id, skus=[shoe, sock]), tenant=tenant,
                                        event_id=deleted_id)
            await shop.cart.deliver(updated(100, later + dt.timedelta(days=1), shoe, sock), tenant=tenant)  # late
            cart = (await me.get("/api/v1/cart")).json()
            assert [i["available"] for i in cart["items"]] == [False, False] and cart["total"] == money(0)

    async def test_events_of_one_tenant_do_not_touch_another(self, shop: Shop) -> None:
        tenant, other = await shop.tenant(), await shop.tenant()
        shoe = sku()
        product = await shop.product(tenant, {shoe: 1000})
        await shop.cart.deliver(ProductDeletedV1(product_id=uuid.UUID(product["id"]), skus=[shoe]), tenant=other)
        async with shop.customer(tenant) as me:
            cart = (await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})).json()
            assert cart["items"][0]["available"] is True
        async with shop.cart.runtime.db.engine.connect() as conn:
            rows = (await conn.execute(select(SkuPrice.__table__.c.tenant_id, SkuPrice.__table__.c.status)
                                       .where(SkuPrice.__table__.c.sku == shoe))).all()
        assert sorted(rows) == sorted([(tenant, "active"), (other, "deleted")])


class TestIdempotencyKey:
    async def test_a_retried_add_is_answered_again_and_adds_once(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        shoe = sku()
        await shop.product(tenant, {shoe: 1000})
        async with shop.customer(tenant) as me:
            key = {"Idempotency-Key": str(uuid.uuid4())}
            first = await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 2}, headers=key)
            again = await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 2}, headers=key)
            assert again.status_code == 200 and again.json() == first.json()
            assert again.headers["Idempotent-Replayed"] == "true" and again.headers["ETag"] == first.headers["ETag"]
            assert (await me.get("/api/v1/cart")).json()["items"][0]["quantity"] == 2
            problem(await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 3}, headers=key), 409,
                    "idempotency-key-reused")
            problem(await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1},
                                  headers={"Idempotency-Key": "x" * 256}), 400, "invalid-idempotency-key")
            # A refusal is an answer too: replayed, not run again.
            refusal_key = {"Idempotency-Key": str(uuid.uuid4())}
            refused = await me.patch(f"/api/v1/cart/items/{shoe}", json={"quantity": 21}, headers=refusal_key)
            replay = await me.patch(f"/api/v1/cart/items/{shoe}", json={"quantity": 21}, headers=refusal_key)
            assert (refused.status_code, replay.status_code) == (422, 422)
            assert replay.headers["Idempotent-Replayed"] == "true"

    async def test_a_guests_first_add_replays_with_its_cart_id(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        shoe = sku()
        await shop.product(tenant, {shoe: 1000})
        async with shop.guest(tenant) as guest:
            key = {"Idempotency-Key": str(uuid.uuid4())}
            first = await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1}, headers=key)
            again = await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1}, headers=key)
            assert again.headers["X-Cart-Id"] == first.headers["X-Cart-Id"] == first.json()["id"]
            guest.headers["X-Cart-Id"] = first.json()["id"]
            assert (await guest.get("/api/v1/cart")).json()["items"][0]["quantity"] == 1


class TestGuestExpiry:
    async def test_an_idle_guest_cart_is_gone_and_swept(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        shoe = sku()
        await shop.product(tenant, {shoe: 1000})
        async with shop.guest(tenant) as guest:
            stale_id = (await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})).json()["id"]
            fresh_id = (await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})).json()["id"]
        carts = Cart.__table__
        async with shop.cart.runtime.db.engine.begin() as conn:
            await conn.execute(update(carts).where(carts.c.owner == f"guest:{stale_id}")
                               .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
        async with shop.guest(tenant, stale_id) as guest:
            problem(await guest.get("/api/v1/cart"), 404, "cart-not-found")
            added = (await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})).json()
            assert added["id"] != stale_id
        assert await expire_guest_carts(shop.cart.runtime) >= 1
        async with shop.cart.runtime.db.engine.connect() as conn:
            owners = set((await conn.scalars(select(carts.c.owner))).all())
            assert f"guest:{stale_id}" not in owners and f"guest:{fresh_id}" in owners
            assert await conn.scalar(select(func.count()).select_from(carts).where(
                carts.c.expires_at <= dt.datetime.now(dt.UTC))) == 0
        async with shop.guest(tenant, fresh_id) as guest:
            assert (await guest.get("/api/v1/cart")).status_code == 200


class TestOperations:
    async def test_mutations_are_counted_by_kind_and_outcome(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        shoe = sku()
        await shop.product(tenant, {shoe: 1000}, stock=1)

        def counted(kind: str, outcome: str) -> float:
            return REGISTRY.get_sample_value("amazonlite_cart_mutations_total", {"kind": kind, "outcome": outcome}
                                             ) or 0.0

        kinds = [("add", "ok"), ("add", "insufficient-stock"), ("merge", "ok"), ("merge", "cart-not-found")]
        before = {k: counted(*k) for k in kinds}
        async with shop.guest(tenant) as guest:
            guest_id = (await guest.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1})).json()["id"]
        async with shop.customer(tenant) as me, shop.customer(tenant) as other:
            problem(await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 2}), 409, "insufficient-stock")
            assert (await me.post("/api/v1/cart/merge", json={"guest_cart_id": guest_id})).status_code == 200
            assert (await me.post("/api/v1/cart/merge", json={"guest_cart_id": guest_id})).status_code == 200
            problem(await other.post("/api/v1/cart/merge", json={"guest_cart_id": guest_id}), 404, "cart-not-found")
        after = {k: counted(*k) for k in kinds}
        assert {k: after[k] - before[k] for k in kinds} == {
            ("add", "ok"): 1, ("add", "insufficient-stock"): 1, ("merge", "ok"): 2, ("merge", "cart-not-found"): 1}

    async def test_the_document_states_the_headers_and_problems(self, shop: Shop) -> None:
        document = shop.cart.app.openapi()
        add = document["paths"]["/api/v1/cart/items"]["post"]
        headers = {p["name"] for p in add["parameters"] if p["in"] == "header"}
        assert {"X-Cart-Id", "If-Match", "Idempotency-Key"} <= headers
        described = "\n".join(r.get("description", "") for r in add["responses"].values())
        for problem_type in ("sku-not-found", "insufficient-stock", "cart-version-mismatch",
                             "availability-unavailable", "catalog-unavailable", "quantity-over-limit"):
            assert problem_type in described
        coupon = document["paths"]["/api/v1/cart/coupon"]["post"]
        described = "\n".join(r.get("description", "") for r in coupon["responses"].values())
        for problem_type in ("coupon-not-found", "coupon-expired", "coupon-not-started", "coupon-minimum-not-met",
                             "coupon-exhausted", "coupon-already-used"):
            assert problem_type in described
        assert {"get", "post"} <= set(document["paths"]["/api/v1/coupons"])
        assert {"get", "patch", "delete"} <= set(document["paths"]["/api/v1/coupons/{code}"])

        def problems(path: str, method: str) -> str:
            return "\n".join(r.get("description", "") for r in document["paths"][path][method]["responses"].values())

        for path, methods in document["paths"].items():
            for method, operation in methods.items():
                if not path.startswith("/api/v1/cart"):
                    continue
                answer_headers = set(operation["responses"]["200"].get("headers", {}))
                assert {"ETag", "X-Cart-Id"} <= answer_headers, (method, path)
                assert ("Idempotent-Replayed" in answer_headers) == (method != "get"), (method, path)
                if method != "get":
                    assert "ETag" in operation["responses"]["412"]["headers"], (method, path)
        # Only the problems an operation can answer.
        assert "catalog-unavailable" not in problems("/api/v1/cart/items/{sku}", "delete")
        assert "catalog-unavailable" not in problems("/api/v1/cart/coupon", "post")
        assert "catalog-unavailable" not in problems("/api/v1/cart/coupon", "delete")
        assert "too-many-lines" not in problems("/api/v1/cart/items/{sku}", "patch")
        assert "cart-not-found" not in problems("/api/v1/cart/items", "post")
        assert "Authentication is required" not in problems("/api/v1/coupons", "get")


class TestCartBusy:
    async def test_a_busy_cart_says_retry_and_a_retry_with_the_same_key_runs_again(self, shop: Shop) -> None:
        tenant = await shop.tenant()
        shoe = sku()
        await shop.product(tenant, {shoe: 1000})
        store = shop.cart.runtime.state.carts
        original = store.save

        async def always_loses(session: object, cart: object, **kwargs: object) -> bool:
            return False  # every compare-and-set finds another change first

        async with shop.customer(tenant) as me:
            key = {"Idempotency-Key": str(uuid.uuid4())}
            store.save = always_loses
            try:
                busy = await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1}, headers=key)
            finally:
                store.save = original
            problem(busy, 409, "cart-busy")
            assert busy.headers["Retry-After"] == "1"
            again = await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1}, headers=key)
            assert again.status_code == 200, again.text
            assert "Idempotent-Replayed" not in again.headers
            assert [i["quantity"] for i in again.json()["items"]] == [1]


@contextmanager
def answering(shop: Shop, target: str, path: str, items: list[object]) -> Iterator[None]:
    """`target` answers `{"items": items}` at `path`, whatever is asked: a broken deployment of it
    (no real service of ours answers so; only a stand-in can)."""
    broken = FastAPI()

    @broken.get(path)
    async def answer() -> dict[str, object]:
        return {"items": items}

    runtime = shop.cart.runtime
    running = runtime.services
    directory = ServiceDirectory("cart", runtime.internal_tokens)
    for name, svc in (("tenants", shop.tenants), ("catalog", shop.catalog), ("inventory", shop.inventory)):
        directory.register(name, app=broken if name == target else svc.app)
    runtime.services = directory
    try:
        yield
    finally:
        runtime.services = running


class TestUnreadableAnswers:
    @pytest.mark.parametrize("item", [{"available": None}, {"available": "many"}, {}, "SKU"])
    async def test_an_inventory_item_the_cart_cannot_read_is_a_503(self, shop: Shop, item: object) -> None:
        tenant = await shop.tenant()
        shoe = sku()
        await shop.product(tenant, {shoe: 1000})
        bad = {"sku": shoe, **item} if isinstance(item, dict) else item
        async with shop.customer(tenant) as me:
            with answering(shop, "inventory", "/api/v1/inventory", [bad]):
                problem(await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1}), 503,
                        "availability-unavailable")
            assert (await me.get("/api/v1/cart")).json()["items"] == []

    @pytest.mark.parametrize("change", [{"product_id": "not-a-uuid"}, {"price": None}, {"price": {"amount": 5}},
                                        {"updated_at": "2026-01-01T00:00:00"}, {"updated_at": None}])
    async def test_a_catalog_item_the_cart_cannot_read_is_a_503(self, shop: Shop, change: dict[str, object]) -> None:
        tenant = await shop.tenant()
        shoe = sku()
        product = await shop.product(tenant, {shoe: 1000})
        item = {"sku": shoe, "product_id": product["id"], "product_name": "Trail Shoe", "variant_name": "x",
                "status": "active", "price": money(1000), "updated_at": product["updated_at"], **change}
        async with shop.customer(tenant) as me:
            with answering(shop, "catalog", "/api/v1/skus", [item]):
                problem(await me.post("/api/v1/cart/items", json={"sku": shoe, "quantity": 1}), 503,
                        "catalog-unavailable")
            assert (await me.get("/api/v1/cart")).json()["items"] == []
