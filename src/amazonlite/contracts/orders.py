"""The order saga's commands and facts, published by orders (ARCHITECTURE.md §5).

Inventory and the cart consume them; until the orders service exists, tests publish them through
the bus themselves. Every payload names its order, and every consumer is idempotent per order id.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from amazonlite.contracts.base import EventPayload, Money


class OrderLineV1(BaseModel):
    """One line as it was priced when the order was placed."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sku: str
    quantity: int = Field(gt=0)
    unit_price: Money


class OrderTotalsV1(BaseModel):
    """The order's money, all in its one currency (minor units)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    subtotal: Money
    discount: Money
    tax: Money
    shipping: Money
    total: Money


class OrderCreatedV1(EventPayload):
    """Inventory reserves every line (all or none)."""

    event_type: ClassVar[str] = "order.created.v1"
    producer: ClassVar[str] = "orders"
    summary: ClassVar[str] = ("An order was placed (RESERVATION_PENDING): its customer, lines with their unit "
                              "prices, totals and coupon. Key: order_id.")

    order_id: UUID
    customer_id: UUID
    lines: list[OrderLineV1] = Field(min_length=1)
    totals: OrderTotalsV1
    coupon_code: str | None = None
    payment_provider: str
    created_at: dt.datetime


class OrderConfirmedV1(EventPayload):
    """Inventory turns the reservation into a deduction; the cart counts the coupon's use."""

    event_type: ClassVar[str] = "order.confirmed.v1"
    producer: ClassVar[str] = "orders"
    summary: ClassVar[str] = "An order was paid and confirmed (CONFIRMED). Key: order_id."

    order_id: UUID
    customer_id: UUID
    coupon_code: str | None = None
    confirmed_at: dt.datetime


class OrderCancelledV1(EventPayload):
    """Inventory releases what it holds for the order; the cart gives a counted coupon use back."""

    event_type: ClassVar[str] = "order.cancelled.v1"
    producer: ClassVar[str] = "orders"
    summary: ClassVar[str] = ("An order was cancelled (CANCELLED) with a reason: rejected stock, a failed "
                              "payment, the customer, or a missed deadline. Key: order_id.")

    order_id: UUID
    customer_id: UUID
    reason: str
    coupon_code: str | None = None
    cancelled_at: dt.datetime


class InventoryReleaseRequestedV1(EventPayload):
    """Orders asks inventory to let go of an order's reservation (a compensation of the saga)."""

    event_type: ClassVar[str] = "inventory.release.requested.v1"
    producer: ClassVar[str] = "orders"
    summary: ClassVar[str] = "Release the stock held for an order, with a reason. Key: order_id."

    order_id: UUID
    reason: str
