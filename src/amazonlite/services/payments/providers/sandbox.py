"""The sandbox: a built-in payment gateway that moves no money but behaves like a real one.

The customer "pays" on a hosted page (the intent's `page_url`) by posting an outcome, success or
failure; the gateway then sends signed webhooks, and the service learns the outcome only from them,
as it would from Razorpay. Settings make it misbehave the way real gateways do: declines, latency,
duplicate deliveries and deliveries out of order.

Webhook wire format (a POST to the service's sandbox webhook endpoint):

    body     {"id": "evt_<hex>", "type": "<type>",
              "data": {"intent": "<the intent's reference>", "payment": "sbxpay_<hex>" | null,
                       "amount": <int, minor units> | null, "reason": "<why it failed>" | null}}
    headers  X-Sandbox-Signature: hex HMAC-SHA256 of the raw body under sandbox_webhook_secret
             X-Sandbox-Event-Id:  the body's "id" (a retry of a delivery carries the same id)

Types: `payment.authorized` (the customer paid), `payment.failed` (declined; `reason` says why),
`refund.processed` (money went back), `intent.completed` (the hosted page's session ended, sent after
the outcome; informational). Any type but the first three parses as "ignored", so the gateway can
grow new types without breaking the service.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections.abc import Mapping
from typing import Literal

import structlog

from amazonlite.services.payments.providers.base import (
    Intent,
    InvalidSignature,
    MalformedWebhook,
    ProviderEvent,
    ProviderEventKind,
    ProviderSettings,
    get_header,
    hmac_sha256_hex,
    load_json_object,
    optional_field,
    signature_matches,
)

log = structlog.get_logger("amazonlite.payments")

SIGNATURE_HEADER = "X-Sandbox-Signature"
EVENT_ID_HEADER = "X-Sandbox-Event-Id"

Webhook = tuple[bytes, dict[str, str]]

_KINDS: dict[str, ProviderEventKind] = {
    "payment.authorized": "authorized",
    "payment.failed": "failed",
    "refund.processed": "refunded",
}


class SandboxProvider:
    name = "sandbox"

    def __init__(self, settings: ProviderSettings, *, rng: random.Random | None = None) -> None:
        self._settings = settings
        self._secret = settings.sandbox_webhook_secret.get_secret_value()
        # Decides which successes become declines; a test passes a seeded one.
        self._random = rng or random.Random()

    @property
    def latency_s(self) -> float:
        """How long the service waits before delivering the webhooks of a customer's action."""
        return self._settings.sandbox_latency_ms / 1000

    @property
    def auto_approve(self) -> bool:
        """Whether the service completes sandbox intents itself, as if the customer chose success."""
        return self._settings.sandbox_auto_approve

    async def create_intent(self, *, payment_id: uuid.UUID, order_id: uuid.UUID, amount: int,
                            currency: str) -> Intent:
        base_url = self._settings.public_base_url.rstrip("/")
        return Intent(reference=f"sbx_{payment_id.hex}",
                      client={"page_url": f"{base_url}/api/v1/payments/sandbox/{payment_id}/complete",
                              "method": "POST",
                              "body": '{"outcome": "success|failure"}'})

    def webhooks_for(self, reference: str, outcome: Literal["success", "failure"], amount: int) -> list[Webhook]:
        """The signed webhooks (body, headers) the gateway sends, in delivery order, once the customer
        chose `outcome` on the hosted page of intent `reference`."""
        payment = f"sbxpay_{uuid.uuid4().hex}"
        if outcome == "success" and self._random.random() < self._settings.sandbox_failure_rate:
            outcome, reason = "failure", "card_declined"
        else:
            reason = "payment_failed"
        if outcome == "success":
            result = self.signed_webhook("payment.authorized", reference=reference, provider_payment_id=payment,
                                         amount=amount)
        else:
            result = self.signed_webhook("payment.failed", reference=reference, provider_payment_id=payment,
                                         amount=amount, reason=reason)
        webhooks = [result, self.signed_webhook("intent.completed", reference=reference, provider_payment_id=payment,
                                                amount=amount)]
        if self._settings.sandbox_duplicate_webhooks:
            webhooks = [webhook for webhook in webhooks for _ in range(2)]
        if self._settings.sandbox_reorder_webhooks:
            webhooks.reverse()
        return webhooks

    def signed_webhook(self, type_: str, *, reference: str, provider_payment_id: str | None = None,
                       amount: int | None = None, reason: str | None = None) -> Webhook:
        """One webhook of the wire format above, with a new event id, signed."""
        event_id = f"evt_{uuid.uuid4().hex}"
        body = json.dumps({"id": event_id, "type": type_,
                           "data": {"intent": reference, "payment": provider_payment_id, "amount": amount,
                                    "reason": reason}}, separators=(",", ":")).encode()
        return body, {SIGNATURE_HEADER: hmac_sha256_hex(self._secret, body), EVENT_ID_HEADER: event_id}

    def verify_callback(self, *, reference: str, payload: Mapping[str, str]) -> ProviderEvent:
        raise InvalidSignature("the sandbox confirms payments by webhook only")

    def parse_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        signature = get_header(headers, SIGNATURE_HEADER)
        if signature is None or not signature_matches(self._secret, body, signature):
            raise InvalidSignature("the sandbox webhook's signature does not verify")
        document = load_json_object(body)
        event_id, type_, data = document.get("id"), document.get("type"), document.get("data")
        if not isinstance(event_id, str) or not isinstance(type_, str) or not isinstance(data, dict):
            raise MalformedWebhook("a sandbox webhook needs a string id and type and a data object")
        # The header is not signed; the body's id is. A header naming another event is a forgery.
        if get_header(headers, EVENT_ID_HEADER) != event_id:
            raise InvalidSignature("the sandbox webhook's event id header is not the signed body's id")
        reference = data.get("intent")
        if not isinstance(reference, str) or not reference:
            raise MalformedWebhook("a sandbox webhook's data needs the intent it is about")
        return ProviderEvent(event_id=event_id, reference=reference, kind=_KINDS.get(type_, "ignored"),
                             provider_payment_id=optional_field(data, "payment", str),
                             amount=optional_field(data, "amount", int), reason=optional_field(data, "reason", str))

    async def capture(self, *, provider_payment_id: str, amount: int, currency: str) -> None:
        log.info("payments.sandbox_payment_captured", provider_payment_id=provider_payment_id, amount=amount,
                 currency=currency)

    async def refund(self, *, provider_payment_id: str, amount: int, idempotency_key: str) -> str:
        """The refund id derives from the key alone, so asking again with the same key answers the same refund."""
        refund_id = f"sbxrfd_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]}"
        log.info("payments.sandbox_payment_refunded", provider_payment_id=provider_payment_id, amount=amount,
                 refund_id=refund_id)
        return refund_id

    async def void(self, *, reference: str, provider_payment_id: str | None) -> None:
        log.info("payments.sandbox_intent_voided", reference=reference, provider_payment_id=provider_payment_id)

