"""Who may call the cart: anyone has a cart (a guest's is named by X-Cart-Id, a signed-in user's is
their own); merging needs a signed-in user; coupons are administered by tenant and platform admins."""

from __future__ import annotations

from amazonlite.platform.security import AdminUser, CurrentPrincipal

Shopper = CurrentPrincipal
CouponAdmin = AdminUser

__all__ = ["CouponAdmin", "Shopper"]
