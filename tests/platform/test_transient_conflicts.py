"""A unit of work that lost a race is done again, not dead-lettered: the errors each database raises
for a deadlock victim, a serialization failure, a lock wait timeout or a busy SQLite are told apart
from outages and from wrong statements (`is_transient_conflict`), and the consumer redoes such a unit
without spending its attempts."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from amazonlite.platform.bus import Message
from amazonlite.platform.bus.memory import InProcessTransport
from amazonlite.platform.consumer import EventContext, RetryPolicy
from amazonlite.platform.db import TransientConflict, create_engine, is_database_outage, is_transient_conflict
from amazonlite.platform.events import Envelope
from tests.platform.helpers import count_rows, counter
from tests.platform.ledger import EntryAddedV1, build_runtime, copy_entry, entry_added, ledger_module
from tests.support.harness import fast_platform_settings as platform_for


async def _prepare(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE shelf (id INTEGER PRIMARY KEY, qty INTEGER NOT NULL)"))
        await conn.execute(text("INSERT INTO shelf (id, qty) VALUES (1, 10), (2, 10)"))


async def _deadlock(engine: AsyncEngine) -> DBAPIError:
    """Two transactions lock rows 1 and 2, then each wants the other's: the database aborts one."""
    first_locked, second_locked = asyncio.Event(), asyncio.Event()

    async def take(conn: AsyncConnection, mine: int, theirs: int, locked: asyncio.Event,
                   other: asyncio.Event) -> None:
        async with conn.begin():
            await conn.execute(text("UPDATE shelf SET qty = qty - 1 WHERE id = :id"), {"id": mine})
            locked.set()
            await other.wait()
            await conn.execute(text("UPDATE shelf SET qty = qty - 1 WHERE id = :id"), {"id": theirs})

    async with engine.connect() as a, engine.connect() as b:
        results = await asyncio.gather(take(a, 1, 2, first_locked, second_locked),
                                       take(b, 2, 1, second_locked, first_locked), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1, results
    assert isinstance(errors[0], DBAPIError), errors[0]
    return errors[0]


async def _error_of(action: Callable[[], Awaitable[Any]]) -> DBAPIError:
    with pytest.raises(DBAPIError) as caught:
        await action()
    return caught.value


@pytest.mark.postgres
class TestPostgres:
    @pytest.fixture
    async def engine(self, postgres_url: str) -> Any:
        engine = create_engine(postgres_url)
        await _prepare(engine)
        yield engine
        await engine.dispose()

    async def test_a_deadlock_victim_is_a_transient_conflict(self, engine: AsyncEngine) -> None:
        error = await _deadlock(engine)
        assert getattr(error.orig, "sqlstate", None) == "40P01"
        assert is_transient_conflict(error)
        assert not is_database_outage(error)

    async def test_a_serialization_failure_is_a_transient_conflict(self, engine: AsyncEngine) -> None:
        async with engine.connect() as reader, engine.connect() as writer:
            await reader.execution_options(isolation_level="REPEATABLE READ")
            async with reader.begin():
                await reader.execute(text("SELECT qty FROM shelf WHERE id = 1"))
                async with writer.begin():
                    await writer.execute(text("UPDATE shelf SET qty = 0 WHERE id = 1"))
                error = await _error_of(lambda: reader.execute(text("UPDATE shelf SET qty = 5 WHERE id = 1")))
        assert getattr(error.orig, "sqlstate", None) == "40001"
        assert is_transient_conflict(error)

    async def test_a_wrong_statement_or_a_broken_rule_is_not(self, engine: AsyncEngine) -> None:
        async with engine.connect() as conn:
            assert not is_transient_conflict(await _error_of(lambda: conn.execute(text("SELECT * FROM nowhere"))))
        async with engine.connect() as conn:
            duplicate = await _error_of(lambda: conn.execute(text("INSERT INTO shelf (id, qty) VALUES (1, 1)")))
        assert not is_transient_conflict(duplicate)


@pytest.mark.mysql
class TestMariaDB:
    @pytest.fixture
    async def engine(self, mysql_url: str) -> Any:
        engine = create_engine(mysql_url)
        await _prepare(engine)
        yield engine
        await engine.dispose()

    async def test_a_deadlock_victim_is_a_transient_conflict(self, engine: AsyncEngine) -> None:
        error = await _deadlock(engine)
        assert error.orig.args[0] == 1213
        assert is_transient_conflict(error)
        assert not is_database_outage(error)

    async def test_a_lock_wait_timeout_is_a_transient_conflict(self, engine: AsyncEngine) -> None:
        async with engine.connect() as holder, engine.connect() as waiter:
            await waiter.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
            await waiter.commit()
            async with holder.begin():
                await holder.execute(text("UPDATE shelf SET qty = 0 WHERE id = 1"))
                error = await _error_of(lambda: waiter.execute(text("UPDATE shelf SET qty = 5 WHERE id = 1")))
        assert error.orig.args[0] == 1205
        assert is_transient_conflict(error)

    async def test_a_wrong_statement_is_not(self, engine: AsyncEngine) -> None:
        async with engine.connect() as conn:
            assert not is_transient_conflict(await _error_of(lambda: conn.execute(text("SELECT * FROM nowhere"))))


class TestSQLite:
    async def test_a_busy_database_is_a_transient_conflict(self, tmp_path: Path) -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'busy.sqlite3'}")
        try:
            await _prepare(engine)
            async with engine.connect() as holder, engine.connect() as other:
                await other.execute(text("PRAGMA busy_timeout = 0"))
                async with holder.begin():
                    await holder.execute(text("UPDATE shelf SET qty = 0 WHERE id = 1"))
                    error = await _error_of(lambda: other.execute(text("UPDATE shelf SET qty = 5 WHERE id = 2")))
            assert "locked" in str(error.orig)
            assert is_transient_conflict(error)
            assert not is_database_outage(error)
        finally:
            await engine.dispose()


class TestTheConsumerRedoesALostRace:
    async def _runtime(self, tmp_path: Path, unique: str, on_entry: Any, *, max_conflicts: int = 100) -> Any:
        payload = entry_added(unique)
        platform = platform_for(tmp_path, consumer_max_attempts=2)
        runtime = await build_runtime(ledger_module(f"audit-{unique}", payload=payload, on_entry=on_entry),
                                      platform, f"sqlite+aiosqlite:///{tmp_path / 'audit.sqlite3'}",
                                      InProcessTransport())
        runtime.consumer.retry = RetryPolicy(max_attempts=2, initial=0.001, maximum=0.002,
                                             max_conflicts=max_conflicts, conflict_initial=0.001)
        return runtime, payload

    async def test_more_conflicts_than_attempts_still_apply_the_event_once(self, tmp_path: Path, tenant: str,
                                                                           unique: str) -> None:
        lost = 0

        async def lose_five_races(ctx: EventContext, event: EntryAddedV1) -> None:
            nonlocal lost
            await copy_entry(ctx, event)  # written, then rolled back with the inbox row
            if lost < 5:
                lost += 1
                raise TransientConflict("the stock changed since it was read")

        runtime, payload = await self._runtime(tmp_path, unique, lose_five_races)
        group = runtime.name
        try:
            before = counter("amazonlite_event_conflicts_total", service=group, topic=payload.event_type)
            await runtime.consumer.deliver(_message(payload, tenant))
            assert lost == 5
            assert await count_rows(runtime.db.engine, "entries") == 1
            assert await count_rows(runtime.db.engine, "inbox") == 1
            assert await count_rows(runtime.db.engine, "dead_letters") == 0
            assert counter("amazonlite_event_conflicts_total", service=group, topic=payload.event_type) == before + 5
            assert counter("amazonlite_event_retries_total", service=group, topic=payload.event_type) == 0
        finally:
            await runtime.stop()

    async def test_a_race_lost_past_the_cap_is_an_ordinary_failure(self, tmp_path: Path, tenant: str,
                                                                   unique: str) -> None:
        async def always_lose(ctx: EventContext, event: EntryAddedV1) -> None:
            raise TransientConflict("never wins")

        runtime, payload = await self._runtime(tmp_path, unique, always_lose, max_conflicts=3)
        try:
            await runtime.consumer.deliver(_message(payload, tenant))
            assert await count_rows(runtime.db.engine, "dead_letters") == 1
            assert await count_rows(runtime.db.engine, "inbox") == 0
        finally:
            await runtime.stop()


def _message(payload: type[EntryAddedV1], tenant: str) -> Message:
    entry_id = uuid.uuid4()
    envelope = Envelope(event_id=uuid.uuid4(), event_type=payload.event_type, occurred_at=dt.datetime.now(dt.UTC),
                        producer="test", schema_version=1, trace_id="0" * 32, correlation_id="test",
                        tenant_id=tenant, payload=payload(entry_id=entry_id, amount=7).model_dump(mode="json"))
    return Message(envelope.event_type, str(entry_id).encode(), envelope.to_json())
