"""Revoked access tokens: Redis in the distributed topology, process memory embedded.

An access token is revoked by its id (`jti`: logout revokes the caller's token) or by its session,
the refresh-token family it was issued from (its `sid` claim: reuse of a spent refresh token,
logout and a password reset revoke families). A verifier asks about both in one check.

Entries outlive what they revoke by a grace period that covers any clock leeway a verifier allows
(and clock skew), then expire, so the store never grows past the tokens still alive: a token's
entry lives until the token expires, a family's until the last access token it issued expires.
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
    async def revoke(self, token_id: str, expires_at: int) -> None:
        """Revoke one access token; `expires_at` (epoch seconds) is when it expires anyway."""
        ...

    async def revoke_family(self, family_id: str, expires_at: int) -> None:
        """Revoke every access token issued from a refresh-token family; `expires_at` (epoch
        seconds) is when the last of them expires anyway."""
        ...

    async def is_revoked(self, token_id: str, family_id: str | None = None) -> bool:
        """Whether the token is revoked, by its id or by its family (one lookup)."""
        ...


class MemoryRevocationStore:
    _PRUNE_ABOVE = 10_000

    def __init__(self) -> None:
        self._revoked: dict[tuple[str, str], int] = {}  # (kind, id) -> keep until

    async def revoke(self, token_id: str, expires_at: int) -> None:
        self._add(("jti", token_id), expires_at)

    async def revoke_family(self, family_id: str, expires_at: int) -> None:
        self._add(("family", family_id), expires_at)

    async def is_revoked(self, token_id: str, family_id: str | None = None) -> bool:
        now = time.time()
        keys = [("jti", token_id)] if family_id is None else [("jti", token_id), ("family", family_id)]
        return any(self._revoked.get(key, 0) > now for key in keys)

    def _add(self, key: tuple[str, str], expires_at: int) -> None:
        self._revoked[key] = _keep_until(expires_at)
        if len(self._revoked) > self._PRUNE_ABOVE:
            now = int(time.time())
            self._revoked = {k: v for k, v in self._revoked.items() if v > now}


class RedisRevocationStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._token_prefix = f"{prefix}:revoked-jti:"
        self._family_prefix = f"{prefix}:revoked-family:"

    async def revoke(self, token_id: str, expires_at: int) -> None:
        await self._redis.set(self._token_prefix + token_id, b"1", exat=_keep_until(expires_at))

    async def revoke_family(self, family_id: str, expires_at: int) -> None:
        await self._redis.set(self._family_prefix + family_id, b"1", exat=_keep_until(expires_at))

    async def is_revoked(self, token_id: str, family_id: str | None = None) -> bool:
        keys = [self._token_prefix + token_id]
        if family_id is not None:
            keys.append(self._family_prefix + family_id)
        return bool(await self._redis.exists(*keys))  # one round trip: EXISTS counts the keys present
