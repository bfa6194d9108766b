from __future__ import annotations

from pathlib import Path

from amazonlite.platform.service import ServiceModule, ServiceRuntime
from amazonlite.services.cart.endpoints import router
from amazonlite.services.cart.handlers import handlers
from amazonlite.services.cart.models import Base
from amazonlite.services.cart.settings import CartSettings
from amazonlite.services.cart.store import CartStore
from amazonlite.services.cart.tasks import tasks


async def on_startup(runtime: ServiceRuntime) -> None:
    settings = runtime.settings
    assert isinstance(settings, CartSettings)
    runtime.state.carts = CartStore(runtime.redis, prefix=runtime.platform.redis_prefix,
                                    ttl_seconds=settings.idle_ttl_seconds, copy_ttl_seconds=settings.copy_ttl_seconds)


SERVICE = ServiceModule(
    name="cart",
    description="Guest and customer carts, their prices and totals, and coupons.",
    router=router,
    metadata=Base.metadata,
    settings=CartSettings,
    handlers=handlers,
    tasks=tasks(CartSettings()),
    on_startup=on_startup,
    migrations=Path(__file__).parent / "migrations",
)
