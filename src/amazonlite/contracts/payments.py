"""What payments tells the order saga (ARCHITECTURE.md §5).

Payments opens one payment per order, with the order's provider, once inventory holds its stock; the
order follows the payment through these facts. No card data ever travels: only the provider's
references, and what a client needs to pay (a hosted page, a provider order id and public key).
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from amazonlite.contracts.base import EventPayload, Money


class PaymentRequestedV1(EventPayload):
    """Orders moves the order to PAYMENT_PENDING and shows the client how to pay."""

    event_type: ClassVar[str] = "payment.requested.v1"
    producer: ClassVar[str] = "payments"
    summary: ClassVar[str] = ("A payment was opened with the order's provider and waits for the customer: what a "
                              "client needs to pay (`client`). Key: order_id.")

    order_id: UUID
    payment_id: UUID
    provider: str
    amount: Money
    # Public values only, e.g. {"page_url": …} (sandbox) or {"key_id", "order_id"} (razorpay).
    client: dict[str, str]
    requested_at: dt.datetime


class PaymentAuthorizedV1(EventPayload):
    """Orders confirms the order (CONFIRMED)."""

    event_type: ClassVar[str] = "payment.authorized.v1"
    producer: ClassVar[str] = "payments"
    summary: ClassVar[str] = ("The customer's payment was authorized (or captured) for the order's amount. "
                              "Key: order_id.")

    order_id: UUID
    payment_id: UUID
    provider: str
    amount: Money
    authorized_at: dt.datetime


class PaymentFailedV1(EventPayload):
    """Orders cancels the order (`payment_failed`) and has its stock released."""

    event_type: ClassVar[str] = "payment.failed.v1"
    producer: ClassVar[str] = "payments"
    summary: ClassVar[str] = ("The payment failed or could not be opened: declined by the provider, or the provider "
                              "refused the intent. Key: order_id.")

    order_id: UUID
    payment_id: UUID
    provider: str
    reason: str = Field(min_length=1)
    failed_at: dt.datetime


class PaymentRefundedV1(EventPayload):
    """The money of a cancelled order went back to the customer (or its authorization was voided)."""

    event_type: ClassVar[str] = "payment.refunded.v1"
    producer: ClassVar[str] = "payments"
    summary: ClassVar[str] = ("A payment was given back: refunded after capture or voided before it, e.g. for an order "
                              "cancelled after the customer paid. Key: order_id.")

    order_id: UUID
    payment_id: UUID
    provider: str
    amount: Money
    kind: Literal["refund", "void"]
    reason: str
    refunded_at: dt.datetime
