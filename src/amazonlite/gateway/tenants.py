"""What the gateway knows about tenants: does one exist, is it active, what are its rate limits.

The tenants service is the source; the gateway asks it (`GET /api/v1/admin/tenants/{id}` as the
gateway's own platform-admin principal of tenant `default`) and keeps each answer for a short
time. Concurrent requests for one tenant share one lookup.

When the tenants service cannot answer (down, its breaker open, a 5xx or an unreadable answer), the
gateway keeps using the last settings it had for that tenant, however old; a tenant it has never
seen is refused with 503. It never admits an unverified tenant: failing open would let any tenant
id, or a suspended tenant, through while the registry is down.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from amazonlite.gateway.errors import TenantsUnavailable, TenantSuspended, UnknownTenant
from amazonlite.gateway.proxy import Fetched
from amazonlite.platform.cached_lookup import CachedLookup
from amazonlite.platform.outages import upstream_dependency
from amazonlite.platform.security import Principal, Role
from amazonlite.platform.tenancy import DEFAULT_TENANT

log = structlog.get_logger("amazonlite.gateway")

TENANTS = "tenants"
TENANT_PATH = "/api/v1/admin/tenants/{tenant}"
# The principal the gateway reads tenant settings as.
GATEWAY_ADMIN = Principal(tenant_id=DEFAULT_TENANT, user_id="gateway", roles=frozenset({Role.PLATFORM_ADMIN}))
# After a failed lookup, stale settings are used for this long before the service is asked again.
RETRY_AFTER_FAILURE_SECONDS = 2.0

FetchTenant = Callable[[str], Awaitable[Fetched]]


@dataclass(frozen=True, slots=True)
class TenantInfo:
    id: str
    active: bool
    tenant_per_minute: int
    client_per_minute: int


class TenantLookupFailed(Exception):
    pass


class TenantDirectory:
    """Tenant settings from the tenants service, cached per tenant (platform/cached_lookup.py)."""

    def __init__(self, fetch: FetchTenant, *, ttl: float, unknown_ttl: float, max_entries: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._lookup: CachedLookup[TenantInfo | None] = CachedLookup(
            self._ask, ttl=lambda info: ttl if info is not None else unknown_ttl, max_entries=max_entries,
            unavailable=_unavailable, dependency=upstream_dependency(TENANTS), operation="tenant lookup",
            retry_after_failure=RETRY_AFTER_FAILURE_SECONDS, clock=clock)

    async def require_active(self, tenant_id: str) -> TenantInfo:
        """The tenant's settings; `UnknownTenant` (404), `TenantSuspended` (403) or `TenantsUnavailable` (503)."""
        info = await self.lookup(tenant_id)
        if info is None:
            raise UnknownTenant(f"There is no tenant {tenant_id!r}")
        if not info.active:
            raise TenantSuspended(f"The tenant {tenant_id!r} is suspended")
        return info

    async def lookup(self, tenant_id: str) -> TenantInfo | None:
        return await self._lookup.get(tenant_id)

    async def _ask(self, tenant_id: str) -> TenantInfo | None:
        answer = await self._fetch(tenant_id)  # the kernel's CircuitOpen, DownstreamUnavailable, ...
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise TenantLookupFailed(f"the tenants service answered HTTP {answer.status}")
        try:
            return parse_tenant(answer.json(), tenant_id)
        except (ValueError, TypeError, KeyError) as exc:
            raise TenantLookupFailed(f"unreadable tenant settings: {exc!r}") from exc


def _unavailable(_tenant_id: str) -> TenantsUnavailable:
    return TenantsUnavailable("The tenant's settings cannot be read right now; try again shortly",
                              headers={"Retry-After": "2"})


def parse_tenant(body: Any, tenant_id: str) -> TenantInfo:
    limits = body["rate_limits"]
    tenant_rate, client_rate, status = limits["tenant_per_minute"], limits["client_per_minute"], body["status"]
    if body["id"] != tenant_id or status not in ("active", "suspended"):
        raise ValueError("not this tenant's settings")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (tenant_rate, client_rate)):
        raise ValueError("rate limits are positive integers")
    return TenantInfo(tenant_id, status == "active", tenant_rate, client_rate)


class StaticTenants:
    """Without a tenants upstream (a partial gateway, some tests): every well-formed tenant id is
    taken as active, with the default rate limits."""

    def __init__(self, tenant_per_minute: int, client_per_minute: int) -> None:
        self._limits = (tenant_per_minute, client_per_minute)

    async def require_active(self, tenant_id: str) -> TenantInfo:
        return TenantInfo(tenant_id, True, *self._limits)
