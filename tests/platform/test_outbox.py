"""The transactional outbox: an event commits with the state change that caused it, or not at all,
and the relay publishes it to Kafka in the envelope of ARCHITECTURE §4."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from amazonlite.platform.bus.kafka import KafkaTransport
from amazonlite.platform.bus.memory import InProcessTransport
from amazonlite.platform.consumer import EventContext
from amazonlite.platform.context import bind_correlation_id
from amazonlite.platform.outbox import record_event
from tests.platform.helpers import count_rows, eventually, read_topic, started
from tests.platform.ledger import (
    Entry,
    EntryAddedV1,
    build_runtime,
    copy_entry,
    entry_added,
    entry_amounts,
    ledger_module,
    published,
)
from tests.support.harness import fast_platform_settings as platform_for
from tests.support.servers import FAST_GROUPS

pytestmark = [pytest.mark.kafka, pytest.mark.xdist_group("kafka")]

ENVELOPE_FIELDS = {"eventId", "eventType", "occurredAt", "producer", "schemaVersion", "traceId",
                   "correlationId", "tenantId", "payload"}


class Boom(Exception):
    pass


class TestCommitTogetherOrNotAtAll:
    async def test_a_rolled_back_unit_of_work_leaves_no_entry_no_outbox_row_and_nothing_on_kafka(
            self, sql_url: str, tmp_path: Path, kafka_bootstrap: str, tenant: str, unique: str) -> None:
        payload = entry_added(unique)
        transport = KafkaTransport(kafka_bootstrap, client_id=f"ledger-{unique}", **FAST_GROUPS)
        producer = await build_runtime(ledger_module(), platform_for(tmp_path), sql_url, transport)
        async with started([transport], [producer]):
            rolled_back = uuid.uuid4()

            async def add_entry_then_fail() -> None:
                async with producer.db.session(tenant_id=tenant) as session:
                    session.add(Entry(id=rolled_back, amount=1))
                    await session.flush()
                    await record_event(session, payload(entry_id=rolled_back, amount=1), aggregate_id=rolled_back)
                    raise Boom

            with pytest.raises(Boom):
                await add_entry_then_fail()
            assert await count_rows(producer.db.engine, "entries") == 0
            assert await count_rows(producer.db.engine, "outbox") == 0
            assert await producer.relay.publish_pending() == 0

            # A later committed event on the same topic is the only message there: the rolled-back
            # one never reached Kafka.
            committed = uuid.uuid4()
            async with producer.db.session(tenant_id=tenant) as session:
                session.add(Entry(id=committed, amount=2))
                envelope = await record_event(session, payload(entry_id=committed, amount=2), aggregate_id=committed)
            await eventually(lambda: published(producer, envelope.event_id), what="the relay to publish")
        records = await read_topic(kafka_bootstrap, payload.event_type)
        assert [json.loads(r.value)["payload"]["entry_id"] for r in records] == [str(committed)]
        # Recorded outside any span: no trace context travels with it.
        assert "traceparent" not in dict(records[0].headers)

    async def test_a_committed_unit_of_work_keeps_both_rows_and_the_relay_publishes_the_full_envelope(
            self, sql_url: str, tmp_path: Path, kafka_bootstrap: str, tenant: str, unique: str) -> None:
        payload = entry_added(unique)
        transport = KafkaTransport(kafka_bootstrap, client_id=f"ledger-{unique}", **FAST_GROUPS)
        producer = await build_runtime(ledger_module(), platform_for(tmp_path), sql_url, transport)
        tracer = TracerProvider().get_tracer("tests.platform")
        entry_id = uuid.uuid4()
        async with started([transport], [producer]):
            bind_correlation_id(f"corr-{unique}")
            with tracer.start_as_current_span("add entry") as span:
                async with producer.db.session(tenant_id=tenant) as session:
                    session.add(Entry(id=entry_id, amount=129900))
                    await session.flush()
                    envelope = await record_event(session, payload(entry_id=entry_id, amount=129900, seq=7),
                                                  aggregate_id=entry_id)
            trace_id = format(span.get_span_context().trace_id, "032x")
            span_id = format(span.get_span_context().span_id, "016x")
            assert await count_rows(producer.db.engine, "entries", "tenant_id = :t", t=tenant) == 1
            assert await count_rows(producer.db.engine, "outbox", "tenant_id = :t", t=tenant) == 1
            await eventually(lambda: published(producer, envelope.event_id), what="the relay to publish")

        [record] = await read_topic(kafka_bootstrap, payload.event_type)
        assert record.key == str(entry_id).encode()
        body = json.loads(record.value)
        assert set(body) == ENVELOPE_FIELDS
        assert body["eventId"] == str(envelope.event_id)
        assert body["eventType"] == payload.event_type
        assert body["producer"] == "ledger"
        assert body["schemaVersion"] == 1
        assert body["traceId"] == trace_id
        assert body["correlationId"] == f"corr-{unique}"
        assert body["tenantId"] == tenant
        assert body["payload"] == {"entry_id": str(entry_id), "amount": 129900, "seq": 7}
        occurred = dt.datetime.fromisoformat(body["occurredAt"])
        assert occurred.utcoffset() == dt.timedelta(0)
        assert abs(dt.datetime.now(dt.UTC) - occurred) < dt.timedelta(minutes=1)
        headers = dict(record.headers)
        assert headers["traceparent"].decode().startswith(f"00-{trace_id}-{span_id}-")


class TestTheInProcessBusDeadline:
    async def test_a_batch_slower_than_it_in_all_is_sent_again_in_halves_and_published_at_the_first_try(
            self, sqlite_url: str, tmp_path: Path, tenant: str, unique: str) -> None:
        """The in-process bus applies the events in every consumer before `publish` returns: a batch
        of events that together take longer than the deadline, each well within it, is sent again in
        smaller parts within the same publication (each event applied once), not a timeout that
        throws them back and starts again."""
        payload = entry_added(unique)

        async def slow_copy(ctx: EventContext, event: EntryAddedV1) -> None:
            await asyncio.sleep(0.4)
            await copy_entry(ctx, event)

        platform = platform_for(tmp_path, outbox_publish_timeout_ms=1000)
        bus = InProcessTransport()
        producer = await build_runtime(ledger_module(), platform, sqlite_url, bus)
        consumer = await build_runtime(ledger_module(f"slow-{unique}", payload=payload, on_entry=slow_copy),
                                       platform, f"sqlite+aiosqlite:///{tmp_path / 'consumer.sqlite3'}", bus)
        await bus.start()
        try:
            async with producer.db.session(tenant_id=tenant) as session:
                for amount in range(4):  # 1.6 s in all, 0.4 s each
                    entry_id = uuid.uuid4()
                    await record_event(session, payload(entry_id=entry_id, amount=amount), aggregate_id=entry_id)
            assert await producer.relay.publish_pending() == 4
            assert sorted(await entry_amounts(consumer, tenant)) == [0, 1, 2, 3]  # each applied once
        finally:
            await bus.stop()
            await producer.db.dispose()
            await consumer.db.dispose()
