"""Periodic jobs of the cart service."""

from __future__ import annotations

import structlog

from amazonlite.platform.db import utcnow
from amazonlite.platform.service import PeriodicTask, ServiceRuntime
from amazonlite.platform.tenancy import UNSCOPED
from amazonlite.services.cart.repository import CartRepository
from amazonlite.services.cart.settings import CartSettings

log = structlog.get_logger("amazonlite.cart")


async def expire_guest_carts(runtime: ServiceRuntime) -> int:
    """Delete guest carts past their idle time, in batches, across tenants (an expired cart is never
    read anyway: this only frees the space). Safe in several replicas at once: a row two of them
    pick is deleted by one. Returns how many went."""
    purged = 0
    while True:
        async with runtime.db.session(tenant_id=UNSCOPED) as session:
            gone = await CartRepository(session).purge_expired(now=utcnow())
        purged += gone
        if gone == 0:
            break
    if purged:
        log.info("cart.guest_carts_expired", count=purged)
    return purged


async def _expire(runtime: ServiceRuntime) -> None:
    await expire_guest_carts(runtime)


def tasks(settings: CartSettings) -> list[PeriodicTask]:
    return [PeriodicTask("cart.expire_guest_carts", settings.expiry_sweep_seconds, _expire)]
