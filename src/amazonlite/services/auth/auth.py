"""Who may call the auth service: signup, login, refresh, email verification, password reset, the
Google sign-in and the JWKS are open to any caller of the tenant; `me` and logout need a signed-in user."""

from __future__ import annotations

from amazonlite.platform.security import CurrentPrincipal, CurrentUser

__all__ = ["CurrentPrincipal", "CurrentUser"]
