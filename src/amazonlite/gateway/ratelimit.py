"""Rate limits per tenant and per client, with the `limits` library (sliding window counter).

Each request to `/api/...` counts once against its tenant (`tenant_per_minute`) and once against
its client (`client_per_minute`): the token's subject when signed in, else the client's address.
The storage is Redis when `platform.redis_url` is set (every gateway replica shares the counts),
otherwise this process's memory.

The answer carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds) of the
tighter of the two limits; over a limit, the request is refused with a 429 problem and `Retry-After`.
If the storage fails (Redis down), requests are admitted and the failure logged: the limiter
protects the platform from a client, it must not take the platform down with it.

Sliding window counter, not moving window: a moving window stores every hit's timestamp (at
100,000 requests a minute, 100,000 entries per key, each hit inserting into that list), while the
counter keeps two numbers per key and weighs the previous window's count by how much of it is
still inside the window: constant memory and time, exact enough for admission.
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from amazonlite.gateway.errors import RateLimited
from amazonlite.gateway.tenants import TenantInfo
from amazonlite.platform.outages import DEPENDENCIES, redis_dependency
from amazonlite.platform.security import Principal

_REDIS = redis_dependency("gateway")  # its outages are logged once, when they begin and end

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Quota:
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> Headers:
        return [(b"ratelimit-limit", str(self.limit).encode()),
                (b"ratelimit-remaining", str(self.remaining).encode()),
                (b"ratelimit-reset", str(self.reset_seconds).encode())]


def storage_uri(redis_url: str) -> str:
    if not redis_url:
        return "async+memory://"
    return redis_url if redis_url.startswith("async+") else "async+" + redis_url


class RateLimiter:
    def __init__(self, uri: str, *, window_seconds: int, key_prefix: str = "amazonlite") -> None:
        options: dict[str, float | str | bool] = {}
        if "redis" in uri.split("://", 1)[0]:
            options = {"key_prefix": f"{key_prefix}:ratelimit", "wrap_exceptions": True,
                       "stream_timeout": 1.0, "connect_timeout": 1.0}
        self.storage = storage_from_string(uri, **options)
        self._limiter = SlidingWindowCounterRateLimiter(self.storage)
        self._window = window_seconds
        self._items: dict[int, RateLimitItem] = {}

    async def aclose(self) -> None:
        """Close the Redis connections, if any (the `limits` storage has no close of its own)."""
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            result = pool.disconnect()
            if inspect.isawaitable(result):
                await result

    def _item(self, amount: int) -> RateLimitItem:
        item = self._items.get(amount)
        if item is None:
            item = self._items[amount] = RateLimitItemPerSecond(amount, self._window, namespace="GW")
        return item

    async def hit(self, tenant: TenantInfo, principal: Principal) -> Quota | None:
        """Count the request; the quota to report, or raise `RateLimited`. None: the storage failed."""
        client = f"user:{principal.user_id}" if principal.user_id else f"addr:{principal.client_address or '-'}"
        checks = ((self._item(tenant.client_per_minute), ("client", tenant.id, client)),
                  (self._item(tenant.tenant_per_minute), ("tenant", tenant.id)))
        try:
            quotas: list[Quota] = []
            for item, keys in checks:
                allowed = await self._limiter.hit(item, *keys)
                quota = await self._quota(item, keys)
                if not allowed:
                    who = "this client" if keys[0] == "client" else "this tenant"
                    raise RateLimited(f"Too many requests from {who}; try again in {quota.reset_seconds} s",
                                      headers={"Retry-After": str(quota.reset_seconds),
                                               **{k.decode(): v.decode() for k, v in quota.headers()}})
                quotas.append(quota)
        except RateLimited:
            raise
        except Exception as exc:
            DEPENDENCIES.unavailable(_REDIS, operation="rate limit", error=repr(exc))
            return None
        DEPENDENCIES.available(_REDIS)
        return min(quotas, key=lambda q: (q.remaining, -q.limit))

    async def _quota(self, item: RateLimitItem, keys: tuple[str, ...]) -> Quota:
        stats = await self._limiter.get_window_stats(item, *keys)
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        return Quota(item.amount, max(0, stats.remaining), reset)
