"""Who may search: anyone (a tenant's shoppers, signed in or not)."""

from __future__ import annotations

from amazonlite.platform.security import CurrentPrincipal

SearchReader = CurrentPrincipal

__all__ = ["SearchReader"]
