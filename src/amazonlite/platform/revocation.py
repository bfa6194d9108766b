"""Revoked access-token ids: Redis in the distributed topology, process memory embedded.

Entries outlive the token they revoke by a grace period that covers any clock leeway a verifier
allows (and clock skew), then expire, so the store never grows past the tokens still alive.
"""

from __future__ import annotations

import time
from typing import Protocol

from redis.asyncio import Redis

# Longer than any verifier's `exp` leeway and any sane clock skew between hosts.
GRACE_SECONDS = 300


def _keep_until(expires_at: int) -> int:
    return max(expires_at, int(time.time())) + GRACE_SECONDS


class RevocationStore(Protocol):
    async def revoke(self, token_id: str, expires_at: int) -> None: ...

    async def is_revoked(self, token_id: str) -> bool: ...


class MemoryRevocationStore:
    def __init__(self) -> None:
        self._revoked: dict[str, int] = {}

    async def revoke(self, token_id: str, expires_at: int) -> None:
        now = int(time.time())
        self._revoked[token_id] = _keep_until(expires_at)
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
        await self._redis.set(self._prefix + token_id, b"1", exat=_keep_until(expires_at))

    async def is_revoked(self, token_id: str) -> bool:
        return bool(await self._redis.exists(self._prefix + token_id))
