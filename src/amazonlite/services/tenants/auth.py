"""Who may call the tenants service, and through which unit of work.

A tenant admin works in the request's normal session, scoped to their own tenant: the kernel's
tenant scope (and PostgreSQL's row-level security) show them their own tenant row only, so another
tenant's id is simply not found. A platform admin works across tenants: only after the role check
passes does a dependency here open an explicitly unscoped session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.platform.context import bind_tenant
from amazonlite.platform.errors import AppError
from amazonlite.platform.security import AdminUser, Principal, Role, require
from amazonlite.platform.service import RuntimeDep, ServiceRuntime
from amazonlite.platform.tenancy import UNSCOPED

PlatformAdmin = Annotated[Principal, require(Role.PLATFORM_ADMIN)]
PLATFORM_ROLES = frozenset({Role.PLATFORM_ADMIN})


@asynccontextmanager
async def _session(runtime: ServiceRuntime, tenant_id: str) -> AsyncIterator[AsyncSession]:
    # As the kernel's `get_session`: committed by the edge before the response is sent.
    async with runtime.db.session(tenant_id=tenant_id) as session:
        try:
            yield session
        except AppError as exc:
            if exc.keeps_changes:
                await session.commit()
            raise


async def platform_session(principal: PlatformAdmin, runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """An unscoped unit of work, for platform admins only (checked before it opens)."""
    bind_tenant(principal.tenant_id)
    async with _session(runtime, UNSCOPED) as session:
        yield session


async def admin_session(principal: AdminUser, runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """Unscoped for a platform admin; scoped to their own tenant for a tenant admin."""
    bind_tenant(principal.tenant_id)
    scope = UNSCOPED if principal.has_any(PLATFORM_ROLES) else principal.tenant_id
    async with _session(runtime, scope) as session:
        yield session


PlatformSession = Annotated[AsyncSession, Depends(platform_session, scope="function")]
AdminSession = Annotated[AsyncSession, Depends(admin_session, scope="function")]
