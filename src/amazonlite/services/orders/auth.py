"""Who may call orders: a signed-in customer checks out, reads and cancels their own orders; tenant
and platform admins read any order of their tenant (and cancel none: a customer's choice)."""

from __future__ import annotations

from amazonlite.platform.security import CurrentUser

Customer = CurrentUser
OrderReader = CurrentUser  # the owner, or an admin (service._own_order decides)

__all__ = ["Customer", "OrderReader"]
