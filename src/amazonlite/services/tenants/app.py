from __future__ import annotations

from pathlib import Path

from amazonlite.platform.service import ServiceModule
from amazonlite.services.tenants.commands import on_startup
from amazonlite.services.tenants.endpoints import router
from amazonlite.services.tenants.handlers import handlers
from amazonlite.services.tenants.models import Base
from amazonlite.services.tenants.settings import TenantsSettings

SERVICE = ServiceModule(
    name="tenants",
    description=("The tenant registry and each tenant's settings: currency, tax rate, rate limits, feature flags, "
                 "and how long stock is held and payment awaited for an order."),
    router=router,
    metadata=Base.metadata,
    settings=TenantsSettings,
    handlers=handlers,
    on_startup=on_startup,
    migrations=Path(__file__).parent / "migrations",
)
