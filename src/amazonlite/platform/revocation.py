"""Revoked access-token ids: Redis in the distributed topology, process memory embedded.

Entries expire with the token they revoke, so the store never grows past the tokens alive.
"""

from __future__ import annotations

import time
from typing import Protocol

from redis.asyncio import Redis


class RevocationStore(Protocol):
    async def revoke(self, token_id: str, expires_at: int) -> None: ...

    async def is_revoked(self, token_id: str) -> bool: ...


class MemoryRevocationStore:
    def __init__(self) -> None:
        self._revoked: dict[str, int] = {}

    async def revoke(self, token_id: str, expires_at: int) -> None:
        now = int(time.time())
        if expires_at > now:
            self._revoked[token_id] = expires_at
        if len(self._revoked) > 10_000:
            self._revoked = {k: v for k, v in self._revoked.items() if v > now}

    async def is_revoked(self, token_id: str) -> bool:
        expires = self._revoked.get(token_id)
        return expires is not None and expires > time.time()


class RedisRevocationStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}:revoked-jti:"

    async def revoke(self, token_id: str, expires_at: int) -> None:
        if expires_at > time.time():
            await self._redis.set(self._prefix + token_id, b"1", exat=expires_at)

    async def is_revoked(self, token_id: str) -> bool:
        return bool(await self._redis.exists(self._prefix + token_id))
