"""The ceilings for `GET /api/v1/products/{id}`: a bare FastAPI endpoint, no gateway; with or without
one ORM primary-key read.

It serves one product document, captured from the running platform, through a Pydantic response
model shaped like the catalog's `Product`, so that what it costs per request is exactly what any
FastAPI endpoint pays: routing, path-parameter validation, `response_model` validation and JSON
serialisation of a document of the same shape and size. Nothing else.

    BENCH_PRODUCT_JSON=/path/to/product.json python bench/bare_app.py --port 8001
    BENCH_PRODUCT_JSON=... python bench/bare_app.py --port 8002 --orm-url sqlite+aiosqlite:///data/catalog.sqlite3

With `--orm-url`, the endpoint first reads the product's row by primary key through the SQLAlchemy
ORM (async session per request, as a FastAPI app does it: a session dependency, `session.get`) from
the platform's own catalog database, then answers the same document: the ceiling of an uncached
read, what one ORM read on the same store costs on top of the bare endpoint.

It runs under the same server as `amazonlite up` (`platform/server.py`: uvicorn with httptools and
the edge limits, one worker, uvloop, access log off).

The models are a copy, not an import of the catalog's schemas, on purpose: the ceiling must not
move when the platform's code does. `extra="allow"` keeps a field the catalog adds later in the
document (as plain JSON), so the two responses stay the same size; `bench/run.py` checks that
they are equal before measuring.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import uvicorn
from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import String, event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from amazonlite.platform import tenancy
from amazonlite.platform.server import uvicorn_options

PRODUCT_ENV = "BENCH_PRODUCT_JSON"


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Money(_Model):
    amount: int
    currency: str


class Ref(_Model):
    id: uuid.UUID
    name: str


class MediaItem(_Model):
    url: str
    alt: str


class Variant(_Model):
    sku: str
    name: str
    options: dict[str, str]
    price: Money


class Rating(_Model):
    average: float | None = None
    count: int = 0


class Product(_Model):
    id: uuid.UUID
    name: str
    slug: str
    description: str
    status: Literal["draft", "active", "archived"]
    brand: Ref | None
    category: Ref | None
    attributes: dict[str, Any]
    media: list[MediaItem]
    variants: list[Variant]
    rating: Rating = Field(default_factory=Rating)
    created_at: dt.datetime
    updated_at: dt.datetime


class _Table(DeclarativeBase):
    pass


class ProductRow(_Table):
    """The catalog's `products` table, the columns the ORM read loads (a copy, like the models above)."""

    __tablename__ = "products"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))


def load_product(path: str | os.PathLike[str]) -> Product:
    """Validate the captured document once, at start."""
    return Product.model_validate(json.loads(Path(path).read_bytes()))


def create_app(product: Product, orm_url: str | None = None) -> FastAPI:
    app = FastAPI(title="bench: bare FastAPI ceiling", openapi_url=None, docs_url=None, redoc_url=None)

    if orm_url is None:
        @app.get("/api/v1/products/{product_id}", response_model=Product)
        async def get_product(product_id: uuid.UUID) -> Product:
            if product_id != product.id:
                raise HTTPException(status_code=404, detail="product not found")
            return product
    else:
        # The platform's server settings came with its tenant scope, a listener on every ORM session
        # of the process: a bare app has no tenants, and must not pay for them.
        if event.contains(Session, "do_orm_execute", tenancy._scope_statements):
            event.remove(Session, "do_orm_execute", tenancy._scope_statements)
        sessions = async_sessionmaker(create_async_engine(orm_url, pool_size=20), expire_on_commit=False)

        async def session() -> AsyncIterator[AsyncSession]:
            async with sessions() as opened:
                yield opened

        @app.get("/api/v1/products/{product_id}", response_model=Product)
        # A default, not `Annotated`: with postponed annotations FastAPI cannot see a local dependency.
        async def get_product_after_a_read(product_id: uuid.UUID,
                                           db: AsyncSession = Depends(session)) -> Product:
            row = await db.get(ProductRow, product_id)
            if row is None or product_id != product.id:
                raise HTTPException(status_code=404, detail="product not found")
            return product

    @app.get("/health/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    return app


def app_from_env(orm_url: str | None = None) -> FastAPI:
    path = os.environ.get(PRODUCT_ENV)
    if not path:
        raise SystemExit(f"{PRODUCT_ENV} must name the captured product JSON file")
    return create_app(load_product(path), orm_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--orm-url", help="read the product's row by primary key from this database first")
    args = parser.parse_args()
    # The same server settings as `amazonlite up` (platform/server.py), one worker.
    uvicorn.run(app_from_env(args.orm_url), host=args.host, port=args.port, **uvicorn_options())


if __name__ == "__main__":
    main()
