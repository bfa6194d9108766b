"""Razorpay, through its official SDK: orders, payment signatures, webhooks, captures and refunds.

The flow: `create_intent` creates a Razorpay order; the client opens Razorpay Checkout with the
intent's public `client` values; Checkout hands the client `razorpay_payment_id`, `razorpay_order_id`
and `razorpay_signature`, which the service checks with `verify_callback`; webhooks confirm the same
outcome independently, and report captures, failures and refunds.

The SDK is synchronous (requests), so every call runs in a worker thread, never on the event loop.
Each HTTP request carries `razorpay_timeout_seconds` as its requests timeout (the SDK passes extra
keyword arguments of every call through to its requests session); the SDK's own retries stay off,
since they sleep in the thread: the service retries later instead. Errors map to the interface's:
Razorpay's BAD_REQUEST_ERROR (its 4xx answers) is `ProviderRefused`; SERVER_ERROR, GATEWAY_ERROR, a
network error, a timeout or an unreadable answer is `ProviderUnavailable`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

import razorpay
import requests
import structlog
from razorpay.errors import BadRequestError, GatewayError, ServerError

from amazonlite.services.payments.providers.base import (
    Intent,
    InvalidSignature,
    MalformedWebhook,
    ProviderEvent,
    ProviderEventKind,
    ProviderRefused,
    ProviderUnavailable,
    get_header,
    load_json_object,
    optional_field,
    signature_matches,
)

log = structlog.get_logger("amazonlite.payments")

SIGNATURE_HEADER = "X-Razorpay-Signature"
EVENT_ID_HEADER = "X-Razorpay-Event-Id"
# The description of the BAD_REQUEST_ERROR Razorpay answers to a capture of a captured payment.
ALREADY_CAPTURED = "this payment has already been captured"
# Razorpay lists at most 100 refunds of a payment per page; a payment has far fewer.
REFUNDS_PAGE = 100

_PAYMENT_EVENTS: dict[str, ProviderEventKind] = {
    "payment.authorized": "authorized",
    "payment.captured": "captured",
    "payment.failed": "failed",
}
# refund.created as well as refund.processed: Razorpay has accepted the refund and will not take it back
# on its own. refund.failed is ignored: the interface has no kind for it, the payment stays captured,
# and a refund Razorpay could not process is settled by hand from its dashboard.
_REFUND_EVENTS = frozenset({"refund.created", "refund.processed"})


class RazorpayProvider:
    name = "razorpay"

    def __init__(self, *, key_id: str, key_secret: str, webhook_secret: str, timeout_seconds: float = 10.0) -> None:
        self._key_id = key_id
        self._key_secret = key_secret
        # Webhooks are signed with the secret set on the webhook in the dashboard, not the API key secret.
        self._webhook_secret = webhook_secret
        self._timeout = timeout_seconds
        # One client and one requests session for every thread: the calls share only urllib3's connection
        # pool (thread-safe) and Razorpay sets no cookies.
        self._client = razorpay.Client(auth=(key_id, key_secret))

    async def create_intent(self, *, payment_id: UUID, order_id: UUID, amount: int, currency: str) -> Intent:
        order = await self._call(self._client.order.create,
                                 {"amount": amount, "currency": currency, "receipt": str(order_id),
                                  "notes": {"payment_id": str(payment_id), "order_id": str(order_id)}})
        reference = order.get("id") if isinstance(order, dict) else None
        if not isinstance(reference, str):
            raise ProviderUnavailable("Razorpay answered the order creation without an order id")
        log.info("payments.razorpay_order_created", reference=reference, payment_id=str(payment_id),
                 order_id=str(order_id))
        return Intent(reference=reference, client={"key_id": self._key_id, "order_id": reference,
                                                   "amount": str(amount), "currency": currency})

    def verify_callback(self, *, reference: str, payload: Mapping[str, str]) -> ProviderEvent:
        """Checkout's handler values, checked against the order id the service stored (`reference`):
        a payload naming another order, or signed for one, fails."""
        order_id = payload.get("razorpay_order_id")
        payment_id = payload.get("razorpay_payment_id")
        signature = payload.get("razorpay_signature")
        if not order_id or not payment_id or not signature:
            raise InvalidSignature("the callback needs razorpay_order_id, razorpay_payment_id and razorpay_signature")
        if order_id != reference:
            raise InvalidSignature("the callback is about another Razorpay order")
        if not signature_matches(self._key_secret, f"{reference}|{payment_id}".encode(), signature):
            raise InvalidSignature("the Razorpay payment signature does not verify")
        return ProviderEvent(event_id=None, reference=reference, kind="authorized", provider_payment_id=payment_id)

    def parse_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        """The event's reference is the payment's order id (for order.paid, the order's id), "" for a
        payment made outside an order. A refund entity names only its payment: a refund event carries
        the order id when Razorpay includes the payment entity (it does today), else "", and the
        service resolves refunds by `provider_payment_id`."""
        signature = get_header(headers, SIGNATURE_HEADER)
        if signature is None or not signature_matches(self._webhook_secret, body, signature):
            raise InvalidSignature("the Razorpay webhook's signature does not verify")
        event_id = get_header(headers, EVENT_ID_HEADER)
        if not event_id:
            raise MalformedWebhook("a Razorpay webhook without an X-Razorpay-Event-Id header cannot be de-duplicated")
        document = load_json_object(body)
        event, payload = document.get("event"), document.get("payload")
        if not isinstance(event, str) or not isinstance(payload, dict):
            raise MalformedWebhook("a Razorpay webhook needs an event name and a payload object")
        payment, order, refund = (_entity(payload, name) for name in ("payment", "order", "refund"))

        if event in _PAYMENT_EVENTS:
            if payment is None:
                raise MalformedWebhook(f"{event} without a payment entity")
            kind = _PAYMENT_EVENTS[event]
            return ProviderEvent(event_id=event_id, reference=optional_field(payment, "order_id", str) or "",
                                 kind=kind, provider_payment_id=_required_id(payment, "id", event),
                                 amount=optional_field(payment, "amount", int),
                                 reason=_failure_reason(payment) if kind == "failed" else None)
        if event == "order.paid":
            if order is None:
                raise MalformedWebhook("order.paid without an order entity")
            return ProviderEvent(event_id=event_id, reference=_required_id(order, "id", event), kind="captured",
                                 provider_payment_id=None if payment is None else optional_field(payment, "id", str),
                                 amount=optional_field(order, "amount_paid", int))
        if event in _REFUND_EVENTS:
            if refund is None:
                raise MalformedWebhook(f"{event} without a refund entity")
            order_id = None if payment is None else optional_field(payment, "order_id", str)
            return ProviderEvent(event_id=event_id, reference=order_id or "", kind="refunded",
                                 provider_payment_id=_required_id(refund, "payment_id", event),
                                 amount=optional_field(refund, "amount", int))
        return ProviderEvent(event_id=event_id, reference=_any_reference(payment, order), kind="ignored")

    async def capture(self, *, provider_payment_id: str, amount: int, currency: str) -> None:
        """Capture an authorized payment. Razorpay refuses to capture a captured payment (an account set to
        capture automatically has done it already); that is the outcome asked for, so it succeeds."""
        try:
            await self._call(self._client.payment.capture, provider_payment_id, amount, {"currency": currency})
        except ProviderRefused as error:
            if ALREADY_CAPTURED not in str(error).lower():
                raise
            log.info("payments.razorpay_payment_already_captured", provider_payment_id=provider_payment_id)
            return
        log.info("payments.razorpay_payment_captured", provider_payment_id=provider_payment_id, amount=amount)

    async def refund(self, *, provider_payment_id: str, amount: int, idempotency_key: str) -> str:
        """Refund `amount` of a captured payment, once per key: a refund of the payment whose receipt (or
        notes.idempotency_key) is the key is returned instead of creating another. Razorpay takes no
        idempotency key on refunds, so this look-up is the guard; the service must not ask twice with the
        same key at the same moment. Keep the key at most 40 characters, Razorpay's receipt limit."""
        refunds = await self._call(self._client.payment.fetch_multiple_refund, provider_payment_id,
                                   {"count": REFUNDS_PAGE})
        items = refunds.get("items") if isinstance(refunds, dict) else None
        for existing in items if isinstance(items, list) else []:
            if isinstance(existing, dict) and _refund_key_matches(existing, idempotency_key):
                refund_id = existing.get("id")
                if isinstance(refund_id, str):
                    log.info("payments.razorpay_refund_found", provider_payment_id=provider_payment_id,
                             refund_id=refund_id)
                    return refund_id
        created = await self._call(self._client.payment.refund, provider_payment_id,
                                   {"amount": amount, "receipt": idempotency_key,
                                    "notes": {"idempotency_key": idempotency_key}})
        refund_id = created.get("id") if isinstance(created, dict) else None
        if not isinstance(refund_id, str):
            raise ProviderUnavailable("Razorpay answered the refund without a refund id")
        log.info("payments.razorpay_refund_created", provider_payment_id=provider_payment_id, refund_id=refund_id,
                 amount=amount)
        return refund_id

    async def void(self, *, reference: str, provider_payment_id: str | None) -> None:
        """Nothing to do, by design. Razorpay cannot void an authorization: a payment that is authorized and
        never captured is refunded to the customer by Razorpay itself (an auto-refund, reported by
        refund.* webhooks), and an order nobody paid simply lapses. A captured payment is not voided but
        refunded: the service calls `refund` for it."""
        log.info("payments.razorpay_intent_voided", reference=reference, provider_payment_id=provider_payment_id)

    async def _call(self, operation: Callable[..., Any], *args: Any) -> Any:
        try:
            return await asyncio.to_thread(operation, *args, timeout=self._timeout)
        except BadRequestError as error:
            raise ProviderRefused(str(error) or "Razorpay refused the request") from error
        except (ServerError, GatewayError, requests.RequestException) as error:
            raise ProviderUnavailable(f"Razorpay is unavailable: {str(error) or type(error).__name__}") from error


def _entity(payload: dict[str, Any], name: str) -> dict[str, Any] | None:
    """`payload[name]["entity"]`, Razorpay's envelope of each entity an event carries."""
    wrapper = payload.get(name)
    entity = wrapper.get("entity") if isinstance(wrapper, dict) else None
    return entity if isinstance(entity, dict) else None


def _required_id(entity: dict[str, Any], key: str, event: str) -> str:
    value = optional_field(entity, key, str)
    if not value:
        raise MalformedWebhook(f"{event} without the {key!r} of its entity")
    return value


def _failure_reason(payment: dict[str, Any]) -> str:
    return (optional_field(payment, "error_description", str) or optional_field(payment, "error_reason", str)
            or optional_field(payment, "error_code", str) or "payment_failed")


def _any_reference(payment: dict[str, Any] | None, order: dict[str, Any] | None) -> str:
    """The order an ignored event is about, for the log line, or "": never fails on an event nobody acts on."""
    for entity, key in ((payment, "order_id"), (order, "id")):
        value = entity.get(key) if entity is not None else None
        if isinstance(value, str) and value:
            return value
    return ""


def _refund_key_matches(refund: dict[str, Any], key: str) -> bool:
    # Razorpay sends empty notes as [] (a PHP array), not {}.
    notes = refund.get("notes")
    return refund.get("receipt") == key or (isinstance(notes, dict) and notes.get("idempotency_key") == key)
