"""Payments: one payment per order, opened with the order's provider once inventory holds its stock,
and followed through the provider's signed webhooks (or a verified client callback) to its outcome.

Payments learns what it needs of an order from `order.created.v1` (it never asks the orders
service). On `inventory.reserved.v1` it opens the order's payment: the intent at the provider and the
payment `requested` with `payment.requested.v1` in one transaction; a provider that refuses, or one
this deployment does not offer, fails the payment (`payment.failed.v1`) instead. The creation, the
reservation and the cancellation travel on different topics, so a reservation or a cancellation can
arrive first (a consumer catching up after a restart reads its topics in any order): it is noted on
the order's row and acted on when the creation arrives (`KnownOrder`), never retried or dead-lettered.

The outcome comes from the provider: `authorized`/`captured` gives `payment.authorized.v1`, `failed`
gives `payment.failed.v1`, each only from `requested`. A payment never moves backwards: a late or
out-of-order event finds it moved and changes nothing. Money is never kept for an order that will not
be fulfilled: an order cancelled while its payment waits has the intent voided; cancelled after the
customer paid, the money refunded; and money that arrives later anyway (a late webhook, a success
after a failure) is refunded at once. Each of these is `payment.refunded.v1` (kind `void` or `refund`).

Every change of a payment is one conditional UPDATE over the version it was decided on
(`PaymentRepository.step`), written before the provider is asked to act on it: of two units of work
that would refund one payment, one writes and the other finds it moved (a `TransientConflict`: the
consumer, or the webhook's sender, does it again on the new state), so the provider is never asked
twice at once; a provider that fails undoes the change with the transaction. Provider calls happen
inside the unit of work, so a refund asked again after a rolled-back attempt reuses its idempotency
key and gets the same refund.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol, TypeVar

import structlog
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from amazonlite.contracts import (
    OrderCreatedV1,
    PaymentAuthorizedV1,
    PaymentFailedV1,
    PaymentRefundedV1,
    PaymentRequestedV1,
)
from amazonlite.contracts.base import Money as MoneyV1
from amazonlite.platform.db import TransientConflict, after_commit, utcnow
from amazonlite.platform.ids import new_id
from amazonlite.platform.outbox import record_event
from amazonlite.platform.security import ADMIN_ROLES, Principal
from amazonlite.services.payments import schemas
from amazonlite.services.payments.errors import (
    InvalidProviderSignature,
    MalformedProviderMessage,
    NotASandboxPayment,
    PaymentNotFound,
    PaymentNotPending,
    PaymentProviderUnavailable,
    ProviderNotFound,
)
from amazonlite.services.payments.models import KnownOrder, Payment, Refund, WebhookReceipt
from amazonlite.services.payments.providers import (
    InvalidSignature,
    MalformedWebhook,
    PaymentProvider,
    ProviderEvent,
    ProviderRefused,
    ProviderUnavailable,
    SandboxProvider,
)
from amazonlite.services.payments.repository import (
    KnownOrderRepository,
    PaymentRepository,
    ReceiptRepository,
    RefundRepository,
)

log = structlog.get_logger("amazonlite.payments")

PAYMENTS = Counter("amazonlite_payments_total",
                   "Payments by provider and outcome: requested, authorized, captured, failed, refunded, voided",
                   ["provider", "outcome"])

T = TypeVar("T")


class Status(StrEnum):
    REQUESTED = "requested"  # the intent is open: the customer pays on the provider's page
    AUTHORIZED = "authorized"  # the provider holds the customer's money
    CAPTURE_DUE = "capture_due"  # the order is confirmed: the capture job takes the money held
    CAPTURED = "captured"  # the provider took it
    FAILED = "failed"  # declined, or no intent could be opened
    REFUNDED = "refunded"  # money taken went back (the order was cancelled, or the money came too late)
    VOIDED = "voided"  # the intent was given up before any money was taken
    CANCELLED = "cancelled"  # the order was cancelled before its payment was opened: none will be


Outcome = Literal["success", "failure"]
Providers = Mapping[str, PaymentProvider]


class HostedPage(Protocol):
    """The sandbox's hosted page as the service uses it: the customer chose an outcome, and the
    sandbox gateway delivers its webhooks later (`tasks.SandboxGateway`)."""

    def deliver_later(self, *, tenant_id: str, reference: str, outcome: Outcome, amount: int) -> None: ...


# Orders, as payments knows them ------------------------------------------------------------------------

async def remember_order(session: AsyncSession, providers: Providers, event: OrderCreatedV1, *,
                         hosted_page: HostedPage | None = None) -> None:
    """Keep what opening the order's payment needs (once per order), and act on what arrived about
    the order before this: its cancellation, or its reservation (the payment is opened now)."""
    total = event.totals.total
    details = {"customer_id": event.customer_id, "amount": total.amount, "currency": total.currency,
               "payment_provider": event.payment_provider}
    orders = KnownOrderRepository(session)
    if await orders.add(KnownOrder(order_id=event.order_id, seen_at=utcnow(), **details)):
        return
    noted = await orders.get(event.order_id)
    assert noted is not None  # its row exists: that is why it could not be added
    if noted.customer_id is not None or not await orders.write_before_creation(noted, **details):
        log.info("payments.order_known_already", order_id=str(event.order_id))
        return
    # The row as it is now that this unit of work holds it: what arrived early is all there.
    noted = await orders.get(event.order_id)
    assert noted is not None
    if noted.cancelled_early is not None:
        log.info("payments.early_cancellation_applied", order_id=str(event.order_id))
        await cancel_order(session, providers, event.order_id, noted.cancelled_early)
    elif noted.reserved_early:
        log.info("payments.early_reservation_applied", order_id=str(event.order_id))
        await open_payment(session, providers, event.order_id, hosted_page=hosted_page)


async def _known(session: AsyncSession, order_id: uuid.UUID, **early: Any) -> _Order | None:
    """The order as its creation told it; or None when that has not arrived yet, having noted
    `early` (`reserved_early=True`, or `cancelled_early=<reason>`) on its row for when it does."""
    orders = KnownOrderRepository(session)
    for _attempt in range(2):
        row = await orders.get(order_id)
        if row is not None and row.customer_id is not None:
            return _Order.of(row)
        if row is None:
            if await orders.add(KnownOrder(order_id=order_id, seen_at=utcnow(), **early)):
                return None
            continue  # its creation (or another early event) wrote the row meanwhile: read it again
        if await orders.write_before_creation(row, **early):
            return None
        # its creation completed the row meanwhile: read it again
    raise TransientConflict(f"the row of order {order_id} kept changing")


@dataclass(frozen=True)
class _Order:
    """An order whose creation arrived: what opening its payment takes."""

    customer_id: uuid.UUID
    amount: int
    currency: str
    payment_provider: str

    @classmethod
    def of(cls, row: KnownOrder) -> _Order:
        assert row.customer_id is not None
        assert row.amount is not None
        assert row.currency is not None
        assert row.payment_provider is not None
        return cls(row.customer_id, row.amount, row.currency, row.payment_provider)


async def open_payment(session: AsyncSession, providers: Providers, order_id: uuid.UUID, *,
                       hosted_page: HostedPage | None = None) -> Payment | None:
    """Open the order's payment with its provider: `requested` and `payment.requested.v1`, or
    `failed` and `payment.failed.v1` when the provider refuses the intent or is not offered here.
    None when the order has its payment already (another delivery opened it, or the order was
    cancelled first, or its creation has not arrived: it is opened then). Raises
    `PaymentProviderUnavailable` when the provider cannot answer (the consumer retries it)."""
    payments = PaymentRepository(session)
    if await payments.of_order(order_id) is not None:
        log.info("payments.payment_exists", order_id=str(order_id))
        return None
    order = await _known(session, order_id, reserved_early=True)
    if order is None:
        log.info("payments.reservation_before_order", order_id=str(order_id))
        return None
    now = utcnow()
    provider = providers.get(order.payment_provider)
    payment = Payment(id=new_id(), order_id=order_id, customer_id=order.customer_id, provider=order.payment_provider,
                      status=Status.REQUESTED if provider is not None else Status.FAILED, amount=order.amount,
                      currency=order.currency, client={}, order_cancelled=False, version=1,
                      failure_reason=None if provider is not None else "unknown_provider",
                      created_at=now, updated_at=now)
    # The order's payment is claimed (its unique key) before the provider is asked for an intent, so
    # a concurrent delivery of the reservation opens no second intent.
    if not await payments.add(payment):
        log.info("payments.payment_exists", order_id=str(order_id))
        return None
    if provider is None:
        log.warning("payments.unknown_provider", payment_id=str(payment.id), order_id=str(order_id),
                    provider=order.payment_provider)
        await _record_failed(session, payment, "unknown_provider")
        return payment
    try:
        intent = await provider.create_intent(payment_id=payment.id, order_id=order_id, amount=payment.amount,
                                              currency=payment.currency)
    except ProviderRefused as exc:
        log.warning("payments.intent_refused", payment_id=str(payment.id), order_id=str(order_id),
                    provider=provider.name, error=str(exc)[:200])
        await _move(session, payment, status=Status.FAILED, failure_reason="provider_refused")
        await _record_failed(session, payment, "provider_refused")
        return payment
    except ProviderUnavailable as exc:
        raise _unavailable(provider.name) from exc
    # A sandbox set to approve by itself (benchmarks) chooses success on its page at once.
    auto_approve = hosted_page is not None and isinstance(provider, SandboxProvider) and provider.auto_approve
    await _move(session, payment, reference=intent.reference, client=dict(intent.client),
                hosted_outcome="success" if auto_approve else None)
    await record_event(session, PaymentRequestedV1(
        order_id=order_id, payment_id=payment.id, provider=payment.provider, amount=_money(payment),
        client=dict(intent.client), requested_at=now), aggregate_id=order_id)
    log.info("payments.requested", payment_id=str(payment.id), order_id=str(order_id), provider=payment.provider,
             reference=intent.reference)
    _count(session, payment.provider, "requested")
    if auto_approve:
        assert hosted_page is not None
        _deliver_after_commit(session, hosted_page, payment, "success")
    return payment


async def cancel_order(session: AsyncSession, providers: Providers, order_id: uuid.UUID, reason: str) -> None:
    """The order was cancelled: its waiting payment is voided, its money refunded, and no payment is
    opened for it later (also when the cancellation arrives before the order's creation)."""
    payments = PaymentRepository(session)
    payment = await payments.of_order(order_id)
    if payment is None:
        order = await _known(session, order_id, cancelled_early=reason[:64])
        if order is None:
            log.info("payments.cancellation_before_order", order_id=str(order_id))
            return
        now = utcnow()
        cancelled = Payment(id=new_id(), order_id=order_id, customer_id=order.customer_id,
                            provider=order.payment_provider, status=Status.CANCELLED, amount=order.amount,
                            currency=order.currency, client={}, order_cancelled=True, version=1,
                            created_at=now, updated_at=now)
        if not await payments.add(cancelled):
            # Its payment was opened at this very moment: do it again, on that payment.
            raise TransientConflict(f"the payment of order {order_id} was opened while the order was cancelled")
        log.info("payments.cancelled_before_opening", payment_id=str(cancelled.id), order_id=str(order_id))
        return
    status = Status(payment.status)
    if status is Status.REQUESTED:
        await _move(session, payment, status=Status.VOIDED, order_cancelled=True)
        provider = providers.get(payment.provider)
        if provider is not None and payment.reference is not None:
            await _at_provider(payment.provider, provider.void(reference=payment.reference,
                                                               provider_payment_id=payment.provider_payment_id))
        await _record_given_back(session, payment, kind="void", amount=payment.amount, reason=reason)
    elif status in (Status.AUTHORIZED, Status.CAPTURE_DUE, Status.CAPTURED):
        await _refund_held(session, _provider_of(providers, payment), payment, reason)
    elif not payment.order_cancelled:
        await _move(session, payment, order_cancelled=True)
        log.info("payments.order_cancelled_noted", payment_id=str(payment.id), order_id=str(order_id),
                 status=payment.status)


async def capture_confirmed(session: AsyncSession, order_id: uuid.UUID) -> None:
    """The order is confirmed: the money its payment holds is due for capture (`capture_due`),
    which the capture job takes (`capture`). Captured only now, not when it was authorized, so money
    is never taken for an order that ends cancelled instead. Written here without asking the
    provider, so a provider that cannot answer delays the capture, never loses it."""
    payment = await PaymentRepository(session).of_order(order_id)
    if payment is None or payment.status != Status.AUTHORIZED:
        log.info("payments.nothing_to_capture", order_id=str(order_id),
                 status=payment.status if payment is not None else None)
        return
    await _move(session, payment, status=Status.CAPTURE_DUE)


async def capture(session: AsyncSession, providers: Providers, payment_id: uuid.UUID) -> bool:
    """Capture a payment due for it; whether it was (False: it moved meanwhile, nothing to do).
    Raises `PaymentProviderUnavailable` or `ProviderRefused` having changed nothing: the job asks
    again on its next pass. A provider that captured by itself answers as done."""
    payment = await PaymentRepository(session).get(payment_id)
    if payment is None or payment.status != Status.CAPTURE_DUE:
        return False
    assert payment.provider_payment_id is not None  # set by the event that authorized it
    provider = _provider_of(providers, payment)
    await _move(session, payment, status=Status.CAPTURED)
    await _at_provider(payment.provider, provider.capture(provider_payment_id=payment.provider_payment_id,
                                                          amount=payment.amount, currency=payment.currency))
    _count(session, payment.provider, "captured")
    return True


async def _refund_held(session: AsyncSession, provider: PaymentProvider, payment: Payment, reason: str) -> None:
    """Give back the money the provider holds for a cancelled order. An authorization the provider
    will not refund before capture (Razorpay) is voided instead: the provider releases it itself."""
    held = Status(payment.status)
    assert payment.provider_payment_id is not None  # set by the event that authorized it
    await _move(session, payment, status=Status.REFUNDED, order_cancelled=True)
    try:
        await _refund(session, provider, payment, provider_payment_id=payment.provider_payment_id,
                      amount=payment.amount)
    except ProviderRefused:
        if held is Status.CAPTURED:
            raise
        log.info("payments.authorization_released", payment_id=str(payment.id), provider=payment.provider)
        await _at_provider(payment.provider, provider.void(reference=payment.reference or "",
                                                           provider_payment_id=payment.provider_payment_id))
        await _move(session, payment, status=Status.VOIDED)
        await _record_given_back(session, payment, kind="void", amount=payment.amount, reason=reason)
        return
    await _record_given_back(session, payment, kind="refund", amount=payment.amount, reason=reason)


# Webhooks and client callbacks ---------------------------------------------------------------------------

async def receive_webhook(session: AsyncSession, providers: Providers, provider_name: str, *, body: bytes,
                          headers: Mapping[str, str]) -> str:
    """Verify, de-duplicate and apply one webhook of `provider_name`: "applied", "duplicate" (its
    event was applied before: nothing done) or "unmatched" (about no payment of this tenant: noted).
    Raises `InvalidProviderSignature` or `MalformedProviderMessage` having changed nothing."""
    provider = providers.get(provider_name)
    if provider is None:
        raise ProviderNotFound(f"No payments are taken with {provider_name!r} here")
    try:
        event = provider.parse_webhook(body=body, headers=headers)
    except InvalidSignature as exc:
        log.warning("payments.webhook_signature_invalid", provider=provider_name)
        raise InvalidProviderSignature("The webhook's signature does not verify") from exc
    except MalformedWebhook as exc:
        log.warning("payments.webhook_malformed", provider=provider_name, error=str(exc)[:200])
        raise MalformedProviderMessage(str(exc)) from exc
    payment = await _payment_of(session, provider_name, event)
    if event.event_id is not None:
        receipt = WebhookReceipt(provider=provider_name, event_id=event.event_id, kind=event.kind,
                                 payment_id=payment.id if payment is not None else None, received_at=utcnow())
        if not await ReceiptRepository(session).add(receipt):
            log.info("payments.webhook_replayed", provider=provider_name, event_id=event.event_id)
            return "duplicate"
    if payment is None:
        log.info("payments.webhook_unmatched", provider=provider_name, event_id=event.event_id, kind=event.kind,
                 reference=event.reference, provider_payment_id=event.provider_payment_id)
        return "unmatched"
    log.info("payments.webhook_received", provider=provider_name, event_id=event.event_id, kind=event.kind,
             payment_id=str(payment.id))
    await _apply(session, provider, payment, event)
    return "applied"


async def verify_callback(session: AsyncSession, providers: Providers, principal: Principal,
                          payment_id: uuid.UUID, payload: Mapping[str, str]) -> schemas.Payment:
    """What the provider's checkout handed the customer's client after paying, verified against the
    payment's own intent: the same effect as the provider's webhook."""
    payment = await _own_payment(session, principal, payment_id, owner_only=True)
    provider = providers.get(payment.provider)
    if provider is None or payment.reference is None:
        raise PaymentNotPending(f"A payment {payment.status} takes no callback", payment_status=payment.status)
    try:
        event = provider.verify_callback(reference=payment.reference, payload=payload)
    except InvalidSignature as exc:
        log.warning("payments.callback_signature_invalid", payment_id=str(payment.id), provider=payment.provider)
        raise InvalidProviderSignature("The payment's signature does not verify") from exc
    await _apply(session, provider, payment, event)
    return render(payment)


async def _payment_of(session: AsyncSession, provider: str, event: ProviderEvent) -> Payment | None:
    payments = PaymentRepository(session)
    if event.reference:
        return await payments.by_reference(provider, event.reference)
    if event.provider_payment_id:  # a refund names only its payment
        return await payments.by_provider_payment_id(provider, event.provider_payment_id)
    return None


async def _apply(session: AsyncSession, provider: PaymentProvider, payment: Payment, event: ProviderEvent) -> None:
    if event.kind in ("authorized", "captured"):
        await _money_taken(session, provider, payment, event)
    elif event.kind == "failed":
        await _declined(session, payment, event)
    elif event.kind == "refunded":
        processed = await RefundRepository(session).mark_processed(payment.id)
        log.info("payments.refund_noted", payment_id=str(payment.id), status=payment.status, refunds=processed)


async def _money_taken(session: AsyncSession, provider: PaymentProvider, payment: Payment,
                       event: ProviderEvent) -> None:
    status = Status(payment.status)
    provider_payment_id = event.provider_payment_id or payment.provider_payment_id
    if status is Status.REQUESTED:
        if provider_payment_id is None:
            # Razorpay's order.paid may name no payment; its payment.captured, sent alongside, does.
            # A payment holding money always knows the provider's payment, to refund it.
            log.info("payments.event_without_payment_id", payment_id=str(payment.id), kind=event.kind)
            return
        if event.amount is not None and event.amount != payment.amount:
            # Never keep money that does not pay the order: give it back, and fail the payment.
            log.error("payments.amount_mismatch", payment_id=str(payment.id), amount=payment.amount,
                      paid=event.amount)
            await _give_back(session, provider, payment, provider_payment_id, amount=event.amount,
                             reason="amount_mismatch", failure="amount_mismatch")
            return
        now = utcnow()
        await _move(session, payment, status=Status.CAPTURED if event.kind == "captured" else Status.AUTHORIZED,
                    provider_payment_id=provider_payment_id, updated_at=now)
        await record_event(session, PaymentAuthorizedV1(
            order_id=payment.order_id, payment_id=payment.id, provider=payment.provider, amount=_money(payment),
            authorized_at=now), aggregate_id=payment.order_id)
        _count(session, payment.provider, "authorized")
    elif status in (Status.AUTHORIZED, Status.CAPTURE_DUE) and event.kind == "captured":
        await _move(session, payment, status=Status.CAPTURED, provider_payment_id=provider_payment_id)
    elif status in (Status.FAILED, Status.VOIDED):
        # Money taken after the payment was given up: a late webhook for a cancelled order (its intent
        # voided), or a later attempt that succeeded after one failed.
        await _give_back(session, provider, payment, provider_payment_id,
                         amount=event.amount if event.amount is not None else payment.amount,
                         reason="order_cancelled" if payment.order_cancelled else "late_payment")
    else:
        log.info("payments.event_ignored", payment_id=str(payment.id), kind=event.kind, status=payment.status)


async def _declined(session: AsyncSession, payment: Payment, event: ProviderEvent) -> None:
    if payment.status != Status.REQUESTED:
        log.info("payments.event_ignored", payment_id=str(payment.id), kind=event.kind, status=payment.status)
        return
    reason = (event.reason or "payment_failed")[:200]
    await _move(session, payment, status=Status.FAILED, failure_reason=reason,
                provider_payment_id=event.provider_payment_id or payment.provider_payment_id)
    await _record_failed(session, payment, reason)


async def _give_back(session: AsyncSession, provider: PaymentProvider, payment: Payment,
                     provider_payment_id: str | None, *, amount: int, reason: str, failure: str | None = None) -> None:
    """Refund money the provider took for a payment that must not keep it."""
    if provider_payment_id is None:
        # Only a payment the provider names can be refunded; the event that does follows.
        log.info("payments.event_without_payment_id", payment_id=str(payment.id), reason=reason)
        return
    values: dict[str, Any] = {"failure_reason": failure} if failure is not None else {}
    await _move(session, payment, status=Status.REFUNDED, provider_payment_id=provider_payment_id, **values)
    await _refund(session, provider, payment, provider_payment_id=provider_payment_id, amount=amount)
    if failure is not None:
        await _record_failed(session, payment, failure)
    await _record_given_back(session, payment, kind="refund", amount=amount, reason=reason)


async def _refund(session: AsyncSession, provider: PaymentProvider, payment: Payment, *, provider_payment_id: str,
                  amount: int) -> None:
    """Ask the provider for the payment's one refund (asked again, the same key answers the same
    refund), and keep it."""
    key = refund_key(payment.id)
    refund_id = await _at_provider(payment.provider, provider.refund(provider_payment_id=provider_payment_id,
                                                                     amount=amount, idempotency_key=key))
    now = utcnow()
    RefundRepository(session).add(Refund(payment_id=payment.id, provider_refund_id=refund_id, amount=amount,
                                         currency=payment.currency, idempotency_key=key, status="issued",
                                         created_at=now, updated_at=now))
    log.info("payments.refund_issued", payment_id=str(payment.id), refund_id=refund_id, amount=amount)


def refund_key(payment_id: uuid.UUID) -> str:
    """The idempotency key of a payment's refund: 39 characters, within Razorpay's 40 for a receipt."""
    return f"refund-{payment_id.hex}"


# The sandbox's hosted page -------------------------------------------------------------------------------

async def choose_on_hosted_page(session: AsyncSession, principal: Principal, payment_id: uuid.UUID,
                                outcome: Outcome, page: HostedPage) -> None:
    """The customer chose `outcome` on the sandbox's page (once): its webhooks follow, later."""
    payment = await _own_payment(session, principal, payment_id, owner_only=True)
    if payment.provider != SandboxProvider.name:
        raise NotASandboxPayment(f"The payment is made with {payment.provider}, not on the sandbox's page")
    if payment.status != Status.REQUESTED or payment.hosted_outcome is not None:
        raise PaymentNotPending(f"The payment is {payment.status} and its outcome chosen already"
                                if payment.hosted_outcome else f"The payment is {payment.status}",
                                payment_status=payment.status)
    await _move(session, payment, hosted_outcome=outcome)
    log.info("payments.hosted_outcome_chosen", payment_id=str(payment.id), outcome=outcome)
    _deliver_after_commit(session, page, payment, outcome)


def _deliver_after_commit(session: AsyncSession, page: HostedPage, payment: Payment, outcome: Outcome) -> None:
    tenant_id, reference, amount = payment.tenant_id, payment.reference, payment.amount
    assert reference is not None

    async def deliver() -> None:
        page.deliver_later(tenant_id=tenant_id, reference=reference, outcome=outcome, amount=amount)

    after_commit(session, deliver)


# Reading ------------------------------------------------------------------------------------------------

async def read_payment(session: AsyncSession, principal: Principal, payment_id: uuid.UUID) -> schemas.Payment:
    return render(await _own_payment(session, principal, payment_id))


async def _own_payment(session: AsyncSession, principal: Principal, payment_id: uuid.UUID, *,
                       owner_only: bool = False) -> Payment:
    """The payment, if the caller may see it: its order's customer, or (unless `owner_only`) a
    tenant admin. Anyone else is told it does not exist."""
    payment = await PaymentRepository(session).get(payment_id)
    is_owner = (payment is not None and principal.user_id is not None
                and str(payment.customer_id) == principal.user_id)
    if payment is None or not (is_owner or (not owner_only and principal.has_any(ADMIN_ROLES))):
        raise PaymentNotFound(f"There is no payment {payment_id}")
    return payment


def render(payment: Payment) -> schemas.Payment:
    return schemas.Payment(
        id=payment.id, order_id=payment.order_id, provider=payment.provider, status=payment.status,
        amount=schemas.Money(amount=payment.amount, currency=payment.currency),
        client=dict(payment.client) if payment.status == Status.REQUESTED else {},
        created_at=payment.created_at, updated_at=payment.updated_at)


# Shared steps -------------------------------------------------------------------------------------------

async def _move(session: AsyncSession, payment: Payment, **values: Any) -> None:
    """Write `values` over the version the payment was read at, and keep the object in step with the
    row; `TransientConflict` when another unit of work changed it first (nothing written)."""
    values.setdefault("updated_at", utcnow())
    if not await PaymentRepository(session).step(payment, **values):
        raise TransientConflict(f"payment {payment.id} changed while it was being updated")
    for key, value in values.items():
        set_committed_value(payment, key, value)
    set_committed_value(payment, "version", payment.version + 1)
    if "status" in values:
        log.info("payments.moved", payment_id=str(payment.id), order_id=str(payment.order_id), to=values["status"])


async def _record_failed(session: AsyncSession, payment: Payment, reason: str) -> None:
    await record_event(session, PaymentFailedV1(order_id=payment.order_id, payment_id=payment.id,
                                                provider=payment.provider, reason=reason, failed_at=utcnow()),
                       aggregate_id=payment.order_id)
    _count(session, payment.provider, "failed")


async def _record_given_back(session: AsyncSession, payment: Payment, *, kind: Literal["refund", "void"],
                             amount: int, reason: str) -> None:
    await record_event(session, PaymentRefundedV1(
        order_id=payment.order_id, payment_id=payment.id, provider=payment.provider,
        amount=MoneyV1(amount=amount, currency=payment.currency), kind=kind, reason=reason,
        refunded_at=utcnow()), aggregate_id=payment.order_id)
    _count(session, payment.provider, "refunded" if kind == "refund" else "voided")


def _provider_of(providers: Providers, payment: Payment) -> PaymentProvider:
    provider = providers.get(payment.provider)
    if provider is None:  # it took this payment's money, and is no longer configured
        raise _unavailable(payment.provider)
    return provider


async def _at_provider(name: str, call: Awaitable[T]) -> T:
    try:
        return await call
    except ProviderUnavailable as exc:
        raise _unavailable(name) from exc


def _unavailable(name: str) -> PaymentProviderUnavailable:
    log.warning("payments.provider_unavailable", provider=name)
    return PaymentProviderUnavailable(f"The payment provider {name} cannot answer now", headers={"Retry-After": "1"})


def _money(payment: Payment) -> MoneyV1:
    return MoneyV1(amount=payment.amount, currency=payment.currency)


def _count(session: AsyncSession, provider: str, outcome: str) -> None:
    async def counted() -> None:
        PAYMENTS.labels(provider, outcome).inc()

    after_commit(session, counted)
