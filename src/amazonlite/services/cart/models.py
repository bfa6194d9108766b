"""The cart's tables: carts (every cart when embedded; customers' carts when Redis holds guests'),
the replica of SKU prices it shows, coupons and their redemptions."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from amazonlite.platform.db import UTC, IdPrimaryKey, Timestamps, service_metadata, utcnow
from amazonlite.platform.idempotency import add_idempotency_table
from amazonlite.platform.messaging import add_messaging_tables
from amazonlite.platform.tenancy import TenantScoped


class Base(DeclarativeBase):
    metadata = service_metadata("cart")


MESSAGING = add_messaging_tables(Base.metadata)
IDEMPOTENCY_KEYS = add_idempotency_table(Base.metadata)


class Cart(IdPrimaryKey, TenantScoped, Base):
    """One cart: `owner` is `guest:<cart id>` or `user:<user id>`; `document` holds its lines, its
    coupon and the guest carts merged into it; `version` counts its changes (compare-and-set)."""

    __tablename__ = "carts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "owner"),
        Index("ix_carts_expires_at", "expires_at"),
    )

    owner: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(UTC, default=utcnow)
    # Guests' carts only: gone after this (refreshed by every read and change).
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTC, default=None)


class SkuPrice(IdPrimaryKey, TenantScoped, Base):
    """The replica of what the catalog says of a SKU (product.updated.v1 / product.deleted.v1, and
    the catalog's answers to the cart's own lookups), newest `updated_at` wins. `status` is the
    product's, or `deleted` (product deleted) or `removed` (variant dropped from its product)."""

    __tablename__ = "sku_prices"
    __table_args__ = (
        UniqueConstraint("tenant_id", "sku"),
        Index("ix_sku_prices_product", "tenant_id", "product_id"),
    )

    sku: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    product_name: Mapped[str] = mapped_column(String(200))
    variant_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    price_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    updated_at: Mapped[dt.datetime] = mapped_column(UTC)


class Coupon(IdPrimaryKey, TenantScoped, Timestamps, Base):
    __tablename__ = "coupons"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    code: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(8))  # percent | fixed
    value: Mapped[int] = mapped_column(BigInteger)  # percent 1-100, or minor units
    min_subtotal: Mapped[int] = mapped_column(BigInteger, default=0)
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTC, default=None)
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTC, default=None)
    usage_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    once_per_customer: Mapped[bool] = mapped_column(Boolean, default=False)
    # Confirmed orders that counted against the limit, less those cancelled since.
    used_count: Mapped[int] = mapped_column(Integer, default=0)


class CouponRedemption(IdPrimaryKey, TenantScoped, Timestamps, Base):
    """One order's use of a coupon, recorded once per order: `counted` (it took one of the uses),
    `over_limit` (confirmed after the uses ran out: logged, not counted), `already_used` (the customer
    had used a once-per-customer coupon), `released` (counted, then the order was cancelled), or
    `cancelled` (cancelled before any confirmation: a later confirmation counts nothing).
    `once_key` is the customer while a once-per-customer use is counted: unique per coupon."""

    __tablename__ = "coupon_redemptions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "order_id"),
        UniqueConstraint("coupon_id", "once_key"),
        Index("ix_coupon_redemptions_customer", "coupon_id", "customer_id"),
    )

    coupon_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("coupons.id", ondelete="CASCADE"))
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    outcome: Mapped[str] = mapped_column(String(16))
    once_key: Mapped[str | None] = mapped_column(String(64), default=None)
