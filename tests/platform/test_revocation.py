"""Revoked access tokens, by id and by session (refresh-token family), are kept past the tokens'
expiry by a grace period, so a verifier that allows a few seconds of clock leeway never accepts a
revoked token again; then they expire."""

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


@pytest.fixture
async def redis() -> AsyncIterator[tuple[Redis, str]]:
    client = Redis.from_url(servers.redis_url())
    prefix = servers.redis_prefix()
    yield client, prefix
    keys = [key async for key in client.scan_iter(f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def new_id() -> str:
    return uuid.uuid4().hex


class TestRevocationOutlivesTheToken:
    async def test_a_token_revoked_at_its_last_second_stays_revoked_after_it_expires(
            self, store: RevocationStore) -> None:
        jti = new_id()
        await store.revoke(jti, int(time.time()) - 2)  # expired 2 s ago: inside any verifier's leeway
        assert await store.is_revoked(jti)
        assert await store.is_revoked(jti, new_id())
        assert not await store.is_revoked(new_id())

    async def test_redis_keeps_the_entry_for_the_grace_period_then_lets_it_expire(
            self, redis: tuple[Redis, str]) -> None:
        client, prefix = redis
        jti = new_id()
        await RedisRevocationStore(client, prefix).revoke(jti, int(time.time()) + 60)
        ttl = await client.ttl(f"{prefix}:revoked-jti:{jti}")
        assert 60 + GRACE_SECONDS - 5 <= ttl <= 60 + GRACE_SECONDS


class TestFamilyRevocation:
    async def test_revokes_every_token_of_the_family_and_only_those(self, store: RevocationStore) -> None:
        family, other_family = str(uuid.uuid4()), str(uuid.uuid4())
        await store.revoke_family(family, int(time.time()) + 900)
        assert await store.is_revoked(new_id(), family)
        assert await store.is_revoked(new_id(), family)
        assert not await store.is_revoked(new_id(), other_family)
        assert not await store.is_revoked(new_id())
        # A family id is not a token id: the two never answer for each other.
        assert not await store.is_revoked(family)

    async def test_a_family_revoked_as_its_last_token_expires_stays_revoked_for_the_grace(
            self, store: RevocationStore) -> None:
        family = str(uuid.uuid4())
        await store.revoke_family(family, int(time.time()) - 2)
        assert await store.is_revoked(new_id(), family)

    async def test_redis_keeps_the_family_while_its_tokens_live_plus_the_grace(
            self, redis: tuple[Redis, str]) -> None:
        client, prefix = redis
        family = str(uuid.uuid4())
        await RedisRevocationStore(client, prefix).revoke_family(family, int(time.time()) + 900)
        ttl = await client.ttl(f"{prefix}:revoked-family:{family}")
        assert 900 + GRACE_SECONDS - 5 <= ttl <= 900 + GRACE_SECONDS

    async def test_redis_answers_for_token_and_family_in_one_command(
            self, redis: tuple[Redis, str], monkeypatch: pytest.MonkeyPatch) -> None:
        client, prefix = redis
        store = RedisRevocationStore(client, prefix)
        family = str(uuid.uuid4())
        await store.revoke_family(family, int(time.time()) + 900)
        sent: list[object] = []
        execute = client.execute_command

        async def counted(*args: object, **options: object) -> object:
            sent.append(args[0])
            return await execute(*args, **options)

        monkeypatch.setattr(client, "execute_command", counted)
        assert await store.is_revoked(new_id(), family)
        assert not await store.is_revoked(new_id(), str(uuid.uuid4()))
        assert sent == ["EXISTS", "EXISTS"]
