from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from amazonlite.platform.config import Environment, PiiKeySettings


class OrdersSettings(PiiKeySettings):
    """`AMAZONLITE_ORDERS_*` (the keys that encrypt shipping addresses: `PiiKeySettings`)."""

    service_name: ClassVar[str] = "orders"

    # How long inventory and payments have to take a new order to PAYMENT_PENDING before the sweeper
    # cancels it (`reservation_timeout`). The payment's own deadline is the tenant's `payment_minutes`.
    reservation_seconds: float = Field(default=30, gt=0, le=3600)
    # How long an order waits for its payment when the tenants service cannot say the tenant's own
    # `payment_minutes` (which takes precedence).
    payment_minutes: float = Field(default=15, gt=0, le=7 * 24 * 60)
    # The payment providers a checkout may name: those the payments service has configured. Outside
    # production the sandbox; in production it must be said (payments offers no sandbox there).
    payment_providers: list[str] = Field(default_factory=lambda: ["sandbox"], min_length=1)
    # How often the sweeper looks for orders past their deadline, and how many it cancels per pass.
    deadline_sweep_seconds: float = Field(default=1.0, gt=0)
    deadline_batch_size: int = Field(default=100, ge=1, le=10_000)
    # The most lines an order may hold (the cart's own limit is lower).
    max_lines: int = Field(default=200, ge=1, le=10_000)

    @model_validator(mode="after")
    def _providers_named_in_production(self) -> Self:
        if self.environment is Environment.PRODUCTION and "payment_providers" not in self.model_fields_set:
            raise ValueError("AMAZONLITE_ORDERS_PAYMENT_PROVIDERS must name the providers payments offers in "
                             'production, e.g. ["razorpay"] (the sandbox moves no money)')
        return self
