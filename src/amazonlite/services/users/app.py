from __future__ import annotations

from pathlib import Path

from amazonlite.platform.service import ServiceModule
from amazonlite.services.users.commands import on_startup
from amazonlite.services.users.endpoints import router
from amazonlite.services.users.handlers import handlers
from amazonlite.services.users.models import Base
from amazonlite.services.users.settings import UsersSettings

SERVICE = ServiceModule(
    name="users",
    description="Profiles, address book and preferences.",
    router=router,
    metadata=Base.metadata,
    settings=UsersSettings,
    handlers=handlers,
    on_startup=on_startup,
    migrations=Path(__file__).parent / "migrations",
)
