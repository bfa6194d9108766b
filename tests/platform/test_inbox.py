"""The consumer's inbox: an event delivered again, one after the other or at the same moment, has
its effect once, on each database (PostgreSQL and SQLite record it with one INSERT … ON CONFLICT
DO NOTHING; MySQL/MariaDB read the inbox, then insert)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from amazonlite.platform.bus import Message
from amazonlite.platform.bus.memory import InProcessTransport
from amazonlite.platform.config import Environment, PlatformSettings
from amazonlite.platform.consumer import EventContext
from amazonlite.platform.events import Envelope
from amazonlite.platform.service import ServiceRuntime
from tests.platform.ledger import (
    MESSAGING,
    Entry,
    EntryAddedV1,
    build_runtime,
    copy_entry,
    entry_added,
    entry_amounts,
    ledger_module,
)

Added = entry_added("inbox")


# The ids of the events the handler ran for, committed or not (reset by the `runtime` fixture).
HANDLED: list[uuid.UUID] = []


async def counted_copy(ctx: EventContext, event: EntryAddedV1) -> None:
    HANDLED.append(ctx.envelope.event_id)
    await copy_entry(ctx, event)


@pytest.fixture
async def runtime(any_database_url: str, tmp_path: Path) -> AsyncIterator[ServiceRuntime]:
    HANDLED.clear()
    platform = PlatformSettings(environment=Environment.TEST, data_dir=tmp_path, log_json=False)
    module = ledger_module("ledger", payload=Added, on_entry=counted_copy)
    built = await build_runtime(module, platform, any_database_url, InProcessTransport())
    try:
        yield built
    finally:
        await built.db.dispose()


def message(tenant: str, amount: int) -> Message:
    envelope = Envelope(event_id=uuid.uuid4(), event_type=Added.event_type, occurred_at=dt.datetime.now(dt.UTC),
                        producer="ledger", schema_version=1, trace_id="0" * 32, correlation_id="inbox",
                        tenant_id=tenant, payload=Added(entry_id=uuid.uuid4(), amount=amount).model_dump(mode="json"))
    return Message(Added.event_type, b"k", envelope.to_json())


async def inbox_rows(runtime: ServiceRuntime) -> int:
    async with runtime.db.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(MESSAGING.inbox)) or 0)


async def dead_letters(runtime: ServiceRuntime) -> int:
    async with runtime.db.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(MESSAGING.dead_letters)) or 0)


async def test_an_event_delivered_again_has_no_second_effect(runtime: ServiceRuntime, tenant: str) -> None:
    first, second = message(tenant, 5), message(tenant, 7)
    for delivered in (first, second, first, second, first):
        await runtime.consumer.deliver(delivered)
    assert await entry_amounts(runtime, tenant) == [5, 7]
    assert await inbox_rows(runtime) == 2
    assert await dead_letters(runtime) == 0


async def test_one_event_delivered_several_times_at_once_has_one_effect(runtime: ServiceRuntime,
                                                                        tenant: str) -> None:
    same = message(tenant, 3)
    await asyncio.gather(*(runtime.consumer.deliver(same) for _ in range(6)))
    assert await entry_amounts(runtime, tenant) == [3]
    assert await inbox_rows(runtime) == 1
    assert await dead_letters(runtime) == 0


async def test_a_duplicate_leaves_nothing_of_its_own(runtime: ServiceRuntime, tenant: str) -> None:
    """The handler of a duplicate never runs: its effect (an entry with the event's id) is there once."""
    same = message(tenant, 9)
    await runtime.consumer.deliver(same)
    await runtime.consumer.deliver(same)
    async with runtime.db.session(tenant_id=tenant) as session:
        sources = (await session.scalars(select(Entry.source_event_id))).all()
    assert len(sources) == 1
    assert len(HANDLED) == 1  # not run, then rolled back: not run at all
