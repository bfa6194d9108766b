from __future__ import annotations

from pathlib import Path

from amazonlite.platform.service import ServiceModule
from amazonlite.services.inventory.endpoints import router
from amazonlite.services.inventory.handlers import handlers
from amazonlite.services.inventory.models import Base
from amazonlite.services.inventory.seed import seed
from amazonlite.services.inventory.settings import DEFAULTS, InventorySettings
from amazonlite.services.inventory.tasks import tasks

SERVICE = ServiceModule(
    name="inventory",
    description="Stock per SKU per warehouse, reservations with expiry for the order saga, restock thresholds.",
    router=router,
    metadata=Base.metadata,
    settings=InventorySettings,
    handlers=handlers,
    tasks=tasks(DEFAULTS),
    migrations=Path(__file__).parent / "migrations",
    seed=seed,
)
