"""A value another service owns, read over HTTP and kept for a short time: one call per key at a time,
and the last known value when the owner cannot answer.

The gateway's tenant directory (gateway/tenants.py) and the services' tenant settings
(platform/tenant_settings.py) are both this: `CachedLookup(fetch, ...)` where `fetch(key)` asks the
owner and returns the value (or raises). Concurrent lookups of one key share one call. When a fetch
fails (any exception: the owner down, its breaker open, an unreadable answer), a value seen before is
used again, however old, and the owner is asked again after `retry_after_failure` seconds; a key never
seen raises the error `unavailable(key)` makes (an `AppError`, usually a 503 problem). Outages are
logged once per outage of the owner (platform/outages.py), not once per lookup.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from amazonlite.platform.errors import AppError
from amazonlite.platform.outages import DEPENDENCIES

V = TypeVar("V")


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    expires: float


class CachedLookup(Generic[V]):
    """Values by key from `fetch`, each kept for `ttl(value)` seconds (a function: a "no such thing"
    answer may be kept shorter than a real one), at most `max_entries` of them (the oldest go first).
    `dependency` names the owner in the outage log (`gateway.upstream.tenants`)."""

    def __init__(self, fetch: Callable[[str], Awaitable[V]], *, ttl: Callable[[V], float], max_entries: int,
                 unavailable: Callable[[str], AppError], dependency: str, operation: str,
                 retry_after_failure: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._max_entries = max_entries
        self._unavailable = unavailable
        self._dependency = dependency
        self._operation = operation
        self._retry_after_failure = retry_after_failure
        self._clock = clock
        self._cache: dict[str, _Entry[V]] = {}
        self._inflight: dict[str, asyncio.Task[V]] = {}

    async def get(self, key: str) -> V:
        entry = self._cache.get(key)
        if entry is not None and entry.expires > self._clock():
            return entry.value
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._refresh(key))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        # Shielded: a caller that goes away does not cancel the lookup the others wait for.
        return await asyncio.shield(task)

    def forget(self, key: str) -> None:
        """Drop what is known of `key`: the next lookup asks the owner."""
        self._cache.pop(key, None)

    def _finished(self, key: str, task: asyncio.Task[V]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have gone

    async def _refresh(self, key: str) -> V:
        try:
            value = await self._fetch(key)
        except Exception as exc:
            stale = self._cache.get(key)
            DEPENDENCIES.unavailable(self._dependency, operation=self._operation, key=key, error=repr(exc)[:300],
                                     using_stale=stale is not None)
            if stale is None:
                raise self._unavailable(key) from exc
            stale.expires = self._clock() + self._retry_after_failure
            return stale.value
        DEPENDENCIES.available(self._dependency)
        self._remember(key, value)
        return value

    def _remember(self, key: str, value: V) -> None:
        self._cache.pop(key, None)
        while len(self._cache) >= self._max_entries:
            del self._cache[next(iter(self._cache))]
        self._cache[key] = _Entry(value, self._clock() + self._ttl(value))
