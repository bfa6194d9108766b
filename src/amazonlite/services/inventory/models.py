from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from amazonlite.platform.db import UTC, IdPrimaryKey, service_metadata, utcnow
from amazonlite.platform.messaging import add_messaging_tables
from amazonlite.platform.tenancy import TenantScoped


class Base(DeclarativeBase):
    metadata = service_metadata("inventory")


MESSAGING = add_messaging_tables(Base.metadata)


class Warehouse(IdPrimaryKey, TenantScoped, Base):
    """A warehouse of the tenant. `default` (priority 0) is never stored: every tenant has it."""

    __tablename__ = "warehouses"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(120))
    priority: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTC, default=utcnow)


class Product(IdPrimaryKey, TenantScoped, Base):
    """The replica of a catalog product: enough to order its events and remember a deletion."""

    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("tenant_id", "product_id"),)

    product_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTC, default=None)


class Sku(IdPrimaryKey, TenantScoped, Base):
    """A SKU inventory knows from the catalog; reservable while its product is active and lists it."""

    __tablename__ = "skus"
    __table_args__ = (UniqueConstraint("tenant_id", "sku"), Index("ix_skus_product", "tenant_id", "product_id"))

    sku: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    reservable: Mapped[bool] = mapped_column(Boolean)


class Stock(IdPrimaryKey, TenantScoped, Base):
    """One SKU in one warehouse. available = on_hand - reserved, never negative (the checks hold it)."""

    __tablename__ = "stock"
    __table_args__ = (
        UniqueConstraint("tenant_id", "sku", "warehouse"),
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
    )

    sku: Mapped[str] = mapped_column(String(64))
    warehouse: Mapped[str] = mapped_column(String(64))
    on_hand: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)


class Threshold(IdPrimaryKey, TenantScoped, Base):
    """A SKU's restock threshold. `armed`: available was above it when last seen, so falling to it
    or below publishes `inventory.low_stock.v1` (once; rising above arms it again)."""

    __tablename__ = "thresholds"
    __table_args__ = (UniqueConstraint("tenant_id", "sku"),)

    sku: Mapped[str] = mapped_column(String(64))
    threshold: Mapped[int] = mapped_column(BigInteger)
    armed: Mapped[bool] = mapped_column(Boolean)


class Reservation(IdPrimaryKey, TenantScoped, Base):
    """What inventory did for one order: held (with its allocations), rejected, deducted, released,
    expired, or `cancelled` (a tombstone: the order was cancelled before inventory saw it)."""

    __tablename__ = "reservations"
    __table_args__ = (UniqueConstraint("tenant_id", "order_id"),
                      Index("ix_reservations_expiry", "status", "expires_at"))

    order_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16))
    # [{"sku": …, "warehouse": …, "quantity": n}], in the order the stock was taken.
    allocations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTC, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTC, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTC, default=utcnow)


class LedgerEntry(IdPrimaryKey, TenantScoped, Base):
    """One change of one SKU in one warehouse; append-only. The sums of the deltas are the stock."""

    __tablename__ = "ledger"
    __table_args__ = (Index("ix_ledger_sku", "tenant_id", "sku", "id"),)

    sku: Mapped[str] = mapped_column(String(64))
    warehouse: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    on_hand_delta: Mapped[int] = mapped_column(BigInteger)
    reserved_delta: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(200))
    order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTC, default=utcnow)
