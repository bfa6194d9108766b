from __future__ import annotations

from pathlib import Path

from amazonlite.platform.service import ServiceModule
from amazonlite.services.catalog.commands import on_startup
from amazonlite.services.catalog.endpoints import router
from amazonlite.services.catalog.handlers import handlers
from amazonlite.services.catalog.models import Base
from amazonlite.services.catalog.seed import seed
from amazonlite.services.catalog.settings import CatalogSettings

SERVICE = ServiceModule(
    name="catalog",
    description="Products and their variants (SKUs), categories, brands, attributes and media.",
    router=router,
    metadata=Base.metadata,
    settings=CatalogSettings,
    handlers=handlers,
    on_startup=on_startup,
    migrations=Path(__file__).parent / "migrations",
    seed=seed,
)
