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

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from amazonlite.gateway.errors import TenantsUnavailable, TenantSuspended, UnknownTenant
from amazonlite.gateway.proxy import Fetched
from amazonlite.platform.outages import DEPENDENCIES, upstream_dependency
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


@dataclass(slots=True)
class _Entry:
    info: TenantInfo | None  # None: the tenant does not exist
    expires: float


class TenantLookupFailed(Exception):
    pass


class TenantDirectory:
    """Tenant settings from the tenants service, cached per tenant."""

    def __init__(self, fetch: FetchTenant, *, ttl: float, unknown_ttl: float, max_entries: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._unknown_ttl = unknown_ttl
        self._max_entries = max_entries
        self._clock = clock
        self._cache: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Task[TenantInfo | None]] = {}

    async def require_active(self, tenant_id: str) -> TenantInfo:
        """The tenant's settings; `UnknownTenant` (404), `TenantSuspended` (403) or `TenantsUnavailable` (503)."""
        info = await self.lookup(tenant_id)
        if info is None:
            raise UnknownTenant(f"There is no tenant {tenant_id!r}")
        if not info.active:
            raise TenantSuspended(f"The tenant {tenant_id!r} is suspended")
        return info

    async def lookup(self, tenant_id: str) -> TenantInfo | None:
        entry = self._cache.get(tenant_id)
        if entry is not None and entry.expires > self._clock():
            return entry.info
        task = self._inflight.get(tenant_id)
        if task is None:
            task = asyncio.ensure_future(self._refresh(tenant_id))
            self._inflight[tenant_id] = task
            task.add_done_callback(lambda done: self._finished(tenant_id, done))
        return await asyncio.shield(task)

    def _finished(self, tenant_id: str, task: asyncio.Task[TenantInfo | None]) -> None:
        self._inflight.pop(tenant_id, None)
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have gone

    async def _refresh(self, tenant_id: str) -> TenantInfo | None:
        try:
            info = await self._ask(tenant_id)
        except TenantLookupFailed as exc:
            stale = self._cache.get(tenant_id)
            # Logged once per outage of the tenants service, not per tenant and refresh.
            DEPENDENCIES.unavailable(upstream_dependency(TENANTS), operation="tenant lookup", tenant=tenant_id,
                                     error=str(exc), using_stale=stale is not None)
            if stale is None:
                raise TenantsUnavailable("The tenant's settings cannot be read right now; try again shortly",
                                         headers={"Retry-After": "2"}) from exc
            stale.expires = self._clock() + RETRY_AFTER_FAILURE_SECONDS
            return stale.info
        DEPENDENCIES.available(upstream_dependency(TENANTS))
        self._remember(tenant_id, info)
        return info

    async def _ask(self, tenant_id: str) -> TenantInfo | None:
        try:
            answer = await self._fetch(tenant_id)
        except Exception as exc:  # the kernel's CircuitOpen, DownstreamUnavailable, ... or anything else
            raise TenantLookupFailed(repr(exc)) from exc
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise TenantLookupFailed(f"the tenants service answered HTTP {answer.status}")
        try:
            return parse_tenant(answer.json(), tenant_id)
        except (ValueError, TypeError, KeyError) as exc:
            raise TenantLookupFailed(f"unreadable tenant settings: {exc!r}") from exc

    def _remember(self, tenant_id: str, info: TenantInfo | None) -> None:
        self._cache.pop(tenant_id, None)
        while len(self._cache) >= self._max_entries:
            del self._cache[next(iter(self._cache))]
        ttl = self._ttl if info is not None else self._unknown_ttl
        self._cache[tenant_id] = _Entry(info, self._clock() + ttl)


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
