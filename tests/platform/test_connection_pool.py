"""The pool pings a connection only when it sat idle: one that came back a moment ago is handed out
as it is (a round trip saved per unit of work), one idle longer is pinged and replaced if dead."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from amazonlite.platform import db as db_module
from amazonlite.platform.db import Database, is_database_outage
from tests.support import servers


@pytest.fixture
async def database(postgres_url: str) -> AsyncIterator[Database]:
    database = Database(postgres_url, pool_size=1)
    try:
        yield database
    finally:
        await database.dispose()


async def backend_of(database: Database) -> int:
    async with database.session(tenant_id="*") as session:
        return int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)


async def terminate(pid: int) -> None:
    admin = await asyncpg.connect(servers.PG_ADMIN_URL, timeout=5)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_an_idle_connection_is_pinged_and_a_dead_one_replaced(database: Database,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "PING_IDLE_AFTER_S", 0.0)
    first = await backend_of(database)
    await terminate(first)
    second = await backend_of(database)  # the ping found it dead: a new connection, no error
    assert second != first


async def test_a_connection_back_a_moment_ago_is_not_pinged(database: Database,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "PING_IDLE_AFTER_S", 3600.0)
    first = await backend_of(database)
    await terminate(first)
    # Handed out unpinged: the unit of work meets the dead connection as an outage (a consumer
    # delivers again, a request answers 503), and the pool replaces its connections.
    with pytest.raises(DBAPIError) as failed:
        await backend_of(database)
    assert is_database_outage(failed.value), repr(failed.value)
    assert await backend_of(database) != first
