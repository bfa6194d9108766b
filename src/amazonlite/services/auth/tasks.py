from __future__ import annotations

from amazonlite.platform.db import utcnow
from amazonlite.platform.service import PeriodicTask, ServiceRuntime
from amazonlite.platform.tenancy import UNSCOPED
from amazonlite.services.auth import oidc, revocations, service
from amazonlite.services.auth.settings import AuthSettings

# How often revocations in force are copied again into the revocation store (see revocations.py).
RESYNC_SECONDS = 30


async def prune_expired(runtime: ServiceRuntime) -> None:
    """Forget revocations of access tokens that have expired anyway, long-dead refresh and mailed
    tokens, and sign-ins with a provider that were never completed."""
    async with runtime.db.session(tenant_id=UNSCOPED) as session:
        await service.prune_expired(session)
        await oidc.prune_expired(session, utcnow())


async def resync_revocations(runtime: ServiceRuntime) -> None:
    """Make good a revocation-store write that failed after its commit (Redis down for a moment)."""
    settings = runtime.settings
    assert isinstance(settings, AuthSettings)
    await revocations.mirror(runtime.db, runtime.revocations, settings)


TASKS = (PeriodicTask(name="auth.prune_expired", interval=3600, run=prune_expired),
         PeriodicTask(name="auth.resync_revocations", interval=RESYNC_SECONDS, run=resync_revocations))
