from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from amazonlite.platform.money import Currency
from amazonlite.platform.numbers import JSON_INTEGER
from amazonlite.platform.tenancy import TENANT_PATTERN
from amazonlite.platform.text import STRIPPED, NonBlankLine

NAME_MAX = 200
FLAG_MAX = 64
MAX_FLAGS = 100
MAX_PER_MINUTE = 1_000_000
MAX_MINUTES = 1_440  # a day
DEFAULT_RESERVATION_MINUTES = 15
DEFAULT_PAYMENT_MINUTES = 15

TenantStatus = Literal["active", "suspended"]


# The kernel's rule for tenant ids (`platform.tenancy.validate_tenant_id`), as a pattern the
# document states: 1-64 lowercase letters, digits and inner hyphens.
TenantId = Annotated[str, StringConstraints(max_length=64, pattern=TENANT_PATTERN.pattern)]
Name = Annotated[NonBlankLine, StringConstraints(min_length=1, max_length=NAME_MAX), STRIPPED]
TaxRateBp = Annotated[int, Field(ge=0, le=10_000, description="Tax rate in basis points (1800 = 18%)"), JSON_INTEGER]
PerMinute = Annotated[int, Field(ge=1, le=MAX_PER_MINUTE), JSON_INTEGER]
FlagName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
Minutes = Annotated[int, Field(ge=1, le=MAX_MINUTES), JSON_INTEGER]
ReservationMinutes = Annotated[Minutes, Field(
    description="How long inventory holds stock for an order that is not paid yet, in minutes")]
PaymentMinutes = Annotated[Minutes, Field(description="How long a customer has to pay for an order, in minutes")]
FeatureFlags = Annotated[dict[FlagName, StrictBool], Field(max_length=MAX_FLAGS)]

DEFAULT_CURRENCY = "INR"
DEFAULT_TENANT_PER_MINUTE = 6_000
DEFAULT_CLIENT_PER_MINUTE = 600


class RateLimits(BaseModel):
    """Requests per minute the gateway admits: for the whole tenant, and for one client of it."""

    model_config = ConfigDict(extra="forbid")

    tenant_per_minute: PerMinute = DEFAULT_TENANT_PER_MINUTE
    client_per_minute: PerMinute = DEFAULT_CLIENT_PER_MINUTE


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: TenantId
    name: Name
    currency: Currency = DEFAULT_CURRENCY
    tax_rate_bp: TaxRateBp = 0
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    feature_flags: FeatureFlags = Field(default_factory=dict)
    reservation_minutes: ReservationMinutes = DEFAULT_RESERVATION_MINUTES
    payment_minutes: PaymentMinutes = DEFAULT_PAYMENT_MINUTES


class TenantUpdate(BaseModel):
    """A partial update: only the fields given change. `feature_flags` replaces the whole map."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    currency: Currency | None = None
    tax_rate_bp: TaxRateBp | None = None
    rate_limits: RateLimits | None = None
    feature_flags: FeatureFlags | None = None
    reservation_minutes: ReservationMinutes | None = None
    payment_minutes: PaymentMinutes | None = None
    status: TenantStatus | None = None


class Tenant(BaseModel):
    id: str
    name: str
    currency: str
    tax_rate_bp: int
    rate_limits: RateLimits
    feature_flags: dict[str, bool]
    reservation_minutes: int
    payment_minutes: int
    status: TenantStatus
    created_at: dt.datetime
    updated_at: dt.datetime
