"""The one interface every payment provider implements, the errors it raises, and its settings.

The service speaks only this interface: it creates an intent, hands the intent's public `client`
values to the customer's client, learns the outcome from a verified webhook (or a signed client
callback), and later captures, refunds or voids. A provider never sees card data: the customer
enters it on the provider's own page, so there is none to log or store here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar
from uuid import UUID

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Signs the sandbox's webhooks when nothing else is configured: enough for a laptop and the tests,
# useless as a secret because it is public. Set AMAZONLITE_PAYMENTS_SANDBOX_WEBHOOK_SECRET in production.
DEV_SANDBOX_WEBHOOK_SECRET = "amazonlite-sandbox-dev-webhook-secret"

T = TypeVar("T")


class ProviderSettings(BaseSettings):
    """The providers' settings (`AMAZONLITE_PAYMENTS_*`). Razorpay is offered only when its key id,
    key secret and webhook secret are all set."""

    model_config = SettingsConfigDict(env_prefix="AMAZONLITE_PAYMENTS_", extra="ignore")

    # Where clients reach the gateway: the sandbox's hosted page is served under it.
    public_base_url: str = "http://127.0.0.1:8000"

    # The sandbox moves no money: a customer who "pays" on its page gets the order. Offered by default
    # outside production only (`PaymentsSettings`); a staging deployment may turn it on explicitly.
    sandbox_enabled: bool = True
    # Set it wherever the sandbox is on and not a developer's: the default is public, so anyone could
    # forge a sandbox webhook.
    sandbox_webhook_secret: SecretStr = SecretStr(DEV_SANDBOX_WEBHOOK_SECRET)
    # The chance that a customer's "success" on the sandbox page becomes a decline (card_declined).
    sandbox_failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # How long the sandbox gateway takes before it delivers its webhooks.
    sandbox_latency_ms: int = Field(default=0, ge=0)
    # Deliver every webhook twice with the same event id, as real gateways do after a lost answer.
    sandbox_duplicate_webhooks: bool = False
    # Deliver the webhooks of one action last first, as real gateways do when deliveries race.
    sandbox_reorder_webhooks: bool = False
    # The service completes sandbox intents itself, with no customer on the page (benchmarks).
    sandbox_auto_approve: bool = False
    # How long a customer's choice on the sandbox page may wait for its webhooks to be applied before
    # the sandbox sends them again (as real gateways retry a delivery nobody acknowledged): a delivery
    # is lost with the process that held it.
    sandbox_redelivery_seconds: float = Field(default=10.0, gt=0)

    razorpay_key_id: str | None = None
    razorpay_key_secret: SecretStr | None = None
    # The secret set on the webhook in Razorpay's dashboard; it is not the API key secret.
    razorpay_webhook_secret: SecretStr | None = None
    # The longest one HTTP request to Razorpay may take (connect and read each) before it counts as unavailable.
    razorpay_timeout_seconds: float = Field(default=10.0, gt=0)


@dataclass(frozen=True)
class Intent:
    """A payment the provider expects: its id there, and the public values a client needs to pay
    (never a secret)."""

    reference: str
    client: dict[str, str]


ProviderEventKind = Literal["authorized", "captured", "failed", "refunded", "ignored"]


@dataclass(frozen=True)
class ProviderEvent:
    """A verified and parsed webhook or client callback.

    `event_id` is the provider's id of the event, for de-duplication (None for a client callback,
    which the provider does not number). `reference` is the intent it is about; `amount` is in
    minor units when the provider says; `reason` explains a "failed".
    """

    event_id: str | None
    reference: str
    kind: ProviderEventKind
    provider_payment_id: str | None = None
    amount: int | None = None
    reason: str | None = None


class InvalidSignature(Exception):
    """A webhook or callback whose signature is missing or does not verify (the endpoint answers 401)."""


class MalformedWebhook(ValueError):
    """A webhook that is authentic but cannot be read: not a JSON object, or missing what it must
    carry (the endpoint answers 400; the provider will retry, and the retry will fail the same way)."""


class ProviderRefused(Exception):
    """The provider said no (a 4xx from Razorpay); the message says why. Retrying will not help."""


class ProviderUnavailable(Exception):
    """The provider could not be reached or failed (network error, timeout, 5xx): worth retrying later."""


class PaymentProvider(Protocol):
    name: str

    async def create_intent(self, *, payment_id: UUID, order_id: UUID, amount: int, currency: str) -> Intent: ...

    def verify_callback(self, *, reference: str, payload: Mapping[str, str]) -> ProviderEvent:
        """Verify what the provider's checkout handed the client after a payment, against the intent
        the service stored (`reference`), never against an id the payload names."""
        ...

    def parse_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        """Verify the signature over the raw body, then parse it."""
        ...

    async def capture(self, *, provider_payment_id: str, amount: int, currency: str) -> None:
        """Capture an authorized payment; capturing a captured one again succeeds."""
        ...

    async def refund(self, *, provider_payment_id: str, amount: int, idempotency_key: str) -> str:
        """Refund (part of) a captured payment and return the refund's id; the same key returns the
        same refund instead of a second one."""
        ...

    async def void(self, *, reference: str, provider_payment_id: str | None) -> None:
        """Give up an intent that was never captured, so the customer is not charged."""
        ...


def get_header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value whatever the case of its name (a plain dict is as welcome as Starlette's Headers)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def hmac_sha256_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_matches(secret: str, message: bytes, signature: str) -> bool:
    """Whether `signature` is the hex HMAC-SHA256 of `message` under `secret`, compared in constant time.
    Compared as bytes: `compare_digest` raises on a str that is not ASCII, and a header can hold anything."""
    expected = hmac_sha256_hex(secret, message).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", errors="replace"))


def load_json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError as error:  # UnicodeDecodeError is a ValueError too
        raise MalformedWebhook("the webhook body is not JSON") from error
    if not isinstance(document, dict):
        raise MalformedWebhook("the webhook body is not a JSON object")
    return document


def optional_field(entity: Mapping[str, Any], key: str, kind: type[T]) -> T | None:
    """`entity[key]` when it is a `kind` (a bool is no int here: it is never an amount), None when it is
    absent or null; anything else makes the webhook malformed."""
    value = entity.get(key)
    if value is None:
        return None
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    raise MalformedWebhook(f"the webhook's {key!r} must be a {kind.__name__} or null")
