"""The order's state machine: one table of every transition the saga allows (ARCHITECTURE.md §5).

An order moves only along this table. Whatever happens to it (an event from inventory or payments,
the customer, a deadline) is a trigger; `decide` looks the pair (status, trigger) up and answers
what the order becomes and what the saga must emit, or None when the trigger does not fit the
status (a duplicate, late or out-of-order event): the caller records that it was ignored and
changes nothing.

    RESERVATION_PENDING ──stock reserved──▶ (same, stock now held)
            │ ──payment requested──▶ PAYMENT_PENDING ──payment authorized──▶ CONFIRMED
            │ ──payment authorized (its request still on the way)─────────────▶ CONFIRMED
            │                              │
            └──────── rejected stock, failed payment, customer, deadline ──▶ CANCELLED (reason)

A cancellation emits `order.cancelled.v1` (inventory releases, payments voids or refunds, the cart
gives a counted coupon use back) and, where stock is held, `inventory.release.requested.v1`.
`SHIPPED` and `DELIVERED` come with the shipping service; no trigger reaches them yet. A cancelled
order only takes note of its refund.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    RESERVATION_PENDING = "RESERVATION_PENDING"
    PAYMENT_PENDING = "PAYMENT_PENDING"
    CONFIRMED = "CONFIRMED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"


OPEN = frozenset({Status.RESERVATION_PENDING, Status.PAYMENT_PENDING})  # a deadline runs
TERMINAL = frozenset({Status.DELIVERED, Status.CANCELLED})


class Trigger(StrEnum):
    STOCK_RESERVED = "inventory.reserved"
    STOCK_REJECTED = "inventory.rejected"
    PAYMENT_REQUESTED = "payment.requested"
    PAYMENT_AUTHORIZED = "payment.authorized"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_REFUNDED = "payment.refunded"
    CUSTOMER_CANCELLED = "customer.cancelled"
    DEADLINE_PASSED = "deadline.passed"


class CancelReason(StrEnum):
    OUT_OF_STOCK = "out_of_stock"
    PAYMENT_FAILED = "payment_failed"
    RESERVATION_TIMEOUT = "reservation_timeout"
    PAYMENT_TIMEOUT = "payment_timeout"
    CUSTOMER = "customer"


@dataclass(frozen=True)
class Step:
    """A row of the table: the status the trigger leads to, and why an order is cancelled."""

    to: Status
    reason: CancelReason | None = None
    # The trigger itself tells that inventory holds the order's stock (its reservation, or a payment
    # that payments opens only for a reserved order).
    holds_stock: bool = False


TRANSITIONS: dict[tuple[Status, Trigger], Step] = {
    (Status.RESERVATION_PENDING, Trigger.STOCK_RESERVED): Step(Status.RESERVATION_PENDING, holds_stock=True),
    (Status.RESERVATION_PENDING, Trigger.STOCK_REJECTED): Step(Status.CANCELLED, CancelReason.OUT_OF_STOCK),
    (Status.RESERVATION_PENDING, Trigger.PAYMENT_REQUESTED): Step(Status.PAYMENT_PENDING, holds_stock=True),
    (Status.RESERVATION_PENDING, Trigger.PAYMENT_FAILED): Step(Status.CANCELLED, CancelReason.PAYMENT_FAILED),
    (Status.RESERVATION_PENDING, Trigger.CUSTOMER_CANCELLED): Step(Status.CANCELLED, CancelReason.CUSTOMER),
    (Status.RESERVATION_PENDING, Trigger.DEADLINE_PASSED): Step(Status.CANCELLED, CancelReason.RESERVATION_TIMEOUT),
    # The payment's authorization may overtake its request (two topics, no order between them: a
    # consumer catching up after a restart reads them in any order). Paid is paid.
    (Status.RESERVATION_PENDING, Trigger.PAYMENT_AUTHORIZED): Step(Status.CONFIRMED, holds_stock=True),
    # Inventory's answer may come after the payment's request (two topics, no order between them).
    (Status.PAYMENT_PENDING, Trigger.STOCK_RESERVED): Step(Status.PAYMENT_PENDING, holds_stock=True),
    (Status.PAYMENT_PENDING, Trigger.PAYMENT_AUTHORIZED): Step(Status.CONFIRMED),
    (Status.PAYMENT_PENDING, Trigger.PAYMENT_FAILED): Step(Status.CANCELLED, CancelReason.PAYMENT_FAILED),
    (Status.PAYMENT_PENDING, Trigger.CUSTOMER_CANCELLED): Step(Status.CANCELLED, CancelReason.CUSTOMER),
    (Status.PAYMENT_PENDING, Trigger.DEADLINE_PASSED): Step(Status.CANCELLED, CancelReason.PAYMENT_TIMEOUT),
    # Paid, not shipped: the customer may still cancel (payments refunds, inventory restocks).
    (Status.CONFIRMED, Trigger.CUSTOMER_CANCELLED): Step(Status.CANCELLED, CancelReason.CUSTOMER),
    # The money of a cancelled order went back: noted on the order, which stays cancelled.
    (Status.CANCELLED, Trigger.PAYMENT_REFUNDED): Step(Status.CANCELLED),
}


@dataclass(frozen=True)
class Decision:
    """What a fitting trigger does to an order."""

    previous: Status
    status: Status
    reason: CancelReason | None
    # Inventory holds (or, once confirmed, has deducted) the order's stock after this step.
    stock_held: bool
    confirm: bool  # emit order.confirmed.v1
    cancel: bool  # emit order.cancelled.v1
    release_stock: bool  # emit inventory.release.requested.v1

    @property
    def changes_status(self) -> bool:
        return self.status is not self.previous


def decide(status: Status, trigger: Trigger, *, stock_held: bool) -> Decision | None:
    """The order's next status and the saga's messages, or None when `trigger` does not fit
    `status` (the caller records it as ignored and changes nothing)."""
    step = TRANSITIONS.get((status, trigger))
    if step is None:
        return None
    # Payments opens a payment only for a reserved order, and a confirmed one has its stock deducted.
    held = stock_held or step.holds_stock or status in (Status.PAYMENT_PENDING, Status.CONFIRMED)
    cancel = step.to is Status.CANCELLED and status is not Status.CANCELLED
    return Decision(previous=status, status=step.to, reason=step.reason,
                    stock_held=held and step.to is not Status.CANCELLED,
                    confirm=step.to is Status.CONFIRMED and status is not Status.CONFIRMED,
                    cancel=cancel, release_stock=cancel and held)
