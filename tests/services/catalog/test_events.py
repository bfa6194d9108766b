from __future__ import annotations

import uuid
from pathlib import Path

from amazonlite.contracts import ProductDeletedV1, ProductUpdatedV1
from amazonlite.services.catalog.app import SERVICE
from tests.services.catalog.factories import admin, outbox, product_body, variant
from tests.support.harness import running_service


class TestProductEvents:
    async def test_create_update_and_delete_each_record_their_event(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc, tenant="acme") as api:
            brand = (await api.post("/api/v1/brands", json={"name": "Sonique"})).json()
            category = (await api.post("/api/v1/categories", json={"name": "Audio"})).json()
            product = (await api.post("/api/v1/products", json=product_body(
                name="Pulse Earbuds", brand_id=brand["id"], category_id=category["id"], status="draft",
                variants=[variant(sku="PULSE-BLK", price=399_900, options={"colour": "Black"})]))).json()

            created = await outbox(svc)
            assert [e["topic"] for e in created] == ["product.updated.v1"]
            event = created[0]
            assert event["aggregate_id"] == product["id"]
            assert event["tenantId"] == "acme"
            assert event["producer"] == "catalog"
            payload = ProductUpdatedV1.model_validate(event["payload"])
            assert payload.product_id == uuid.UUID(product["id"])
            assert (payload.name, payload.slug, payload.status) == ("Pulse Earbuds", "pulse-earbuds", "draft")
            assert (payload.brand_id, payload.brand_name) == (uuid.UUID(brand["id"]), "Sonique")
            assert (payload.category_id, payload.category_name) == (uuid.UUID(category["id"]), "Audio")
            assert payload.attributes == product["attributes"]
            assert [(v.sku, v.options, v.price.amount, v.price.currency) for v in payload.variants] == [
                ("PULSE-BLK", {"colour": "Black"}, 399_900, "INR")]

            await api.patch(f"/api/v1/products/{product['id']}", json={
                "status": "active", "brand_id": None,
                "variants": [variant(sku="PULSE-BLK", price=349_900), variant(sku="PULSE-WHT", price=359_900)]})
            updated = (await outbox(svc))[-1]
            assert updated["topic"] == "product.updated.v1"
            assert updated["aggregate_id"] == product["id"]
            payload = ProductUpdatedV1.model_validate(updated["payload"])
            assert payload.status == "active"
            assert (payload.brand_id, payload.brand_name) == (None, None)
            assert [(v.sku, v.price.amount) for v in payload.variants] == [("PULSE-BLK", 349_900),
                                                                           ("PULSE-WHT", 359_900)]

            assert (await api.delete(f"/api/v1/products/{product['id']}")).status_code == 204
            events = await outbox(svc)
            assert [e["topic"] for e in events] == ["product.updated.v1"] * 2 + ["product.deleted.v1"]
            deleted = ProductDeletedV1.model_validate(events[-1]["payload"])
            assert deleted.product_id == uuid.UUID(product["id"])
            assert sorted(deleted.skus) == ["PULSE-BLK", "PULSE-WHT"]
            assert events[-1]["aggregate_id"] == product["id"]

    async def test_a_failed_request_records_no_event(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api:
            product = (await api.post("/api/v1/products", json=product_body(sku="ONLY-1"))).json()
            before = await outbox(svc)
            failures = [
                await api.post("/api/v1/products", json=product_body(sku="ONLY-1")),
                await api.post("/api/v1/products", json=product_body(category_id=str(uuid.uuid4()))),
                await api.patch(f"/api/v1/products/{product['id']}", json={"brand_id": str(uuid.uuid4())}),
                await api.patch(f"/api/v1/products/{uuid.uuid4()}", json={"name": "Ghost"}),
                await api.delete(f"/api/v1/products/{uuid.uuid4()}"),
            ]
            assert [r.status_code for r in failures] == [409, 422, 422, 404, 404]
            assert await outbox(svc) == before

    async def test_renaming_a_category_or_brand_republishes_its_products(self, sqlite_url: str,
                                                                        tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api:
            brand = (await api.post("/api/v1/brands", json={"name": "Voltra"})).json()
            phones = (await api.post("/api/v1/categories", json={"name": "Phones"})).json()
            tablets = (await api.post("/api/v1/categories", json={"name": "Tablets"})).json()
            nova = (await api.post("/api/v1/products", json=product_body(
                name="Nova", category_id=phones["id"], brand_id=brand["id"]))).json()
            lite = (await api.post("/api/v1/products", json=product_body(
                name="Lite", category_id=phones["id"]))).json()
            tab = (await api.post("/api/v1/products", json=product_body(
                name="Tab", category_id=tablets["id"], brand_id=brand["id"]))).json()
            seen = len(await outbox(svc))

            await api.patch(f"/api/v1/categories/{phones['id']}", json={"name": "Mobile Phones"})
            republished = (await outbox(svc))[seen:]
            assert sorted(e["aggregate_id"] for e in republished) == sorted([nova["id"], lite["id"]])
            assert {e["payload"]["category_name"] for e in republished} == {"Mobile Phones"}

            await api.patch(f"/api/v1/brands/{brand['id']}", json={"name": "Voltra Mobile"})
            republished = (await outbox(svc))[seen + 2:]
            assert sorted(e["aggregate_id"] for e in republished) == sorted([nova["id"], tab["id"]])
            assert {e["payload"]["brand_name"] for e in republished} == {"Voltra Mobile"}
            by_product = {e["aggregate_id"]: e["payload"] for e in republished}
            assert by_product[nova["id"]]["category_name"] == "Mobile Phones"

            # new attribute definitions change no product as it reads: nothing is published
            changed = await api.patch(f"/api/v1/categories/{tablets['id']}", json={"attributes": [
                {"key": "material", "label": "Material", "type": "text"}]})
            assert changed.status_code == 200, changed.text
            assert len(await outbox(svc)) == seen + 4
