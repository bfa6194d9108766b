"""Login throttling: failed logins are counted per account (tenant + email) and per client
address in moving windows; past either limit, a login is refused (429, `Retry-After`) before
its password is verified, so a locked account costs no argon2 work.

Only failures count, and a success resets nothing (an attacker's address keeps its count), but
every failure leaves the window once it is older than the window: nobody is locked out for good.
Counters live in Redis when the platform has one (shared by every replica), else in memory.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

import structlog
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from amazonlite.platform.outages import DEPENDENCIES, redis_dependency
from amazonlite.services.auth.errors import TooManyLoginAttempts

log = structlog.get_logger("amazonlite.auth")
# An outage of the counters' store is logged once when it begins and once when it ends, not per login.
_REDIS = redis_dependency("auth")


@dataclass(frozen=True)
class LoginAttempt:
    """Who is trying: the counters an attempt is checked against and, if it fails, charged to."""

    tenant_id: str
    email: str
    client_address: str | None

    @property
    def account_key(self) -> str:
        # The email is hashed: counter keys in Redis should not spell out addresses (PII).
        return hashlib.sha256(f"{self.tenant_id}\x00{self.email}".encode()).hexdigest()[:32]


def storage_for(redis_url: str, *, key_prefix: str) -> Storage:
    """Redis (`async+redis://…`, redis-py) when a URL is given, else this process's memory."""
    if redis_url:
        uri = redis_url if redis_url.startswith("async+") else f"async+{redis_url}"
        return RedisStorage(uri, implementation="redispy", key_prefix=key_prefix, wrap_exceptions=True)
    return MemoryStorage(wrap_exceptions=True)


class LoginThrottle:
    def __init__(self, storage: Storage, *, per_account: int, per_address: int, window_seconds: int) -> None:
        self.storage = storage
        self._limiter = MovingWindowRateLimiter(storage)
        self._account: RateLimitItem = RateLimitItemPerSecond(per_account, window_seconds)
        self._address: RateLimitItem = RateLimitItemPerSecond(per_address, window_seconds)

    def _counters(self, attempt: LoginAttempt) -> list[tuple[RateLimitItem, tuple[str, ...]]]:
        counters: list[tuple[RateLimitItem, tuple[str, ...]]] = [(self._account, ("account", attempt.account_key))]
        if attempt.client_address:
            # Across tenants: one client trying many tenants is still one client.
            counters.append((self._address, ("address", attempt.client_address)))
        return counters

    async def check(self, attempt: LoginAttempt) -> None:
        """Raise `TooManyLoginAttempts` (with `Retry-After`) if any counter of the attempt is full.
        If the counter store is unreachable, logins go on unthrottled (the outage is logged once)."""
        try:
            for item, keys in self._counters(attempt):
                if not await self._limiter.test(item, *keys):
                    stats = await self._limiter.get_window_stats(item, *keys)
                    retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                    log.warning("auth.login_throttled", counter=keys[0], retry_after=retry_after)
                    raise TooManyLoginAttempts(
                        f"Too many failed logins; try again in {retry_after} seconds",
                        headers={"Retry-After": str(retry_after)})
        except StorageError as exc:
            DEPENDENCIES.unavailable(_REDIS, operation="login throttle", error=type(exc.storage_error).__name__)
            return
        DEPENDENCIES.available(_REDIS)

    async def record_failure(self, attempt: LoginAttempt) -> None:
        try:
            for item, keys in self._counters(attempt):
                await self._limiter.hit(item, *keys)
        except StorageError as exc:
            DEPENDENCIES.unavailable(_REDIS, operation="login throttle", error=type(exc.storage_error).__name__)
