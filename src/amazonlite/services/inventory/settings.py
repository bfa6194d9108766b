from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import structlog
from pydantic import Field

from amazonlite.platform.config import ServiceSettings
from amazonlite.platform.tenant_settings import TenantSettingsLookup

log = structlog.get_logger("amazonlite.inventory")


class InventorySettings(ServiceSettings):
    service_name: ClassVar[str] = "inventory"

    # How long a reservation holds stock before the sweeper releases it (a tenant's own setting,
    # once the tenants service answers it, takes precedence).
    reservation_minutes: float = Field(default=15, gt=0, le=7 * 24 * 60)
    # How often the sweeper looks for expired reservations, and how many it releases per pass.
    sweep_interval_seconds: float = Field(default=15, gt=0)
    sweep_batch_size: int = Field(default=200, ge=1, le=10_000)


DEFAULTS = InventorySettings()


@dataclass(frozen=True)
class HoldTime:
    """How long a reservation holds stock in a tenant: the tenant's own `reservation_minutes` (asked
    of the tenants service, cached by the kernel's lookup), or this service's default when the
    tenants service is not reachable from here or cannot answer."""

    settings: InventorySettings
    lookup: Callable[[], TenantSettingsLookup | None] = lambda: None

    async def minutes(self, tenant_id: str) -> float:
        lookup = self.lookup()
        if lookup is None:
            return self.settings.reservation_minutes
        try:
            minutes = (await lookup.get(tenant_id)).reservation_minutes
        except Exception as exc:  # the lookup logs an outage of the tenants service once
            log.debug("inventory.tenant_hold_time_unknown", tenant_id=tenant_id, error=type(exc).__name__)
            return self.settings.reservation_minutes
        return minutes if minutes > 0 else self.settings.reservation_minutes
