"""The reservation sweeper: releases held reservations whose time is up, in every tenant.

Safe in several replicas at once: each reservation is released by the one transaction whose
conditional update moves it from `held` to `expired`; another finds it moved and does nothing.
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
from amazonlite.services.inventory import service
from amazonlite.services.inventory.repository import ReservationRepository
from amazonlite.services.inventory.settings import InventorySettings

log = structlog.get_logger("amazonlite.inventory")

CONFLICT_ATTEMPTS = 10


async def expire_reservations(runtime: ServiceRuntime, *, now: dt.datetime | None = None) -> int:
    """Release every reservation expired by `now` (default: now), a batch per pass until none is
    left; how many this call released."""
    settings = cast(InventorySettings, runtime.settings)
    now = now or utcnow()
    released = 0
    while True:
        # The one cross-tenant read: which reservations expired, and whose. Each is released in a
        # unit of work of its own tenant.
        async with runtime.db.session(tenant_id=UNSCOPED) as session:
            due = await ReservationRepository(session).expired(now, limit=settings.sweep_batch_size)
        done = 0
        for tenant_id, reservation_id in due:
            done += await _expire_one(runtime, tenant_id, reservation_id, now)
        released += done
        if len(due) < settings.sweep_batch_size or not done:
            break
    if released:
        log.info("inventory.reservations_expired", count=released)
    return released


async def _expire_one(runtime: ServiceRuntime, tenant_id: str, reservation_id: uuid.UUID, now: dt.datetime) -> bool:
    """Release one reservation in its tenant's unit of work; a unit that lost a race (a deadlock
    victim, a busy SQLite) is done again, as the consumer does."""
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            async with runtime.db.session(tenant_id=tenant_id) as session:
                return await service.expire(session, reservation_id, now)
        except Exception as exc:
            if attempt == CONFLICT_ATTEMPTS or not is_transient_conflict(exc):
                raise
            await asyncio.sleep(random.uniform(0, 0.01 * attempt))
    return False


async def _run(runtime: ServiceRuntime) -> None:
    await expire_reservations(runtime)


def tasks(settings: InventorySettings) -> list[PeriodicTask]:
    return [PeriodicTask("inventory.expire_reservations", settings.sweep_interval_seconds, _run)]
