from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.services.tenants.models import TenantRow


class TenantRepository:
    """Every query of the tenants service. The session's tenant scope applies to each one: a tenant's
    session sees its own row only, an unscoped (platform admin) session sees all."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: str) -> TenantRow | None:
        return await self.session.scalar(select(TenantRow).where(TenantRow.tenant_id == tenant_id))

    async def page(self, *, limit: int, after: str | None) -> Sequence[TenantRow]:
        query = select(TenantRow)
        if after is not None:
            query = query.where(TenantRow.tenant_id > after)
        return (await self.session.scalars(query.order_by(TenantRow.tenant_id).limit(limit))).all()

    async def add_if_absent(self, row: TenantRow) -> bool:
        """Insert the row; False when a row with its id exists already (a concurrent insert included:
        a savepoint keeps the transaction usable)."""
        if await self.get(row.tenant_id) is not None:
            return False
        try:
            async with self.session.begin_nested():
                self.session.add(row)
        except IntegrityError:
            return False
        return True

    async def flush(self) -> None:
        await self.session.flush()
