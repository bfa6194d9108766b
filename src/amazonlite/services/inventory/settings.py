from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from amazonlite.platform.config import ServiceSettings


class InventorySettings(ServiceSettings):
    service_name: ClassVar[str] = "inventory"

    # How long a reservation holds stock before the sweeper releases it (a tenant's own setting,
    # once the tenants service answers it, takes precedence).
    reservation_minutes: float = Field(default=15, gt=0, le=7 * 24 * 60)
    # How often the sweeper looks for expired reservations, and how many it releases per pass.
    sweep_interval_seconds: float = Field(default=15, gt=0)
    sweep_batch_size: int = Field(default=200, ge=1, le=10_000)


DEFAULTS = InventorySettings()
