"""A consumer whose store is down does not lose the event (the in-process bus of the embedded
topology): the producer's relay cannot mark it sent, and delivers it once the store is back."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from amazonlite.platform.bus.memory import InProcessTransport
from amazonlite.platform.consumer import EventContext
from amazonlite.platform.outbox import record_event
from tests.platform.helpers import count_rows, eventually
from tests.platform.ledger import (
    EntryAddedV1,
    build_runtime,
    copy_entry,
    entry_added,
    entry_amounts,
    ledger_module,
    published,
)
from tests.support.harness import fast_platform_settings as platform_for
from tests.support.servers import PG_ADMIN_URL

pytestmark = pytest.mark.postgres


async def accept_connections(database_url: str, accept: bool) -> None:
    """Open or close a PostgreSQL database to connections; closing also ends the open ones."""
    name = make_url(database_url).database
    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(accept).lower()}')
        if not accept:
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
    finally:
        await conn.close()


class TestConsumerStoreOutage:
    async def test_the_event_waits_in_the_outbox_until_the_consumer_store_is_back(
            self, sqlite_url: str, postgres_url: str, tmp_path: Path, tenant: str, unique: str) -> None:
        payload = entry_added(unique)
        group = f"audit-{unique}"
        platform = platform_for(tmp_path, consumer_max_attempts=2)
        bus = InProcessTransport()
        producer = await build_runtime(ledger_module(), platform, sqlite_url, bus)
        consumer = await build_runtime(ledger_module(group, payload=payload), platform, postgres_url, bus)
        await bus.start()
        try:
            entry_id = uuid.uuid4()
            async with producer.db.session(tenant_id=tenant) as session:
                envelope = await record_event(session, payload(entry_id=entry_id, amount=42), aggregate_id=entry_id)

            await accept_connections(postgres_url, False)
            try:
                # The consumer can neither apply the event nor record it as a dead letter: the bus
                # says so, and the relay leaves the row unpublished.
                with pytest.raises(DBAPIError):
                    await producer.relay.publish_pending()
                assert not await published(producer, envelope.event_id)
            finally:
                await accept_connections(postgres_url, True)

            await producer.start()  # the relay, which retries on its own
            await eventually(lambda: entry_amounts(consumer, tenant), what="the consumer to apply the event")
            await eventually(lambda: published(producer, envelope.event_id), what="the relay to mark it sent")
            assert await entry_amounts(consumer, tenant) == [42]
            assert await count_rows(consumer.db.engine, "dead_letters") == 0
            assert await count_rows(consumer.db.engine, "inbox") == 1
        finally:
            await producer.stop()
            await consumer.stop()
            await bus.stop()


class TestAnOutageIsNotTheEventsFault:
    async def test_an_outage_longer_than_the_retries_dead_letters_nothing_and_the_event_applies_once_back(
            self, sqlite_url: str, tmp_path: Path, tenant: str, unique: str) -> None:
        """The consumer's database refuses connections for more attempts than the retry budget (the
        driver's own error, as asyncpg raises it when it cannot connect): the event is delivered
        again until it applies, never dead-lettered, however the outage and the retries line up."""
        payload = entry_added(unique)
        refusals = 5  # more than consumer_max_attempts

        async def copy_once_the_database_is_back(ctx: EventContext, event: EntryAddedV1) -> None:
            nonlocal refusals
            if refusals:
                refusals -= 1
                raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
            await copy_entry(ctx, event)

        platform = platform_for(tmp_path, consumer_max_attempts=2)
        bus = InProcessTransport()
        producer = await build_runtime(ledger_module(), platform, sqlite_url, bus)
        consumer = await build_runtime(ledger_module(f"audit-{unique}", payload=payload,
                                                     on_entry=copy_once_the_database_is_back),
                                       platform, f"sqlite+aiosqlite:///{tmp_path / 'consumer.sqlite3'}", bus)
        await bus.start()
        try:
            entry_id = uuid.uuid4()
            async with producer.db.session(tenant_id=tenant) as session:
                envelope = await record_event(session, payload(entry_id=entry_id, amount=7), aggregate_id=entry_id)
            await producer.start()  # its relay retries a batch the consumer could not apply
            await eventually(lambda: published(producer, envelope.event_id), what="the event to be applied")
            assert refusals == 0
            assert await entry_amounts(consumer, tenant) == [7]
            assert await count_rows(consumer.db.engine, "dead_letters") == 0
        finally:
            await producer.stop()
            await consumer.stop()
            await bus.stop()
