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

# How much of an attribute's value its filter row keeps: enough for any value worth filtering by,
# within every database's index key limit (MariaDB's 3,072 bytes of utf8mb4 with the tenant and key).
VALUE_KEY_LENGTH = 120


class Category(IdPrimaryKey, TenantScoped, Timestamps, Base):
    __tablename__ = "categories"
    __table_args__ = (UniqueConstraint("tenant_id", "slug"),)

    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(140))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("categories.id"), default=None, index=True)
    # The attributes its products carry, each {key, label, type, options, multiple, required}
    # (`schemas.AttributeDefinition`); a subcategory's products carry its ancestors' too.
    attributes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The breadcrumbs from the root down to this category, each {id, name, slug}: kept with the row
    # (rewritten for the subtree when one of them is renamed or moved) so that a product's read
    # needs no walk up the tree.
    path: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)

    @property
    def breadcrumbs(self) -> list[dict[str, str]]:
        return self.path


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
        Index("ix_products_rating", "tenant_id", "status", "rating_average", "id"),
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
    # The average is 0 while there is no review (count 0), so that it sorts as a plain column.
    rating_average: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    rating_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rating_as_of: Mapped[dt.datetime | None] = mapped_column(UTC, default=None)

    brand: Mapped[Brand | None] = relationship(lazy="raise")
    category: Mapped[Category | None] = relationship(lazy="raise")
    variants: Mapped[list[Variant]] = relationship(
        lazy="raise", order_by="Variant.position", cascade="all, delete-orphan", passive_deletes=True,
    )

    @property
    def rating(self) -> dict[str, Any]:
        return rating(self.rating_average, self.rating_count)

    @property
    def breadcrumbs(self) -> list[dict[str, str]]:
        return self.category.path if self.category is not None else []


def rating(average: float, count: int) -> dict[str, Any]:
    """A rating as it reads: no average until there is a review."""
    return {"average": average if count else None, "count": count}


class ProductAttributeValue(IdPrimaryKey, TenantScoped, Base):
    """Each value of a product's attributes, normalised (`attributes.filter_value`), one row per
    value of a list: what `GET /products?attribute=key:value` looks up. Rewritten with the product."""

    __tablename__ = "product_attribute_values"
    __table_args__ = (
        Index("ix_product_attribute_values_lookup", "tenant_id", "key", "value", "product_id"),
        Index("ix_product_attribute_values_product", "product_id"),
    )

    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(VALUE_KEY_LENGTH))


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
    # The price it is shown as reduced from ("was ₹1,999"), higher than the price; none when not on offer.
    compare_at_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    currency: Mapped[str] = mapped_column(String(3))
    position: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def price(self) -> dict[str, Any]:
        return {"amount": self.price_amount, "currency": self.currency}

    @property
    def compare_at_price(self) -> dict[str, Any] | None:
        if self.compare_at_amount is None:
            return None
        return {"amount": self.compare_at_amount, "currency": self.currency}
