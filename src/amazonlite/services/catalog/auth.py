"""Who may call the catalog: anyone reads (only admins see drafts and archived products); tenant and
platform admins write."""

from __future__ import annotations

from amazonlite.platform.security import ADMIN_ROLES, AdminUser, CurrentPrincipal, Principal

CatalogReader = CurrentPrincipal
CatalogAdmin = AdminUser


def sees_everything(principal: Principal) -> bool:
    """Admins see products in every status; everyone else only active ones."""
    return principal.has_any(ADMIN_ROLES)


__all__ = ["CatalogAdmin", "CatalogReader", "sees_everything"]
