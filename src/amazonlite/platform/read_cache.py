"""A read-through cache of serialised documents: an optimisation, never a source of errors.

A service caches what a hot read answers (a profile, a product) as bytes, in Redis when the
topology has one (shared by the service's replicas) or in the process's memory otherwise (the
embedded topology: one process, so the copy it drops is the only one). Its writes drop the entry
after their transaction commits (`platform.db.after_commit`): dropped before, a concurrent read
could cache the old row again.

A drop leaves a short-lived tombstone rather than deleting the key, and entries are written only
where no key exists: a read that loaded the old row just before the change cannot put it back.

Redis that is down or slow makes reads slower, never failing: every call is bounded by a short
timeout, an error is logged once and the database answers; after a failure reads and writes skip
Redis for a few seconds instead of waiting on it again (drops are always tried).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import structlog
from cachetools import TLRUCache
from prometheus_client import Counter
from redis.exceptions import RedisError

log = structlog.get_logger("amazonlite.read_cache")

T = TypeVar("T")

TOMBSTONE = b"-"
# Long enough for a read that loaded the row before the change to finish and fail to write it back.
TOMBSTONE_SECONDS = 10
# After a failure, reads and writes leave Redis alone this long.
PAUSE_SECONDS = 5.0

READS = Counter("amazonlite_read_cache_reads_total", "Reads of a service's document cache, by outcome",
                ["cache", "outcome"])


class Store(Protocol):
    # In this process (cannot fail, never waits): called without a timeout.
    local: bool

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, *, ttl_seconds: float) -> None:
        """Write `value` unless the key exists (an entry or a tombstone)."""

    async def tombstone(self, key: str, *, ttl_seconds: float) -> None: ...

    async def delete(self, key: str) -> None: ...


class RedisStore:
    local = False

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self.redis.get(key)
        return value

    async def put(self, key: str, value: bytes, *, ttl_seconds: float) -> None:
        await self.redis.set(key, value, px=int(ttl_seconds * 1000), nx=True)

    async def tombstone(self, key: str, *, ttl_seconds: float) -> None:
        await self.redis.set(key, TOMBSTONE, px=int(ttl_seconds * 1000))

    async def delete(self, key: str) -> None:
        await self.redis.delete(key)


class MemoryStore:
    """At most `max_entries` documents (the least recently read go first), each until its expiry."""

    local = True

    def __init__(self, max_entries: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: TLRUCache[str, tuple[bytes, float]] = TLRUCache(
            max_entries, ttu=lambda _key, value, _now: value[1], timer=clock)
        self._clock = clock

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[0]

    async def put(self, key: str, value: bytes, *, ttl_seconds: float) -> None:
        if key not in self._entries:
            self._entries[key] = (value, self._clock() + ttl_seconds)

    async def tombstone(self, key: str, *, ttl_seconds: float) -> None:
        self._entries[key] = (TOMBSTONE, self._clock() + ttl_seconds)

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)


class ReadCache:
    """Documents by key in `store`, each kept `ttl_seconds`. `name` labels its log lines and its
    `amazonlite_read_cache_reads_total{cache=...}` counter (hits, misses, errors)."""

    def __init__(self, store: Store, *, name: str, ttl_seconds: float, timeout_seconds: float = 0.25) -> None:
        self.store = store
        self.name = name
        self.ttl_seconds = ttl_seconds
        self.timeout_seconds = timeout_seconds
        self._paused_until = 0.0
        self._failing = False
        self._hits = READS.labels(name, "hit")
        self._misses = READS.labels(name, "miss")
        self._errors = READS.labels(name, "error")

    @classmethod
    def shared_or_local(cls, redis: Any, *, name: str, ttl_seconds: float, max_local_entries: int,
                        timeout_seconds: float = 0.25) -> ReadCache:
        """In Redis when there is one, else in this process's memory."""
        store: Store = RedisStore(redis) if redis is not None else MemoryStore(max_local_entries)
        return cls(store, name=name, ttl_seconds=ttl_seconds, timeout_seconds=timeout_seconds)

    async def get(self, key: str) -> bytes | None:
        if self._paused():
            return None
        value = await self._call("get", lambda: self.store.get(key))
        if value is None or value == TOMBSTONE:
            (self._errors if value is None and self._paused() else self._misses).inc()
            return None
        self._hits.inc()
        return value

    async def put(self, key: str, value: bytes) -> None:
        if not self._paused():
            await self._call("put", lambda: self.store.put(key, value, ttl_seconds=self.ttl_seconds))

    async def drop(self, key: str, *, guard: bool = True) -> None:
        """Forget the entry. With `guard` (a changed row), leave a tombstone so a read that loaded the
        old row cannot put it back; without (a new row: no read can have loaded an older one), delete."""
        if guard:
            await self._call("drop", lambda: self.store.tombstone(key, ttl_seconds=TOMBSTONE_SECONDS))
        else:
            await self._call("drop", lambda: self.store.delete(key))

    def _paused(self) -> bool:
        return time.monotonic() < self._paused_until

    async def _call(self, operation: str, command: Callable[[], Awaitable[T]]) -> T | None:
        if self.store.local:
            return await command()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                result = await command()
        except (RedisError, OSError, TimeoutError) as exc:
            self._paused_until = time.monotonic() + PAUSE_SECONDS
            self._failing = True
            log.warning("read_cache.failed", cache=self.name, operation=operation, error=type(exc).__name__,
                        detail=str(exc)[:200])
            return None
        if self._failing:
            self._failing = False
            log.info("read_cache.recovered", cache=self.name)
        return result
