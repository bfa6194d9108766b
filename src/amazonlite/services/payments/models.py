"""The payments' tables: what payments knows of each order (from `order.created.v1`), one payment per
order with where it stands at its provider, the providers' webhooks already applied, and the refunds
asked of a provider. No card data: a provider's page takes it, and only references come back."""

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
    metadata = service_metadata("payments")


MESSAGING = add_messaging_tables(Base.metadata)
IDEMPOTENCY_KEYS = add_idempotency_table(Base.metadata)


class KnownOrder(IdPrimaryKey, TenantScoped, Base):
    """What payments knows of an order: what opening its payment needs, as `order.created.v1` told it
    (payments never asks the orders service; money in minor units of `currency`), and what arrived
    about it before that, on other topics: its reservation (`reserved_early`) or its cancellation
    (`cancelled_early`, the reason), kept here until the creation arrives and is acted on then.

    One row per order, written by whichever event arrives first; until the creation arrives the
    order's own fields are empty. The unique key makes the second writer wait for the first one's
    commit, so however the topics interleave, across replicas too, nothing noted early is lost."""

    __tablename__ = "known_orders"
    __table_args__ = (UniqueConstraint("tenant_id", "order_id"),)

    order_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    payment_provider: Mapped[str | None] = mapped_column(String(32), default=None)
    reserved_early: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled_early: Mapped[str | None] = mapped_column(String(64), default=None)
    seen_at: Mapped[dt.datetime] = mapped_column(UTC, default=utcnow)


class Payment(IdPrimaryKey, TenantScoped, Timestamps, Base):
    """The one payment of an order (`status`: see `service.Status`); an order cancelled before its
    payment was opened gets one too, `cancelled`, so that none is opened later: whichever writes the
    order's payment first (its unique key decides) is the one. `reference` is the provider's id
    of the intent (none when the intent could not be opened), `provider_payment_id` the provider's id
    of the money taken, once a webhook or callback named it. `client` holds the public values a client
    pays with. `order_cancelled`: the order was cancelled, so money taken is given back at once.
    `hosted_outcome`: what the customer chose on the sandbox's hosted page (once; its webhooks
    follow). `version` counts the payment's changes: a change is written only over the version it
    was decided on."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("tenant_id", "order_id"),
        UniqueConstraint("tenant_id", "provider", "reference"),
        Index("ix_payments_provider_payment", "tenant_id", "provider", "provider_payment_id"),
        Index("ix_payments_waiting", "status", "updated_at"),  # the sandbox's redeliveries, across tenants
    )

    order_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    provider: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str | None] = mapped_column(String(64), default=None)
    provider_payment_id: Mapped[str | None] = mapped_column(String(64), default=None)
    client: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    failure_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    order_cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    hosted_outcome: Mapped[str | None] = mapped_column(String(16), default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)


class WebhookReceipt(IdPrimaryKey, TenantScoped, Base):
    """A provider's webhook event applied once: a redelivery with the same event id has no second
    effect."""

    __tablename__ = "webhook_receipts"
    __table_args__ = (UniqueConstraint("tenant_id", "provider", "event_id"),)

    provider: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    payment_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    received_at: Mapped[dt.datetime] = mapped_column(UTC, default=utcnow)


class Refund(IdPrimaryKey, TenantScoped, Timestamps, Base):
    """Money given back at a provider: `issued` when the provider took the refund, `processed` once
    its webhook said the money went back. `idempotency_key` is the key the provider was asked with
    (one refund per payment)."""

    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_refunds_payment", "tenant_id", "payment_id"),
    )

    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"))
    provider_refund_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    idempotency_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
