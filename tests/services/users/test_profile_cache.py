from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from amazonlite.services.users.cache import ProfileCache
from amazonlite.services.users.schemas import UserProfile
from tests.services.users.factories import execute, registered, running_users
from tests.support.servers import free_port, redis_prefix, redis_url

ME = "/api/v1/users/me"


@pytest.fixture
async def redis() -> AsyncIterator[tuple[Redis, str]]:
    """A real Redis client and a key prefix of this test's own; its keys are deleted afterwards."""
    client = Redis.from_url(redis_url(), socket_timeout=2, socket_connect_timeout=2)
    prefix = redis_prefix()
    try:
        yield client, prefix
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def profile_key(prefix: str, tenant: str, user_id: uuid.UUID) -> str:
    return f"{prefix}:users:profile:{tenant}:{user_id}"


class TestProfileReadThroughRedis:
    async def test_reads_come_from_redis_until_a_change_drops_the_entry(
            self, sqlite_url: str, tmp_path: Path, redis: tuple[Redis, str]) -> None:
        client_redis, prefix = redis
        user_id = uuid.uuid4()
        async with running_users(sqlite_url, tmp_path, redis=client_redis, redis_prefix=prefix) as svc:
            await svc.deliver(registered(user_id), tenant="acme")
            async with svc.client(tenant="acme", user_id=user_id, roles=("customer",)) as client:
                assert (await client.get(ME)).json()["name"] == "Ada"
                key = profile_key(prefix, "acme", user_id)
                cached = await client_redis.get(key)
                assert cached is not None and json.loads(cached)["name"] == "Ada"
                assert 0 < await client_redis.ttl(key) <= 300

                # Changed behind the cache's back: the cached copy is still served.
                await execute(svc, "UPDATE profiles SET name = 'Renamed In SQL'")
                assert (await client.get(ME)).json()["name"] == "Ada"

                patched = await client.patch(ME, json={"locale": "en-GB"})
                assert patched.status_code == 200
                assert patched.json()["name"] == "Renamed In SQL"
                after = (await client.get(ME)).json()
                assert (after["name"], after["locale"]) == ("Renamed In SQL", "en-GB")

    async def test_a_profile_created_after_a_stale_entry_is_read_from_the_database(
            self, sqlite_url: str, tmp_path: Path, redis: tuple[Redis, str]) -> None:
        client_redis, prefix = redis
        user_id = uuid.uuid4()
        now = dt.datetime.now(dt.UTC)
        stale = UserProfile(id=user_id, email="old@example.com", name="Stale", locale=None, created_at=now,
                            updated_at=now)
        async with running_users(sqlite_url, tmp_path, redis=client_redis, redis_prefix=prefix) as svc:
            await client_redis.set(profile_key(prefix, "default", user_id), stale.model_dump_json())
            await svc.deliver(registered(user_id))
            async with svc.client(user_id=user_id, roles=("customer",)) as client:
                assert (await client.get(ME)).json()["name"] == "Ada"

    async def test_a_read_that_raced_a_change_cannot_put_the_old_row_back(self, redis: tuple[Redis, str]) -> None:
        client_redis, prefix = redis
        cache = ProfileCache(client_redis, prefix=prefix)
        user_id = uuid.uuid4()
        now = dt.datetime.now(dt.UTC)
        old = UserProfile(id=user_id, email="a@example.com", name="Old", locale=None, created_at=now, updated_at=now)
        await cache.drop("default", user_id)  # the change committed ...
        await cache.put("default", user_id, old)  # ... after a read had loaded the row
        assert await cache.get("default", user_id) is None


class TestRedisTroubleIsNeverAnError:
    async def test_a_closed_port_means_the_database_answers(self, sqlite_url: str, tmp_path: Path) -> None:
        dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.5, socket_connect_timeout=0.5)
        user_id = uuid.uuid4()
        async with running_users(sqlite_url, tmp_path) as svc:
            await svc.deliver(registered(user_id))
        try:
            async with running_users(sqlite_url, tmp_path, redis=dead, redis_prefix=redis_prefix()) as svc, \
                    svc.client(user_id=user_id, roles=("customer",)) as client:
                first = await client.get(ME)
                assert first.status_code == 200 and first.json()["name"] == "Ada"
                patched = await client.patch(ME, json={"name": "Ada L."})
                assert patched.status_code == 200
                again = await client.get(ME)
                assert again.status_code == 200 and again.json()["name"] == "Ada L."
        finally:
            await dead.aclose()

    async def test_a_redis_that_never_answers_means_the_database_answers(
            self, sqlite_url: str, tmp_path: Path) -> None:
        connections: list[asyncio.StreamWriter] = []

        async def accept_and_stay_silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(writer)

        server = await asyncio.start_server(accept_and_stay_silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        silent = Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=30, socket_connect_timeout=30)
        user_id = uuid.uuid4()
        async with running_users(sqlite_url, tmp_path) as svc:
            await svc.deliver(registered(user_id))
        try:
            async with running_users(sqlite_url, tmp_path, redis=silent, redis_prefix=redis_prefix()) as svc, \
                    svc.client(user_id=user_id, roles=("customer",)) as client:
                response = await client.get(ME)
                assert response.status_code == 200 and response.json()["name"] == "Ada"
                patched = await client.patch(ME, json={"name": "Ada L."})
                assert patched.status_code == 200
                assert (await client.get(ME)).json()["name"] == "Ada L."
            assert connections, "the cache was never tried"
        finally:
            await silent.aclose()
            for writer in connections:
                writer.close()
            server.close()
            await server.wait_closed()
