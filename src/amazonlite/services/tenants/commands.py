"""Edges of the tenants service outside HTTP: start-up and the CLI (`users create-admin --tenant`,
`tenants list`, `tenants activate`, `tenants suspend`): an operator's way back in when no platform
admin can sign in."""

from __future__ import annotations

import structlog

from amazonlite.platform.service import ServiceRuntime
from amazonlite.platform.tenancy import DEFAULT_TENANT, UNSCOPED, validate_tenant_id
from amazonlite.services.tenants import service
from amazonlite.services.tenants.schemas import Tenant, TenantStatus, TenantUpdate

log = structlog.get_logger("amazonlite.tenants")


async def ensure_tenant(runtime: ServiceRuntime, tenant_id: str, name: str | None = None) -> Tenant:
    """The tenant `tenant_id`, created with default settings when missing. Idempotent and safe to
    run from several processes at once. Raises `platform.tenancy.InvalidTenant` for a bad id."""
    tenant_id = validate_tenant_id(tenant_id)
    async with runtime.db.session(tenant_id=UNSCOPED) as session:
        return await service.ensure_tenant(session, tenant_id, name)


async def all_tenants(runtime: ServiceRuntime) -> list[Tenant]:
    """Every tenant, by id."""
    tenants: list[Tenant] = []
    cursor: str | None = None
    async with runtime.db.session(tenant_id=UNSCOPED) as session:
        while True:
            page = await service.list_tenants(session, limit=500, cursor=cursor)
            tenants += page.items
            if (cursor := page.next_cursor) is None:
                return tenants


async def set_status(runtime: ServiceRuntime, tenant_id: str, status: TenantStatus) -> Tenant:
    """Activate or suspend a tenant, as a platform admin would through the API (the `default` tenant
    is not suspended: `PlatformTenantNotSuspendable`). The gateway notices within its tenant cache's
    lifetime."""
    async with runtime.db.session(tenant_id=UNSCOPED) as session:
        return await service.update_tenant(session, tenant_id, TenantUpdate(status=status), by_platform_admin=True)


async def on_startup(runtime: ServiceRuntime) -> None:
    """The `default` tenant always exists."""
    tenant = await ensure_tenant(runtime, DEFAULT_TENANT, "Default")
    log.info("tenants.default_ready", tenant=tenant.id, status=tenant.status)
