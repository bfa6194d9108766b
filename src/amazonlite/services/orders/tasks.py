"""The deadline sweeper: cancels orders still open past their deadline (reservation, then payment),
in every tenant, with the compensations a cancellation emits.

Safe in several replicas at once: an order's step is written only over the version it was decided
on (`OrderRepository.step`), so of two sweeps that pick one order, one cancels it and the other
finds it cancelled and leaves it; none is skipped, since an order stays due until a step moves it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from typing import cast

import structlog

from amazonlite.platform.db import is_transient_conflict, utcnow
from amazonlite.platform.service import PeriodicTask, ServiceRuntime
from amazonlite.platform.tenancy import UNSCOPED
from amazonlite.services.orders import service
from amazonlite.services.orders.repository import OrderRepository
from amazonlite.services.orders.saga import Trigger
from amazonlite.services.orders.settings import OrdersSettings

log = structlog.get_logger("amazonlite.orders")

CONFLICT_ATTEMPTS = 10


async def cancel_overdue(runtime: ServiceRuntime, *, now: dt.datetime | None = None) -> int:
    """Cancel every order past its deadline by `now` (default: now), a batch per pass until none is
    left; how many this call cancelled."""
    settings = cast(OrdersSettings, runtime.settings)
    now = now or utcnow()
    cancelled = 0
    while True:
        # The one cross-tenant read: which orders are overdue, and whose. Each is cancelled in a unit
        # of work of its own tenant.
        async with runtime.db.session(tenant_id=UNSCOPED) as session:
            due = await OrderRepository(session).due(now, limit=settings.deadline_batch_size)
        if not due:
            return cancelled
        moved = 0
        for tenant, order_id in due:
            if await _cancel_one(runtime, tenant, order_id, now):
                moved += 1
        cancelled += moved
        if moved == 0:
            return cancelled  # another sweeper is taking these: leave them to it


async def _cancel_one(runtime: ServiceRuntime, tenant: str, order_id: uuid.UUID, now: dt.datetime) -> bool:
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            async with runtime.db.session(tenant_id=tenant) as session:
                order = await OrderRepository(session).get(order_id)
                if order is None or order.deadline_at is None or order.deadline_at > now:
                    return False  # it moved on (or was given a new deadline) since it was found due
                decision = await service.advance(session, order_id, Trigger.DEADLINE_PASSED, record_ignored=False)
                return decision is not None
        except Exception as exc:
            if attempt == CONFLICT_ATTEMPTS or not is_transient_conflict(exc):
                raise
            await asyncio.sleep(random.uniform(0, 0.01 * attempt))
    return False


async def _run(runtime: ServiceRuntime) -> None:
    await cancel_overdue(runtime)


def tasks(settings: OrdersSettings) -> list[PeriodicTask]:
    return [PeriodicTask("orders.cancel_overdue", settings.deadline_sweep_seconds, _run)]


async def on_startup(runtime: ServiceRuntime) -> None:
    """The cipher of shipping addresses (`runtime.state.address_cipher`)."""
    settings = cast(OrdersSettings, runtime.settings)
    runtime.state.address_cipher = service.address_cipher(settings.pii_keyring())
    if settings.uses_development_key:
        log.warning("orders.development_pii_key",
                    detail="shipping addresses are encrypted under the public development key")
