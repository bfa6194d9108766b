"""Who may call inventory: anyone reads availability (per-warehouse figures only for tenant and
platform admins); admins change stock, warehouses and thresholds and read the ledger."""

from __future__ import annotations

from amazonlite.platform.security import ADMIN_ROLES, AdminUser, CurrentPrincipal, Principal

InventoryReader = CurrentPrincipal
InventoryAdmin = AdminUser


def sees_warehouses(principal: Principal) -> bool:
    return principal.has_any(ADMIN_ROLES)


__all__ = ["InventoryAdmin", "InventoryReader", "sees_warehouses"]
