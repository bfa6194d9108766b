from __future__ import annotations

from pathlib import Path

from amazonlite.platform.service import ServiceModule
from amazonlite.services.auth.commands import DEMO_ACCOUNTS, create_admin, on_startup, seed
from amazonlite.services.auth.endpoints import router
from amazonlite.services.auth.handlers import handlers
from amazonlite.services.auth.models import Base
from amazonlite.services.auth.settings import AuthSettings
from amazonlite.services.auth.tasks import TASKS

SERVICE = ServiceModule(
    name="auth",
    description="Accounts, logins, refresh-token families and the keys that sign access tokens.",
    router=router,
    metadata=Base.metadata,
    settings=AuthSettings,
    handlers=handlers,
    tasks=TASKS,
    on_startup=on_startup,
    seed=seed,
    migrations=Path(__file__).parent / "migrations",
)

__all__ = ["DEMO_ACCOUNTS", "SERVICE", "create_admin"]
