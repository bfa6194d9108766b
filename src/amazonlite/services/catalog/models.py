from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from amazonlite.platform.db import UTC, IdPrimaryKey, Timestamps, service_metadata
from amazonlite.platform.messaging import add_messaging_tables
from amazonlite.platform.tenancy import TenantScoped


class Base(DeclarativeBase):
    metadata = service_metadata("catalog")


MESSAGING = add_messaging_tables(Base.metadata)


class Category(IdPrimaryKey, TenantScoped, Timestamps, Base):
    __tablename__ = "categories"
    __table_args__ = (UniqueConstraint("tenant_id", "slug"),)

    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(140))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("categories.id"), default=None, index=True)


class Brand(IdPrimaryKey, TenantScoped, Timestamps, Base):
    __tablename__ = "brands"
    __table_args__ = (UniqueConstraint("tenant_id", "slug"),)

    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(140))


class Product(IdPrimaryKey, TenantScoped, Timestamps, Base):
    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("tenant_id", "slug"),
        # One index per listing order, each ending in the id that breaks ties (keyset pagination).
        Index("ix_products_newest", "tenant_id", "status", "created_at", "id"),
        Index("ix_products_price", "tenant_id", "status", "min_price", "id"),
        Index("ix_products_name", "tenant_id", "status", "name", "id"),
        Index("ix_products_category", "category_id"),
        Index("ix_products_brand", "brand_id"),
    )

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))
    brand_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("brands.id"), default=None)
    category_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("categories.id"), default=None)
    # Per-category attributes: {"author": "…", "pages": 320, "features": ["…", "…"]}.
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # [{"url": "https://…", "alt": "…"}], in display order.
    media: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    # The lowest variant price and the product's one currency, kept for filtering and sorting.
    min_price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # The rating its reviews give it (product.rating.updated.v1), and as of when: a later one wins.
    rating_average: Mapped[float | None] = mapped_column(Float, default=None)
    rating_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rating_as_of: Mapped[dt.datetime | None] = mapped_column(UTC, default=None)

    brand: Mapped[Brand | None] = relationship(lazy="raise")
    category: Mapped[Category | None] = relationship(lazy="raise")
    variants: Mapped[list[Variant]] = relationship(
        lazy="raise", order_by="Variant.position", cascade="all, delete-orphan", passive_deletes=True,
    )

    @property
    def rating(self) -> dict[str, Any]:
        return {"average": self.rating_average, "count": self.rating_count}


class Variant(IdPrimaryKey, TenantScoped, Base):
    __tablename__ = "variants"
    __table_args__ = (
        UniqueConstraint("tenant_id", "sku"),
        Index("ix_variants_product", "product_id", "position"),
    )

    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    options: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    price_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    position: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def price(self) -> dict[str, Any]:
        return {"amount": self.price_amount, "currency": self.currency}
