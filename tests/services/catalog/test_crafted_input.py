"""Input a client crafted rather than got from us: cursors, non-finite numbers, NUL characters.
Each is refused as a problem (400 or 422) on every database, never a 500 and never stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from amazonlite.platform.pagination import encode_cursor
from amazonlite.services.catalog import schemas
from amazonlite.services.catalog.app import SERVICE
from tests.services.catalog.factories import admin, anonymous, assert_problem, count_products, product_body, variant
from tests.support.harness import running_service

LAST_ID = "01a201c1-c180-7e63-99a6-ca76f0cda605"


class TestCraftedProductCursors:
    async def test_a_cursor_with_values_we_never_issue_is_400(self, any_database_url: str, tmp_path: Path) -> None:
        crafted: list[list[Any]] = [
            ["newest", "9999-12-31T23:59:59-05:00", LAST_ID],  # past year 9999 once in UTC
            ["newest", "0001-01-01T00:00:00+05:00", LAST_ID],  # before year 1 once in UTC
            ["newest", "3000-01-01T00:00:00+00:00", LAST_ID],  # no product is that new
            ["newest", "1900-01-01T00:00:00+00:00", LAST_ID],
            ["newest", "2026-01-01T00:00:00", LAST_ID],  # no offset
            ["newest", "yesterday", LAST_ID],
            ["newest", 1_700_000_000, LAST_ID],
            ["price_asc", 2**63, LAST_ID],
            ["price_desc", 2**64 - 1, LAST_ID],
            ["price_asc", -1, LAST_ID],
            ["price_asc", 10**13 + 1, LAST_ID],
            ["price_asc", 1.5, LAST_ID],
            ["price_asc", True, LAST_ID],
            ["name", "a\x00b", LAST_ID],
            ["name", "x" * 201, LAST_ID],
            ["name", 7, LAST_ID],
            ["name", "a", 5],
            ["name", "a", "not-a-uuid"],
            ["name", "a", ["list"]],
        ]
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, anonymous(svc) as public:
            for values in crafted:
                response = await public.get("/api/v1/products",
                                            params={"sort": values[0], "cursor": encode_cursor(values)})
                assert response.status_code == 400, (values, response.text)
                assert_problem(response, 400, "invalid-cursor")

    async def test_a_cursor_in_range_still_pages(self, any_database_url: str, tmp_path: Path) -> None:
        async with (running_service(SERVICE, any_database_url, tmp_path) as svc,
                    admin(svc) as api, anonymous(svc) as public):
            product = (await api.post("/api/v1/products", json=product_body(name="Kettle", price=2_500))).json()
            fine = [
                ["newest", "2999-01-01T05:30:00+05:30", LAST_ID],  # any offset, normalised to UTC
                ["price_asc", 0, LAST_ID],
                ["price_desc", 10**13, LAST_ID],
                ["name", "", LAST_ID],
            ]
            for values in fine:
                response = await public.get("/api/v1/products",
                                            params={"sort": values[0], "cursor": encode_cursor(values)})
                assert response.status_code == 200, (values, response.text)
                assert [p["id"] for p in response.json()["items"]] == [product["id"]], values


class TestCraftedNameCursors:
    async def test_a_category_or_brand_cursor_with_values_we_never_issue_is_400(
            self, any_database_url: str, tmp_path: Path) -> None:
        crafted: list[list[Any]] = [["a\x00b", LAST_ID], ["x" * 121, LAST_ID], [7, LAST_ID], ["a", "nope"]]
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, anonymous(svc) as public:
            for listing in ("/api/v1/categories", "/api/v1/brands"):
                for values in crafted:
                    response = await public.get(listing, params={"cursor": encode_cursor(values)})
                    assert response.status_code == 400, (listing, values, response.text)
                    assert_problem(response, 400, "invalid-cursor")


def _raw_product(attributes: str) -> bytes:
    return (b'{"name": "Scale", "status": "active", "attributes": ' + attributes.encode()
            + b', "variants": [{"sku": "SCALE-1", "name": "Scale", "price": {"amount": 100, "currency": "INR"}}]}')


class TestNonFiniteNumbers:
    async def test_nan_and_infinity_in_attributes_are_422_and_not_stored(self, any_database_url: str,
                                                                         tmp_path: Path) -> None:
        bad = ['{"weight": NaN}', '{"weight": Infinity}', '{"weight": -Infinity}', '{"sizes": [1.5, NaN]}']
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as api:
            for attributes in bad:
                response = await api.post("/api/v1/products", content=_raw_product(attributes),
                                          headers={"content-type": "application/json"})
                assert response.status_code == 422, (attributes, response.text)
                assert_problem(response, 422, "validation-error")
            assert await count_products(svc) == 0

            product = (await api.post("/api/v1/products", content=_raw_product('{"weight": 1.25}'),
                                      headers={"content-type": "application/json"})).json()
            assert product["attributes"] == {"weight": 1.25}
            for attributes in bad:
                response = await api.patch(f"/api/v1/products/{product['id']}",
                                           content=b'{"attributes": ' + attributes.encode() + b"}",
                                           headers={"content-type": "application/json"})
                assert_problem(response, 422, "validation-error")
            assert (await api.get(f"/api/v1/products/{product['id']}")).json()["attributes"] == {"weight": 1.25}


NUL = "a\x00b"


def _nul_products() -> list[dict[str, Any]]:
    return [
        product_body(name=NUL),
        product_body(description=NUL),
        product_body(slug=NUL),
        product_body(attributes={NUL: "x"}),
        product_body(attributes={"material": NUL}),
        product_body(attributes={"sizes": ["M", NUL]}),
        product_body(media=[{"url": "https://images.amazonlite.dev/1.jpg", "alt": NUL}]),
        product_body(variants=[variant(sku="NUL-1", name=NUL)]),
        product_body(variants=[variant(sku="NUL-1", options={NUL: "Red"})]),
        product_body(variants=[variant(sku="NUL-1", options={"colour": NUL})]),
        product_body(variants=[variant(sku="NUL\x001")]),
    ]


NUL_PATCHES: list[dict[str, Any]] = [
    {"name": NUL}, {"description": NUL}, {"slug": NUL}, {"attributes": {"k": NUL}}, {"attributes": {NUL: 1}},
    {"media": [{"url": "https://images.amazonlite.dev/1.jpg", "alt": NUL}]},
    {"variants": [variant(sku="NUL-1", options={"size": NUL})]},
]


class TestNulCharacters:
    def test_every_string_field_of_the_schemas_refuses_a_nul(self) -> None:
        """Whatever the edge does, the service's own schemas never let a NUL through."""
        refused: list[tuple[type[BaseModel], dict[str, Any]]] = [
            *((schemas.ProductCreate, body) for body in _nul_products()),
            *((schemas.ProductUpdate, patch) for patch in NUL_PATCHES),
            *((model, {"name": NUL}) for model in (schemas.CategoryCreate, schemas.CategoryUpdate,
                                                   schemas.BrandCreate, schemas.BrandUpdate)),
            *((model, {"name": "Fine", "slug": NUL}) for model in (schemas.CategoryCreate, schemas.BrandCreate)),
        ]
        for model, data in refused:
            with pytest.raises(ValidationError):
                model.model_validate(data)
        schemas.ProductCreate.model_validate(product_body(name="Plain"))  # the same bodies without NUL pass

    async def test_a_nul_over_http_is_refused_and_nothing_is_stored(self, any_database_url: str,
                                                                    tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as api:
            for body in _nul_products():
                _refused(await api.post("/api/v1/products", json=body))
            assert await count_products(svc) == 0

            product = (await api.post("/api/v1/products", json=product_body(name="Plain"))).json()
            for patch in NUL_PATCHES:
                _refused(await api.patch(f"/api/v1/products/{product['id']}", json=patch))
            assert (await api.get(f"/api/v1/products/{product['id']}")).json() == product

            for listing in ("/api/v1/categories", "/api/v1/brands"):
                _refused(await api.post(listing, json={"name": NUL}))
                _refused(await api.post(listing, json={"name": "Fine", "slug": NUL}))
                item = (await api.post(listing, json={"name": "Fine"})).json()
                _refused(await api.patch(f"{listing}/{item['id']}", json={"name": NUL}))
                assert (await api.get(listing)).json()["items"] == [item]


def _refused(response: Any) -> None:
    """Refused as a client error: 400 at the edge or 422 from the service's schemas."""
    assert response.status_code in (400, 422), response.text
    assert_problem(response, response.status_code)


class TestControlCharactersAndCurrencies:
    """Names are one line of visible text, descriptions may have lines, prices carry an ISO 4217 code."""

    async def test_junk_is_422_and_nothing_is_stored(self, any_database_url: str, tmp_path: Path) -> None:
        junk_products = [
            product_body(name="Kettle\nBoiler"), product_body(name="Kettle\u202e"), product_body(name="Kettle\x1b[1m"),
            product_body(description="Boils water\u0007"), product_body(description="Boils\U000e0041 water"),
            product_body(variants=[variant(sku="K-1", name="Steel\tblue")]),
            product_body(variants=[variant(sku="K-1", options={"colour": "Red\u200b"})]),
            product_body(media=[{"url": "https://images.amazonlite.dev/1.jpg", "alt": "a\nb"}]),
            product_body(variants=[variant(sku="K-1", currency="JED")]),
            product_body(variants=[variant(sku="K-1", currency="inr")]),
        ]
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as api:
            for body in junk_products:
                response = await api.post("/api/v1/products", json=body)
                assert response.status_code == 422, (body, response.text)
            assert await count_products(svc) == 0
            for listing in ("/api/v1/categories", "/api/v1/brands"):
                for name in ("Kitchen\nware", "Kitchen\u2066ware"):
                    assert (await api.post(listing, json={"name": name})).status_code == 422, (listing, name)
                assert (await api.get(listing)).json()["items"] == []

            kept = product_body(name="चाय Kettle 👩\u200d🍳", description="Boils water.\n\n\tFast.",
                                variants=[variant(sku="K-1", currency="EUR")])
            created = await api.post("/api/v1/products", json=kept)
            assert created.status_code == 201, created.text
            body = created.json()
        assert (body["name"], body["description"], body["variants"][0]["price"]["currency"]) == (
            "चाय Kettle 👩\u200d🍳", "Boils water.\n\n\tFast.", "EUR")
