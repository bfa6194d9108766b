"""Who may call the users service: every route acts on the signed-in user's own data."""

from __future__ import annotations

from amazonlite.platform.security import CurrentUser

__all__ = ["CurrentUser"]
