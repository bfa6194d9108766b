from __future__ import annotations

from pathlib import Path

from amazonlite.platform.service import ServiceModule
from amazonlite.services.orders.endpoints import router
from amazonlite.services.orders.handlers import handlers
from amazonlite.services.orders.models import Base
from amazonlite.services.orders.settings import OrdersSettings
from amazonlite.services.orders.tasks import on_startup, tasks

SERVICE = ServiceModule(
    name="orders",
    description="Checkout, orders and the order saga: its state machine, deadlines and compensations.",
    router=router,
    metadata=Base.metadata,
    settings=OrdersSettings,
    handlers=handlers,
    tasks=tasks(OrdersSettings()),
    on_startup=on_startup,
    migrations=Path(__file__).parent / "migrations",
)
