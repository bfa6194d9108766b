"""Payment providers behind one interface, and the registry of those this deployment offers.

The sandbox is offered when `sandbox_enabled` (by default outside production: it moves no money, so
a customer "paying" on its page would get the order for free); Razorpay only when its key id, key
secret and webhook secret are all set, so a half-configured Razorpay never takes a payment it cannot
confirm.
"""

from __future__ import annotations

from amazonlite.services.payments.providers.base import (
    Intent,
    InvalidSignature,
    MalformedWebhook,
    PaymentProvider,
    ProviderEvent,
    ProviderEventKind,
    ProviderRefused,
    ProviderSettings,
    ProviderUnavailable,
)
from amazonlite.services.payments.providers.razorpay import RazorpayProvider
from amazonlite.services.payments.providers.sandbox import SandboxProvider

__all__ = [
    "Intent",
    "InvalidSignature",
    "MalformedWebhook",
    "PaymentProvider",
    "ProviderEvent",
    "ProviderEventKind",
    "ProviderRefused",
    "ProviderSettings",
    "ProviderUnavailable",
    "RazorpayProvider",
    "SandboxProvider",
    "build_providers",
]


def build_providers(settings: ProviderSettings) -> dict[str, PaymentProvider]:
    """The providers this deployment offers, by name."""
    providers: dict[str, PaymentProvider] = {}
    if settings.sandbox_enabled:
        providers[SandboxProvider.name] = SandboxProvider(settings)
    key_secret, webhook_secret = settings.razorpay_key_secret, settings.razorpay_webhook_secret
    if (settings.razorpay_key_id and key_secret is not None and key_secret.get_secret_value()
            and webhook_secret is not None and webhook_secret.get_secret_value()):
        razorpay = RazorpayProvider(key_id=settings.razorpay_key_id, key_secret=key_secret.get_secret_value(),
                                    webhook_secret=webhook_secret.get_secret_value(),
                                    timeout_seconds=settings.razorpay_timeout_seconds)
        providers[razorpay.name] = razorpay
    return providers
