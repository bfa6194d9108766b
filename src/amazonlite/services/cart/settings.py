from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from amazonlite.platform.config import ServiceSettings

DAY = 24 * 3600


class CartSettings(ServiceSettings):
    service_name: ClassVar[str] = "cart"

    # A cart nobody has read or changed for this long is gone (guests'; a customer's is kept in SQL).
    idle_ttl_seconds: int = Field(default=30 * DAY, ge=60)
    # How long a customer's Redis copy (a cache of the SQL row) lives before it is read from SQL again.
    copy_ttl_seconds: int = Field(default=300, ge=1)
    # The most units of one SKU a line may hold, and the most lines a cart may hold.
    max_line_quantity: int = Field(default=20, ge=1, le=10_000)
    max_lines: int = Field(default=100, ge=1, le=1_000)
    # How often the embedded topology purges guest carts past their idle time.
    expiry_sweep_seconds: float = Field(default=3600.0, gt=0)
    # Attempts of one mutation against concurrent changes of the same cart before it answers 409.
    mutation_attempts: int = Field(default=20, ge=1)
