"""The tenants' use cases. Each runs inside the caller's unit of work (scoped or unscoped)."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.platform.pagination import InvalidCursor, Page, decode_cursor, encode_cursor
from amazonlite.platform.tenancy import DEFAULT_TENANT, TENANT_PATTERN
from amazonlite.services.tenants.errors import (
    PlatformTenantNotSuspendable,
    StatusChangeForbidden,
    TenantExists,
    TenantNotFound,
)
from amazonlite.services.tenants.models import TenantRow
from amazonlite.services.tenants.repository import TenantRepository
from amazonlite.services.tenants.schemas import (
    DEFAULT_CURRENCY,
    RateLimits,
    Tenant,
    TenantCreate,
    TenantUpdate,
)

log = structlog.get_logger("amazonlite.tenants")


def to_schema(row: TenantRow) -> Tenant:
    return Tenant(id=row.tenant_id, name=row.name, currency=row.currency, tax_rate_bp=row.tax_rate_bp,
                  rate_limits=RateLimits.model_validate(row.rate_limits), feature_flags=dict(row.feature_flags),
                  reservation_minutes=row.reservation_minutes, payment_minutes=row.payment_minutes,
                  status=row.status,
                  created_at=row.created_at, updated_at=row.updated_at)


def _new_row(data: TenantCreate) -> TenantRow:
    # Set explicitly: in an unscoped session the kernel stamps nothing, in a scoped one it checks.
    return TenantRow(tenant_id=data.id, name=data.name, currency=data.currency, tax_rate_bp=data.tax_rate_bp,
                     rate_limits=data.rate_limits.model_dump(), feature_flags=dict(data.feature_flags),
                     reservation_minutes=data.reservation_minutes, payment_minutes=data.payment_minutes,
                     status="active")


async def create_tenant(session: AsyncSession, data: TenantCreate) -> Tenant:
    repo = TenantRepository(session)
    if not await repo.add_if_absent(_new_row(data)):
        raise TenantExists(f"The tenant {data.id!r} already exists")
    row = await repo.get(data.id)
    assert row is not None
    return to_schema(row)


async def ensure_tenant(session: AsyncSession, tenant_id: str, name: str | None = None) -> Tenant:
    """The tenant, created with default settings if it does not exist (idempotent; a concurrent
    creation of the same tenant is not an error)."""
    repo = TenantRepository(session)
    row = await repo.get(tenant_id)
    if row is None:
        await repo.add_if_absent(_new_row(TenantCreate(id=tenant_id, name=name or tenant_id,
                                                       currency=DEFAULT_CURRENCY)))
        row = await repo.get(tenant_id)
        assert row is not None
    return to_schema(row)


async def read_tenant(session: AsyncSession, tenant_id: str) -> Tenant:
    row = await TenantRepository(session).get(tenant_id)
    if row is None:
        raise TenantNotFound(f"There is no tenant {tenant_id!r}")
    return to_schema(row)


async def update_tenant(session: AsyncSession, tenant_id: str, changes: TenantUpdate, *,
                        by_platform_admin: bool) -> Tenant:
    """Change the fields given. Only a platform admin changes a status (a tenant admin who suspended
    their own tenant could not sign in to undo it), and the `default` tenant is never suspended: its
    accounts are the platform admins, the only ones who could reactivate it."""
    repo = TenantRepository(session)
    row = await repo.get(tenant_id)
    if row is None:
        raise TenantNotFound(f"There is no tenant {tenant_id!r}")
    if changes.status is not None and changes.status != row.status and not by_platform_admin:
        raise StatusChangeForbidden("A tenant's status is changed by a platform admin")
    if tenant_id == DEFAULT_TENANT and changes.status == "suspended":
        raise PlatformTenantNotSuspendable(
            f"The tenant {DEFAULT_TENANT!r} holds the platform's administrators; suspended, nobody could "
            "sign in to reactivate it")
    status = row.status
    given = changes.model_dump(exclude_unset=True)
    for field, value in given.items():
        if value is None:
            continue  # an explicit null leaves the field as it is
        if field == "rate_limits":
            row.rate_limits = dict(value)
        elif field == "feature_flags":
            row.feature_flags = dict(value)
        else:
            setattr(row, field, value)
    await repo.flush()
    await session.refresh(row)
    if row.status != status:
        log.info("tenants.status_changed", tenant=tenant_id, status=row.status)
    return to_schema(row)


async def list_tenants(session: AsyncSession, *, limit: int, cursor: str | None) -> Page[Tenant]:
    after: str | None = None
    if cursor is not None:
        (value,) = decode_cursor(cursor, length=1)
        if not isinstance(value, str) or not TENANT_PATTERN.fullmatch(value):
            raise InvalidCursor("Use the next_cursor of a previous page")
        after = value
    rows = await TenantRepository(session).page(limit=limit + 1, after=after)
    items = [to_schema(row) for row in rows[:limit]]
    next_cursor = encode_cursor([items[-1].id]) if len(rows) > limit else None
    return Page[Tenant](items=items, next_cursor=next_cursor)
