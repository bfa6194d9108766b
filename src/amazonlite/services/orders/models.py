"""The orders' tables: an order with everything it was placed with (its lines, prices and totals,
the shipping address encrypted), where the saga stands (status, deadline, stock held, the payment a
client pays), and the append-only steps it went through."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from amazonlite.platform.db import UTC, IdPrimaryKey, Timestamps, service_metadata, utcnow
from amazonlite.platform.idempotency import add_idempotency_table
from amazonlite.platform.messaging import add_messaging_tables
from amazonlite.platform.tenancy import TenantScoped


class Base(DeclarativeBase):
    metadata = service_metadata("orders")


MESSAGING = add_messaging_tables(Base.metadata)
IDEMPOTENCY_KEYS = add_idempotency_table(Base.metadata)


class Order(IdPrimaryKey, TenantScoped, Timestamps, Base):
    """One order. Money is in minor units of `currency`. `lines` is the snapshot of the cart's lines
    (`{sku, product_id, name, quantity, unit_price, line_total}`); `payment` what payments said of the
    payment (`{id, provider, status, client, expires_at}`), once it did. `deadline_at` is when the
    sweeper cancels the order if it is still open (reservation, then payment); `stock_held` says
    inventory holds (or has deducted) its stock, so a cancellation asks for it back. `version` counts
    the order's steps: a step is written only over the version it was decided on."""

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_customer", "tenant_id", "customer_id", "id"),
        Index("ix_orders_deadline", "status", "deadline_at"),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(24))
    cancel_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger)
    tax: Mapped[int] = mapped_column(BigInteger)
    shipping: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    coupon_code: Mapped[str | None] = mapped_column(String(32), default=None)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # The shipping address as JSON, encrypted for this row (platform/crypto.py FieldCipher).
    shipping_address_encrypted: Mapped[str] = mapped_column(Text)
    payment_provider: Mapped[str] = mapped_column(String(32))
    payment: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    stock_held: Mapped[bool] = mapped_column(Boolean, default=False)
    deadline_at: Mapped[dt.datetime | None] = mapped_column(UTC, default=None)


class OrderStep(IdPrimaryKey, TenantScoped, Base):
    """What happened to an order, in order (ids are time-ordered): a status it moved to, or a
    trigger it took note of without moving (`noted`), or one that did not fit its status
    (`ignored`, with the status it found)."""

    __tablename__ = "order_steps"
    __table_args__ = (Index("ix_order_steps_order", "tenant_id", "order_id", "id"),)

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    outcome: Mapped[str] = mapped_column(String(16))  # moved | noted | ignored
    trigger: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(24))  # after a move; the status found otherwise
    reason: Mapped[str | None] = mapped_column(String(32), default=None)
    at: Mapped[dt.datetime] = mapped_column(UTC, default=utcnow)
