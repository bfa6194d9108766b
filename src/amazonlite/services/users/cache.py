"""The profile read cache: `GET /users/me` reads through Redis (platform/read_cache.py), and a change
to a profile drops the entry after its transaction commits."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError

from amazonlite.platform.read_cache import ReadCache, RedisStore
from amazonlite.services.users.schemas import UserProfile


class ProfileCache:
    def __init__(self, redis: Any, *, prefix: str, ttl_seconds: int = 300, timeout_seconds: float = 0.25) -> None:
        self.prefix = prefix
        self.documents = ReadCache(RedisStore(redis), name="users.profile", ttl_seconds=ttl_seconds,
                                   timeout_seconds=timeout_seconds)

    def key(self, tenant_id: str, user_id: uuid.UUID) -> str:
        return f"{self.prefix}:users:profile:{tenant_id}:{user_id}"

    async def get(self, tenant_id: str, user_id: uuid.UUID) -> UserProfile | None:
        raw = await self.documents.get(self.key(tenant_id, user_id))
        if raw is None:
            return None
        try:
            return UserProfile.model_validate_json(raw)
        except ValidationError:
            return None  # written by another version of the service: read the database

    async def put(self, tenant_id: str, user_id: uuid.UUID, profile: UserProfile) -> None:
        await self.documents.put(self.key(tenant_id, user_id), profile.model_dump_json().encode())

    async def drop(self, tenant_id: str, user_id: uuid.UUID, *, guard: bool = True) -> None:
        """Forget the entry; `guard` (a changed row) leaves a tombstone (platform/read_cache.py)."""
        await self.documents.drop(self.key(tenant_id, user_id), guard=guard)
