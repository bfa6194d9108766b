from __future__ import annotations

from amazonlite.platform.service import PeriodicTask, ServiceRuntime
from amazonlite.platform.tenancy import UNSCOPED
from amazonlite.services.auth import service


async def prune_expired(runtime: ServiceRuntime) -> None:
    """Forget revocations of access tokens that have expired anyway, and long-dead refresh tokens."""
    async with runtime.db.session(tenant_id=UNSCOPED) as session:
        await service.prune_expired(session)


TASKS = (PeriodicTask(name="auth.prune_expired", interval=3600, run=prune_expired),)
