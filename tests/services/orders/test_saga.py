"""The order's state machine, exhaustively: every (status, trigger) pair either follows the table or
is ignored, and what a step emits follows from where the order was and what it held."""

from __future__ import annotations

import itertools

import pytest

from amazonlite.services.orders.saga import (
    OPEN,
    TERMINAL,
    TRANSITIONS,
    CancelReason,
    Status,
    Trigger,
    decide,
)

CANCELS = {
    (Status.RESERVATION_PENDING, Trigger.STOCK_REJECTED): CancelReason.OUT_OF_STOCK,
    (Status.RESERVATION_PENDING, Trigger.PAYMENT_FAILED): CancelReason.PAYMENT_FAILED,
    (Status.RESERVATION_PENDING, Trigger.CUSTOMER_CANCELLED): CancelReason.CUSTOMER,
    (Status.RESERVATION_PENDING, Trigger.DEADLINE_PASSED): CancelReason.RESERVATION_TIMEOUT,
    (Status.PAYMENT_PENDING, Trigger.PAYMENT_FAILED): CancelReason.PAYMENT_FAILED,
    (Status.PAYMENT_PENDING, Trigger.CUSTOMER_CANCELLED): CancelReason.CUSTOMER,
    (Status.PAYMENT_PENDING, Trigger.DEADLINE_PASSED): CancelReason.PAYMENT_TIMEOUT,
    (Status.CONFIRMED, Trigger.CUSTOMER_CANCELLED): CancelReason.CUSTOMER,
}


def test_the_happy_path_reaches_confirmed_and_confirms_once() -> None:
    reserved = decide(Status.RESERVATION_PENDING, Trigger.STOCK_RESERVED, stock_held=False)
    assert reserved is not None and reserved.status is Status.RESERVATION_PENDING and reserved.stock_held
    assert not reserved.changes_status and not (reserved.confirm or reserved.cancel or reserved.release_stock)
    requested = decide(Status.RESERVATION_PENDING, Trigger.PAYMENT_REQUESTED, stock_held=True)
    assert requested is not None and requested.status is Status.PAYMENT_PENDING and requested.changes_status
    authorized = decide(Status.PAYMENT_PENDING, Trigger.PAYMENT_AUTHORIZED, stock_held=True)
    assert authorized is not None and authorized.status is Status.CONFIRMED
    assert authorized.confirm and not authorized.cancel and authorized.stock_held
    # A second authorization (a duplicate, another delivery) fits nothing: confirmed once.
    assert decide(Status.CONFIRMED, Trigger.PAYMENT_AUTHORIZED, stock_held=True) is None


@pytest.mark.parametrize(("status", "trigger"), sorted(CANCELS))
def test_every_cancellation_has_its_reason_and_releases_only_held_stock(status: Status, trigger: Trigger) -> None:
    for held in (False, True):
        decision = decide(status, trigger, stock_held=held)
        assert decision is not None
        assert decision.status is Status.CANCELLED and decision.reason is CANCELS[status, trigger]
        assert decision.cancel and not decision.confirm and not decision.stock_held
        # Stock is held once a payment was requested or the order confirmed, whatever was noted.
        expected_release = held or status in (Status.PAYMENT_PENDING, Status.CONFIRMED)
        assert decision.release_stock is expected_release, (status, trigger, held)


def test_the_payment_request_may_overtake_the_reservation() -> None:
    requested = decide(Status.RESERVATION_PENDING, Trigger.PAYMENT_REQUESTED, stock_held=False)
    assert requested is not None and requested.stock_held  # payments asks only for reserved orders
    late = decide(Status.PAYMENT_PENDING, Trigger.STOCK_RESERVED, stock_held=True)
    assert late is not None and late.status is Status.PAYMENT_PENDING and not late.changes_status


def test_the_authorization_may_overtake_the_payments_request() -> None:
    paid = decide(Status.RESERVATION_PENDING, Trigger.PAYMENT_AUTHORIZED, stock_held=False)
    assert paid is not None and paid.status is Status.CONFIRMED
    assert paid.confirm and paid.stock_held and not (paid.cancel or paid.release_stock)
    assert decide(Status.CONFIRMED, Trigger.PAYMENT_REQUESTED, stock_held=True) is None  # its late request


@pytest.mark.parametrize(("status", "trigger"), [
    pair for pair in itertools.product(Status, Trigger) if pair not in TRANSITIONS])
def test_a_trigger_that_does_not_fit_is_ignored(status: Status, trigger: Trigger) -> None:
    assert decide(status, trigger, stock_held=True) is None
    assert decide(status, trigger, stock_held=False) is None


def test_terminal_orders_never_move_and_deadlines_run_only_while_open() -> None:
    for status, trigger in itertools.product(TERMINAL, Trigger):
        decision = decide(status, trigger, stock_held=True)
        assert decision is None or not (decision.changes_status or decision.cancel or decision.confirm
                                        or decision.release_stock), (status, trigger)
    refunded = decide(Status.CANCELLED, Trigger.PAYMENT_REFUNDED, stock_held=False)
    assert refunded is not None and refunded.status is Status.CANCELLED and refunded.reason is None
    deadline_states = {status for status, trigger in TRANSITIONS if trigger is Trigger.DEADLINE_PASSED}
    assert deadline_states == OPEN
    # A paid order is not cancelled by any event of the saga, only by its customer.
    confirmed = {trigger for status, trigger in TRANSITIONS if status is Status.CONFIRMED}
    assert confirmed == {Trigger.CUSTOMER_CANCELLED}
