"""A tenant's settings as the services need them: currency, tax rate, order deadlines, feature flags.

The tenants service owns them. A service reads them through its runtime's lookup, which asks
`GET /api/v1/admin/tenants/{id}` as a tenant admin of that tenant (a principal the caller mints for
the call, `service:<caller>`: the tenants service shows a tenant admin its own tenant only) and keeps
each answer for `AMAZONLITE_TENANT_SETTINGS_TTL_SECONDS` (30 s). Concurrent lookups of one tenant
share one call; when the tenants service cannot answer, the last settings seen are used, however old
(platform/cached_lookup.py), and a tenant never seen is a 503 `tenant-settings-unavailable`.

In an endpoint, for the caller's tenant:

    async def add_item(..., tenant: CurrentTenantSettings) -> Cart:
        ... tenant.currency, tenant.tax_rate_bp

anywhere else (a consumer, a task): `await tenant_settings(runtime).get(tenant_id)`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from amazonlite.platform.cached_lookup import CachedLookup
from amazonlite.platform.clients import ServiceDirectory
from amazonlite.platform.errors import NotFound, ServiceUnavailable
from amazonlite.platform.outages import upstream_dependency
from amazonlite.platform.security import CurrentPrincipal, Principal, Role

log = structlog.get_logger("amazonlite.tenant_settings")

TENANTS = "tenants"
TENANT_PATH = "/api/v1/admin/tenants/{tenant}"
# What a tenants service older than these settings implies (its tenants were migrated to them).
DEFAULT_MINUTES = 15


class TenantSettingsUnavailable(ServiceUnavailable):
    type = "tenant-settings-unavailable"
    title = "The tenant's settings cannot be read right now"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": "2"})


class TenantNotKnown(NotFound):
    type = "tenant-not-found"
    title = "No such tenant"


class TenantSettingsConfig(BaseSettings):
    """`AMAZONLITE_TENANT_SETTINGS_*`."""

    model_config = SettingsConfigDict(env_prefix="AMAZONLITE_TENANT_SETTINGS_", extra="ignore")

    ttl_seconds: float = Field(default=30.0, gt=0)
    # A tenant the tenants service does not know is asked about again after this long.
    unknown_ttl_seconds: float = Field(default=5.0, gt=0)
    max_entries: int = Field(default=10_000, ge=1)


@dataclass(frozen=True, slots=True)
class TenantSettings:
    tenant_id: str
    currency: str
    tax_rate_bp: int
    # How long inventory holds stock for an unpaid order, and how long the customer has to pay.
    reservation_minutes: int
    payment_minutes: int
    status: str
    feature_flags: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def active(self) -> bool:
        return self.status == "active"

    def flag(self, name: str, *, default: bool = False) -> bool:
        return self.feature_flags.get(name, default)


def parse_settings(body: Any, tenant_id: str) -> TenantSettings:
    """The tenants service's `Tenant` document; `ValueError` (or `KeyError`, `TypeError`) if it is not one."""
    if body["id"] != tenant_id:
        raise ValueError("not this tenant's settings")
    flags = body["feature_flags"]
    if not isinstance(flags, dict) or not all(isinstance(v, bool) for v in flags.values()):
        raise ValueError("feature flags are booleans")
    numbers = {name: body.get(name, DEFAULT_MINUTES) if name.endswith("_minutes") else body[name]
               for name in ("tax_rate_bp", "reservation_minutes", "payment_minutes")}
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in numbers.values()):
        raise ValueError("the numbers are not counts")
    if not isinstance(body["currency"], str) or body["status"] not in ("active", "suspended"):
        raise ValueError("not a tenant's settings")
    return TenantSettings(tenant_id=tenant_id, currency=body["currency"], status=body["status"],
                          feature_flags=MappingProxyType(dict(flags)), **numbers)


class TenantSettingsLookup:
    """Tenant settings from the tenants service, cached per tenant."""

    def __init__(self, services: ServiceDirectory, config: TenantSettingsConfig | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        config = config or TenantSettingsConfig()
        self._services = services
        self._lookup: CachedLookup[TenantSettings | None] = CachedLookup(
            self._ask, ttl=lambda found: config.ttl_seconds if found is not None else config.unknown_ttl_seconds,
            max_entries=config.max_entries, unavailable=_unavailable,
            dependency=upstream_dependency(TENANTS, caller=services.caller), operation="tenant settings lookup",
            clock=clock)

    async def get(self, tenant_id: str) -> TenantSettings:
        """The tenant's settings: `TenantNotKnown` (404) when the tenants service has no such tenant,
        `TenantSettingsUnavailable` (503) when it cannot answer and the tenant was never seen."""
        found = await self._lookup.get(tenant_id)
        if found is None:
            raise TenantNotKnown(f"There is no tenant {tenant_id!r}")
        return found

    def forget(self, tenant_id: str) -> None:
        """The next `get` asks the tenants service (after a change this process knows of)."""
        self._lookup.forget(tenant_id)

    async def _ask(self, tenant_id: str) -> TenantSettings | None:
        admin = Principal(tenant_id=tenant_id, user_id=f"service:{self._services.caller}",
                          roles=frozenset({Role.TENANT_ADMIN}))
        answer = await self._services.client(TENANTS).request("GET", TENANT_PATH.format(tenant=tenant_id),
                                                              principal=admin)
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise RuntimeError(f"the tenants service answered HTTP {answer.status_code}")
        return parse_settings(answer.json(), tenant_id)


def _unavailable(tenant_id: str) -> TenantSettingsUnavailable:
    return TenantSettingsUnavailable(f"The settings of the tenant {tenant_id!r} cannot be read right now; "
                                     "try again shortly")


async def minutes_setting(runtime: Any, tenant_id: str, read: Callable[[TenantSettings], float],
                          default: float) -> float:
    """A tenant's own duration in minutes (`read` of its settings: `reservation_minutes`,
    `payment_minutes`), or the service's `default` when the tenants service is not reachable from
    this runtime, cannot answer now, or the tenant set none. For event handlers and tasks, which
    must go on whatever the tenants service does; an endpoint takes `CurrentTenantSettings`."""
    if TENANTS not in runtime.services.known:
        return default
    try:
        minutes = read(await tenant_settings(runtime).get(tenant_id))
    except Exception as exc:  # the lookup logs an outage of the tenants service once
        log.debug("tenant_settings.default_used", tenant_id=tenant_id, error=type(exc).__name__)
        return default
    return minutes if minutes > 0 else default


def tenant_settings(runtime: Any) -> TenantSettingsLookup:
    """The service runtime's lookup (made at first use, kept in `runtime.state.tenant_settings`)."""
    lookup: TenantSettingsLookup | None = getattr(runtime.state, "tenant_settings", None)
    if lookup is None:
        lookup = TenantSettingsLookup(runtime.services)
        runtime.state.tenant_settings = lookup
    return lookup


async def get_tenant_settings(request: Request, principal: CurrentPrincipal) -> TenantSettings:
    """The settings of the caller's tenant."""
    return await tenant_settings(request.app.state.runtime).get(principal.tenant_id)


CurrentTenantSettings = Annotated[TenantSettings, Depends(get_tenant_settings)]
