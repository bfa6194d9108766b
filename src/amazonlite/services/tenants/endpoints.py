from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from amazonlite.platform.errors import Forbidden, Unauthorized, ValidationFailed, problem_responses
from amazonlite.platform.pagination import CursorParam, InvalidCursor, Limit, Page
from amazonlite.platform.security import AdminUser
from amazonlite.platform.tenancy import TENANT_PATTERN
from amazonlite.services.tenants import service
from amazonlite.services.tenants.auth import AdminSession, PlatformSession, is_platform_admin
from amazonlite.services.tenants.errors import (
    PlatformTenantNotSuspendable,
    StatusChangeForbidden,
    TenantExists,
    TenantNotFound,
)
from amazonlite.services.tenants.schemas import Tenant, TenantCreate, TenantUpdate

router = APIRouter(prefix="/api/v1/admin/tenants", tags=["tenants"])

TenantIdPath = Annotated[str, Path(max_length=64, pattern=TENANT_PATTERN.pattern,
                                   description="The tenant's id (a slug)")]


@router.post("", status_code=201, response_model=Tenant,
             responses=problem_responses(Unauthorized, Forbidden, ValidationFailed, TenantExists))
async def create_tenant(data: TenantCreate, session: PlatformSession) -> Tenant:
    """Create a tenant (platform admins)."""
    return await service.create_tenant(session, data)


@router.get("", response_model=Page[Tenant],
            responses=problem_responses(Unauthorized, Forbidden, InvalidCursor, ValidationFailed))
async def list_tenants(session: PlatformSession, limit: Limit = 50, cursor: CursorParam = None) -> Page[Tenant]:
    """Every tenant, by id (platform admins)."""
    return await service.list_tenants(session, limit=limit, cursor=cursor)


@router.get("/{tenant_id}", response_model=Tenant,
            responses=problem_responses(Unauthorized, Forbidden, TenantNotFound, ValidationFailed))
async def read_tenant(tenant_id: TenantIdPath, session: AdminSession) -> Tenant:
    """A tenant's settings: any tenant for a platform admin, their own for a tenant admin."""
    return await service.read_tenant(session, tenant_id)


@router.patch("/{tenant_id}", response_model=Tenant,
              responses=problem_responses(Unauthorized, Forbidden, TenantNotFound, ValidationFailed,
                                          PlatformTenantNotSuspendable, StatusChangeForbidden))
async def update_tenant(tenant_id: TenantIdPath, changes: TenantUpdate, principal: AdminUser,
                        session: AdminSession) -> Tenant:
    """Change a tenant's settings: any tenant for a platform admin, their own for a tenant admin.
    Only a platform admin changes a status: it can always reactivate a suspended tenant, and the
    `default` tenant (the platform admins' own) cannot be suspended."""
    return await service.update_tenant(session, tenant_id, changes, by_platform_admin=is_platform_admin(principal))
