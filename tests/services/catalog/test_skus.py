from __future__ import annotations

from pathlib import Path

from amazonlite.services.catalog.app import SERVICE
from tests.services.catalog.factories import admin, anonymous, assert_problem, product_body, variant
from tests.support.harness import running_service


def skus_query(*skus: str) -> list[tuple[str, str]]:
    return [("sku", s) for s in skus]


class TestSkuLookup:
    async def test_answers_known_skus_in_the_order_asked_and_leaves_out_the_rest(self, sqlite_url: str,
                                                                                tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc) as api, \
                anonymous(svc) as guest:
            shoe = (await api.post("/api/v1/products", json=product_body(name="Trail Shoe", variants=[
                variant(sku="SHOE-8", name="UK 8", price=149_900), variant(sku="SHOE-9", name="UK 9", price=159_900),
            ]))).json()
            await api.post("/api/v1/products", json=product_body(name="Draft Hat", sku="HAT-1", status="draft"))

            answer = await guest.get("/api/v1/skus", params=skus_query("SHOE-9", "NOPE", "HAT-1", "SHOE-8", "SHOE-9"))
            assert answer.status_code == 200, answer.text
            items = answer.json()["items"]
            assert [i["sku"] for i in items] == ["SHOE-9", "SHOE-8"]
            assert items[0] == {"sku": "SHOE-9", "product_id": shoe["id"], "product_name": "Trail Shoe",
                                "variant_name": "UK 9", "status": "active",
                                "price": {"amount": 159_900, "currency": "INR"},
                                "updated_at": shoe["updated_at"]}  # its product's, as product.updated.v1

            # Admins also see the SKUs of products that are not active.
            seen = (await api.get("/api/v1/skus", params=skus_query("HAT-1"))).json()["items"]
            assert [(i["sku"], i["status"]) for i in seen] == [("HAT-1", "draft")]

    async def test_another_tenant_sees_none_of_them(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, admin(svc, tenant="acme") as api, \
                admin(svc, tenant="globex") as other:
            await api.post("/api/v1/products", json=product_body(sku="ACME-1"))
            answer = await other.get("/api/v1/skus", params=skus_query("ACME-1"))
            assert answer.json() == {"items": []}

    async def test_bad_lookups_are_problems(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, anonymous(svc) as guest:
            assert_problem(await guest.get("/api/v1/skus"), 422)
            assert_problem(await guest.get("/api/v1/skus", params=skus_query(*(f"S-{i}" for i in range(101)))), 422)
            assert_problem(await guest.get("/api/v1/skus", params=skus_query("bad sku!")), 422)
            assert_problem(await guest.get("/api/v1/skus", params=skus_query("x" * 65)), 422)
            assert (await guest.get("/api/v1/skus", params=skus_query(*(f"S-{i}" for i in range(100))))
                    ).status_code == 200

    async def test_is_documented(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            operation = svc.app.openapi()["paths"]["/api/v1/skus"]["get"]
            parameter = operation["parameters"][0]
            assert parameter["name"] == "sku"
            assert (parameter["schema"]["minItems"], parameter["schema"]["maxItems"]) == (1, 100)
            assert "`validation-error`" in operation["responses"]["422"]["description"]
            answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
            assert answer == {"$ref": "#/components/schemas/SkuList"}
            item = svc.app.openapi()["components"]["schemas"]["SkuInfo"]
            assert {"sku", "product_id", "status", "price", "updated_at"} <= set(item["required"])
