"""`GET /products` beyond the basics: filters by attribute values, the rating order, compare-at
prices, and a cursor that stays true while products come and go."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

from amazonlite.contracts import ProductRatingUpdatedV1
from amazonlite.services.catalog.app import SERVICE
from tests.services.catalog.factories import admin, anonymous, assert_problem, outbox, product_body, variant
from tests.support.harness import Harness, running_service

PRODUCTS = "/api/v1/products"


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def create(api: Any, name: str, **extra: Any) -> str:
    response = await api.post(PRODUCTS, json=product_body(name=name, **extra))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def rate(svc: Harness, product_id: str, average: float, count: int) -> None:
    histogram = {str(star): 0 for star in range(1, 6)}
    histogram[str(round(average))] = count
    await svc.deliver(ProductRatingUpdatedV1(product_id=uuid.UUID(product_id), average=average, count=count,
                                             histogram=histogram, as_of=dt.datetime.now(dt.UTC)))


class TestAttributeFilters:
    async def test_values_of_one_key_widen_and_keys_narrow(self, any_database_url: str, tmp_path: Path) -> None:
        async with (running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as api,
                    anonymous(svc) as public):
            red_cotton = await create(api, "Red cotton", attributes={"colour": "Red", "material": "cotton",
                                                                     "sizes": ["S", "M"], "pages": 300})
            blue_cotton = await create(api, "Blue cotton", attributes={"colour": "blue", "material": "Cotton",
                                                                       "sizes": ["L"], "organic": True})
            red_silk = await create(api, "Red silk", attributes={"colour": "red", "material": "silk",
                                                                 "pages": 300.0, "weight": 1.5})

            def find(*pairs: str, **params: Any) -> Any:
                return public.get(PRODUCTS, params={"attribute": list(pairs), "sort": "name", **params})

            assert ids(await find("colour:red")) == [red_cotton, red_silk]  # text without regard to case
            assert ids(await find("colour:red", "colour:blue")) == [blue_cotton, red_cotton, red_silk]
            assert ids(await find("colour:red", "material:cotton")) == [red_cotton]
            assert ids(await find("colour:red", "colour:blue", "material:cotton")) == [blue_cotton, red_cotton]
            assert ids(await find("sizes:M")) == [red_cotton]  # an element of a list
            assert ids(await find("pages:300")) == [red_cotton, red_silk]  # 300 and 300.0 are one number
            assert ids(await find("organic:true")) == [blue_cotton]
            assert ids(await find("weight:1.5")) == [red_silk]
            assert ids(await find("colour:green")) == []
            assert ids(await find("colour: red ")) == [red_cotton, red_silk]
            assert ids(await find("colour:red", limit=1)) == [red_cotton]

            # A change of attributes moves the product between filters.
            await api.patch(f"{PRODUCTS}/{red_silk}", json={"attributes": {"colour": "green"}})
            assert ids(await find("colour:red")) == [red_cotton]
            assert ids(await find("colour:green")) == [red_silk]
            await api.delete(f"{PRODUCTS}/{red_cotton}")
            assert ids(await find("colour:red")) == []

            for bad in ("colour", ":red", "colour:", "colour:  "):
                assert_problem(await find(bad), 422, "invalid-attribute-filter")
            assert_problem(await public.get(PRODUCTS, params={"attribute": [f"k{i}:v" for i in range(21)]}), 422)

    async def test_another_tenants_values_match_nothing(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            async with admin(svc) as api:
                await create(api, "Ours", attributes={"colour": "red"})
            async with admin(svc, tenant="acme") as other:
                theirs = await create(other, "Theirs", attributes={"colour": "red"})
                assert ids(await other.get(PRODUCTS, params={"attribute": "colour:red"})) == [theirs]


class TestRatingOrder:
    async def test_best_rated_first_unrated_last_and_the_cursor_walks_it(self, any_database_url: str,
                                                                         tmp_path: Path) -> None:
        async with (running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as api,
                    anonymous(svc) as public):
            products = [await create(api, f"P{i}") for i in range(6)]
            for product_id, average in zip(products, (3.5, 4.8, 2.0, 4.8), strict=False):
                await rate(svc, product_id, average, 3)
            expected = [*sorted([products[1], products[3]], reverse=True), products[0], products[2],
                        *sorted(products[4:], reverse=True)]  # ties: the later id first
            walked: list[str] = []
            cursor = None
            while True:
                page = (await public.get(PRODUCTS, params={"sort": "rating", "limit": 2,
                                                           **({"cursor": cursor} if cursor else {})})).json()
                walked += [p["id"] for p in page["items"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert walked == expected
            listed = (await public.get(PRODUCTS, params={"sort": "rating"})).json()["items"]
            assert [p["rating"] for p in listed[:3]] == [{"average": 4.8, "count": 3}] * 2 + [
                {"average": 3.5, "count": 3}]
            assert listed[-1]["rating"] == {"average": None, "count": 0}


class TestCompareAtPrice:
    async def test_it_is_kept_shown_and_published_and_must_be_higher(self, any_database_url: str,
                                                                     tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as api:
            offer = variant(sku="SALE-1", price=99_900)
            offer["compare_at_price"] = {"amount": 149_900, "currency": "INR"}
            created = await api.post(PRODUCTS, json=product_body(name="On sale", variants=[offer]))
            assert created.status_code == 201, created.text
            product = created.json()
            assert product["variants"][0]["compare_at_price"] == {"amount": 149_900, "currency": "INR"}
            shown = (await api.get(f"{PRODUCTS}/{product['id']}")).json()
            assert shown["variants"][0]["compare_at_price"] == {"amount": 149_900, "currency": "INR"}
            event = (await outbox(svc))[-1]["payload"]
            assert event["variants"][0]["compare_at_price"] == {"amount": 149_900, "currency": "INR"}

            offer["compare_at_price"] = None  # the offer ends
            changed = await api.patch(f"{PRODUCTS}/{product['id']}", json={"variants": [offer]})
            assert changed.json()["variants"][0]["compare_at_price"] is None

            for was in ({"amount": 99_900, "currency": "INR"}, {"amount": 50_000, "currency": "INR"},
                        {"amount": 149_900, "currency": "USD"}):
                offer["compare_at_price"] = was
                assert_problem(await api.patch(f"{PRODUCTS}/{product['id']}", json={"variants": [offer]}), 422)
            assert (await api.get(f"{PRODUCTS}/{product['id']}")).json()["variants"][0]["compare_at_price"] is None


class TestStableCursor:
    async def test_products_added_or_removed_between_pages_never_repeat_or_skip_another(
            self, any_database_url: str, tmp_path: Path) -> None:
        async with (running_service(SERVICE, any_database_url, tmp_path) as svc, admin(svc) as api,
                    anonymous(svc) as public):
            names = [f"item-{n:02d}" for n in range(0, 20, 2)]
            by_name = {name: await create(api, name) for name in names}
            first = (await public.get(PRODUCTS, params={"sort": "name", "limit": 4})).json()
            seen = [p["name"] for p in first["items"]]
            # Meanwhile: one already shown goes, one not yet shown goes, new ones arrive on both sides.
            await api.delete(f"{PRODUCTS}/{by_name['item-02']}")
            await api.delete(f"{PRODUCTS}/{by_name['item-10']}")
            await create(api, "item-01")
            await create(api, "item-13")
            cursor = first["next_cursor"]
            while cursor:
                page = (await public.get(PRODUCTS, params={"sort": "name", "limit": 4, "cursor": cursor})).json()
                seen += [p["name"] for p in page["items"]]
                cursor = page["next_cursor"]
            assert len(seen) == len(set(seen))
            # Every product there throughout is seen once; the new one after the cursor too, the one before not.
            assert seen == ["item-00", "item-02", "item-04", "item-06", "item-08", "item-12", "item-13",
                            "item-14", "item-16", "item-18"]
