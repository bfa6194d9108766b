"""Revoked access-token ids are kept past the token's expiry by a grace period, so a verifier that
allows a few seconds of clock leeway never accepts a revoked token again."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from amazonlite.platform.revocation import (
    GRACE_SECONDS,
    MemoryRevocationStore,
    RedisRevocationStore,
    RevocationStore,
)
from tests.support import servers


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[RevocationStore]:
    if request.param == "memory":
        yield MemoryRevocationStore()
        return
    redis = Redis.from_url(servers.redis_url())
    prefix = servers.redis_prefix()
    yield RedisRevocationStore(redis, prefix)
    keys = [key async for key in redis.scan_iter(f"{prefix}:*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


class TestRevocationOutlivesTheToken:
    async def test_a_token_revoked_at_its_last_second_stays_revoked_after_it_expires(
            self, store: RevocationStore) -> None:
        jti = uuid.uuid4().hex
        await store.revoke(jti, int(time.time()) - 2)  # expired 2 s ago: inside any verifier's leeway
        assert await store.is_revoked(jti)
        assert not await store.is_revoked(uuid.uuid4().hex)

    async def test_redis_keeps_the_entry_for_the_grace_period_then_lets_it_expire(self) -> None:
        redis = Redis.from_url(servers.redis_url())
        prefix = servers.redis_prefix()
        jti = uuid.uuid4().hex
        await RedisRevocationStore(redis, prefix).revoke(jti, int(time.time()) + 60)
        ttl = await redis.ttl(f"{prefix}:revoked-jti:{jti}")
        await redis.delete(f"{prefix}:revoked-jti:{jti}")
        await redis.aclose()
        assert 60 + GRACE_SECONDS - 5 <= ttl <= 60 + GRACE_SECONDS
