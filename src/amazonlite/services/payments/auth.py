"""Who may call payments: the customer whose order a payment pays reads it, pays it on the sandbox's
page and hands over the provider's callback; tenant admins read any payment of their tenant (and pay
none). The providers' webhooks are public: their signature is their authentication."""

from __future__ import annotations

from amazonlite.platform.security import CurrentUser

Customer = CurrentUser
PaymentReader = CurrentUser  # the order's customer, or an admin (service._own_payment decides)

__all__ = ["Customer", "PaymentReader"]
