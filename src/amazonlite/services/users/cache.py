"""The profile read cache in Redis: an optimisation, never a source of errors.

`GET /users/me` reads through it; a change to a profile drops the entry after its transaction
commits. A Redis that is down or slow makes reads slower, never failing: every call is bounded by a
short timeout, an error is logged once and the database answers; after a failure reads skip Redis
for a few seconds instead of waiting on it again.

A drop leaves a short-lived tombstone rather than deleting the key, and entries are written only
where no key exists: a read that loaded the old row just before the change cannot put it back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from pydantic import ValidationError
from redis.exceptions import RedisError

from amazonlite.services.users.schemas import UserProfile

log = structlog.get_logger("amazonlite.users")

T = TypeVar("T")

TOMBSTONE = b"-"
# Long enough for a read that loaded the row before the change to finish and fail to write it back.
TOMBSTONE_SECONDS = 10
# After a failure, reads and writes leave Redis alone this long (drops are always tried).
PAUSE_SECONDS = 5.0


class ProfileCache:
    def __init__(self, redis: Any, *, prefix: str, ttl_seconds: int = 300, timeout_seconds: float = 0.25) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.timeout_seconds = timeout_seconds
        self._paused_until = 0.0
        self._failing = False

    def key(self, tenant_id: str, user_id: uuid.UUID) -> str:
        return f"{self.prefix}:users:profile:{tenant_id}:{user_id}"

    async def get(self, tenant_id: str, user_id: uuid.UUID) -> UserProfile | None:
        if self._paused():
            return None
        raw = await self._call("get", lambda: self.redis.get(self.key(tenant_id, user_id)))
        if not raw or raw == TOMBSTONE:
            return None
        try:
            return UserProfile.model_validate_json(raw)
        except ValidationError:
            return None  # written by another version of the service: read the database

    async def put(self, tenant_id: str, user_id: uuid.UUID, profile: UserProfile) -> None:
        if self._paused():
            return
        await self._call("put", lambda: self.redis.set(self.key(tenant_id, user_id), profile.model_dump_json(),
                                                       ex=self.ttl_seconds, nx=True))

    async def drop(self, tenant_id: str, user_id: uuid.UUID, *, guard: bool = True) -> None:
        """Forget the entry. With `guard` (a changed row), leave a tombstone so a read that loaded the
        old row cannot put it back; without (a new row: no read can have loaded an older one), delete."""
        key = self.key(tenant_id, user_id)
        if guard:
            await self._call("drop", lambda: self.redis.set(key, TOMBSTONE, ex=TOMBSTONE_SECONDS))
        else:
            await self._call("drop", lambda: self.redis.delete(key))

    def _paused(self) -> bool:
        return time.monotonic() < self._paused_until

    async def _call(self, operation: str, command: Callable[[], Awaitable[T]]) -> T | None:
        try:
            async with asyncio.timeout(self.timeout_seconds):
                result = await command()
        except (RedisError, OSError, TimeoutError) as exc:
            self._paused_until = time.monotonic() + PAUSE_SECONDS
            self._failing = True
            log.warning("users.profile_cache_failed", operation=operation, error=type(exc).__name__,
                        detail=str(exc)[:200])
            return None
        if self._failing:
            self._failing = False
            log.info("users.profile_cache_recovered")
        return result
