from __future__ import annotations

from amazonlite.platform.errors import AppError, BadRequest, Conflict, NotFound, ServiceUnavailable


class PaymentNotFound(NotFound):
    type = "payment-not-found"
    title = "No such payment"


class ProviderNotFound(NotFound):
    type = "payment-provider-not-found"
    title = "This shop takes no payments with that provider"


class PaymentNotPending(Conflict):
    """Carries `payment_status`. The payment is no longer waiting for the customer (or the customer
    has already chosen an outcome on the sandbox's page)."""

    type = "payment-not-pending"
    title = "The payment is no longer waiting to be paid"


class NotASandboxPayment(Conflict):
    type = "not-a-sandbox-payment"
    title = "The payment is not made on the sandbox's page"


class InvalidProviderSignature(AppError):
    """A webhook or client callback whose signature does not verify: nothing was changed."""

    status = 401
    type = "invalid-signature"
    title = "The signature does not verify"


class MalformedProviderMessage(BadRequest):
    type = "malformed-webhook"
    title = "The webhook cannot be read"


class PaymentProviderUnavailable(ServiceUnavailable):
    """The provider could not be reached, or failed; always with `Retry-After`. Nothing was changed."""

    type = "payment-provider-unavailable"
    title = "The payment provider cannot answer; try again shortly"
