"""The catalog's data migrations: rows written before a migration read right after it."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from amazonlite.platform.db import UTC, create_engine
from amazonlite.platform.migrations import upgrade
from amazonlite.services.catalog.app import SERVICE

BEFORE_DEPTH = "5d8e2a7c4b19"  # the revision before attribute definitions and breadcrumbs

# The tables as they were at BEFORE_DEPTH (only the columns written here), and what came after.
CATEGORIES = sa.table("categories", *(sa.column(n, sa.Uuid()) for n in ("id", "parent_id")),
                      *(sa.column(n, sa.String()) for n in ("tenant_id", "name", "slug")),
                      *(sa.column(n, UTC()) for n in ("created_at", "updated_at")), sa.column("path", sa.JSON()))
PRODUCTS = sa.table("products", *(sa.column(n, sa.Uuid()) for n in ("id", "category_id")),
                    *(sa.column(n, sa.String()) for n in ("tenant_id", "name", "slug", "description", "status",
                                                          "currency")),
                    *(sa.column(n, sa.JSON()) for n in ("attributes", "media")),
                    sa.column("min_price", sa.BigInteger()), sa.column("rating_count", sa.Integer()),
                    sa.column("rating_average", sa.Float()),
                    *(sa.column(n, UTC()) for n in ("created_at", "updated_at")))
VALUES = sa.table("product_attribute_values", *(sa.column(n, sa.String()) for n in ("tenant_id", "key", "value")))


async def run(url: str, work: Any) -> Any:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            return await work(conn)
    finally:
        await engine.dispose()


class TestCatalogDepthMigration:
    def test_existing_categories_get_breadcrumbs_and_products_their_filter_rows(self, any_database_url: str) -> None:
        url = any_database_url
        upgrade(SERVICE.name, SERVICE.migrations, url, revision=BEFORE_DEPTH)
        top, child = uuid.uuid4(), uuid.uuid4()
        now = dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)

        async def write(conn: Any) -> None:
            row = {"tenant_id": "acme", "created_at": now, "updated_at": now}
            await conn.execute(sa.insert(CATEGORIES).values(id=top, name="Books", slug="books", parent_id=None, **row))
            await conn.execute(sa.insert(CATEGORIES).values(id=child, name="Crime", slug="crime", parent_id=top,
                                                            **row))
            await conn.execute(sa.insert(PRODUCTS).values(
                id=uuid.uuid4(), name="Novel", slug="novel", description="", status="active", category_id=child,
                attributes={"author": "Meera", "tags": ["Crime", "Mumbai"], "pages": 320.0}, media=[],
                min_price=100, currency="INR", rating_count=0, **row))

        asyncio.run(run(url, write))
        upgrade(SERVICE.name, SERVICE.migrations, url)

        async def look(conn: Any) -> tuple[Any, ...]:
            paths = {r.name: r.path for r in await conn.execute(sa.select(CATEGORIES.c.name, CATEGORIES.c.path))}
            values = sorted(tuple(r) for r in await conn.execute(sa.select(VALUES.c.tenant_id, VALUES.c.key,
                                                                            VALUES.c.value)))
            return paths, values, (await conn.execute(sa.select(PRODUCTS.c.rating_average))).scalar_one()

        paths, values, average = asyncio.run(run(url, look))
        books = {"id": str(top), "name": "Books", "slug": "books"}
        assert paths == {"Books": [books], "Crime": [books, {"id": str(child), "name": "Crime", "slug": "crime"}]}
        assert values == [("acme", "author", "meera"), ("acme", "pages", "320"), ("acme", "tags", "crime"),
                          ("acme", "tags", "mumbai")]
        assert average == 0
