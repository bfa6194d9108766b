from __future__ import annotations

from amazonlite.platform.db import utcnow
from amazonlite.platform.service import PeriodicTask, ServiceRuntime
from amazonlite.platform.tenancy import UNSCOPED
from amazonlite.services.auth import oidc, service


async def prune_expired(runtime: ServiceRuntime) -> None:
    """Forget revocations of access tokens that have expired anyway, long-dead refresh and mailed
    tokens, and sign-ins with a provider that were never completed."""
    async with runtime.db.session(tenant_id=UNSCOPED) as session:
        await service.prune_expired(session)
        await oidc.prune_expired(session, utcnow())


TASKS = (PeriodicTask(name="auth.prune_expired", interval=3600, run=prune_expired),)
