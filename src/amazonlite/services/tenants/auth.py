"""Who may call the tenants service, and through which unit of work.

A tenant admin works in the request's normal session, scoped to their own tenant: the kernel's
tenant scope (and PostgreSQL's row-level security) show them their own tenant row only, so another
tenant's id is simply not found. A platform admin works across tenants: only after the role check
passes does a dependency here open an explicitly unscoped session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.platform.context import bind_tenant
from amazonlite.platform.errors import Forbidden
from amazonlite.platform.security import AdminUser, Principal, Role, require
from amazonlite.platform.service import RuntimeDep
from amazonlite.platform.tenancy import DEFAULT_TENANT, UNSCOPED

PLATFORM_ROLES = frozenset({Role.PLATFORM_ADMIN})


async def platform_admin(principal: Annotated[Principal, require(Role.PLATFORM_ADMIN)]) -> Principal:
    """Platform administration belongs to accounts of the `default` tenant only."""
    if principal.tenant_id != DEFAULT_TENANT:
        raise Forbidden("Platform administration belongs to the default tenant")
    return principal


PlatformAdmin = Annotated[Principal, Depends(platform_admin)]


def is_platform_admin(principal: Principal) -> bool:
    return principal.has_any(PLATFORM_ROLES) and principal.tenant_id == DEFAULT_TENANT


async def platform_session(principal: PlatformAdmin, runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """An unscoped unit of work, for platform admins only (checked before it opens)."""
    bind_tenant(principal.tenant_id)
    async with runtime.db.session(tenant_id=UNSCOPED) as session:
        yield session


async def admin_session(principal: AdminUser, runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """Unscoped for a platform admin; scoped to their own tenant for a tenant admin."""
    bind_tenant(principal.tenant_id)
    scope = UNSCOPED if is_platform_admin(principal) else principal.tenant_id
    async with runtime.db.session(tenant_id=scope) as session:
        yield session


PlatformSession = Annotated[AsyncSession, Depends(platform_session, scope="function")]
AdminSession = Annotated[AsyncSession, Depends(admin_session, scope="function")]
