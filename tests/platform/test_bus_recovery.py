"""The bus recovers by itself, and health tells the truth: consumers and the outbox relay outlive a
broker that dies, comes back empty or comes back with its storage, with no restart of theirs, and
`/health/ready` and `/metrics` say what happens meanwhile."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import KafkaError
from fastapi import FastAPI
from prometheus_client import REGISTRY

from amazonlite.gateway.app import CachePolicy, create_gateway
from amazonlite.platform.bus import Message
from amazonlite.platform.bus.kafka import KafkaTransport
from amazonlite.platform.bus.memory import InProcessTransport
from amazonlite.platform.config import PlatformSettings
from amazonlite.platform.outbox import record_event
from amazonlite.platform.revocation import MemoryRevocationStore
from amazonlite.platform.service import ServiceRuntime, create_service_app
from tests.platform.helpers import count_rows, counter, eventually, read_topic, started
from tests.platform.ledger import (
    EntryAddedV1,
    build_runtime,
    entry_added,
    entry_amounts,
    ledger_module,
    published,
)
from tests.support import servers
from tests.support.harness import fast_platform_settings
from tests.support.servers import FAST_GROUPS, TansuBroker

pytestmark = [pytest.mark.kafka, pytest.mark.xdist_group("kafka")]

# Small thresholds, so that a test sees a stall, a restart and the readiness it causes in seconds.
STALE_AFTER_S = 1.5
RECOVERY = 60.0  # generous: proves "recovers by itself", not how fast


@pytest.fixture
def broker() -> Iterator[TansuBroker]:
    """A broker of this test alone, in memory, that it may kill and start again (empty)."""
    with servers.killable_tansu_broker() as broker:
        yield broker


def transport(bootstrap: str, client_id: str) -> KafkaTransport:
    return KafkaTransport(bootstrap, client_id=client_id, request_timeout_ms=1000, restart_after_s=1.0,
                          **FAST_GROUPS)


def platform_for(tmp_path: Path, bootstrap: str) -> PlatformSettings:
    return fast_platform_settings(tmp_path, kafka_bootstrap=bootstrap, outbox_publish_timeout_ms=1000,
                                  consumer_stale_after_ms=int(STALE_AFTER_S * 1000),
                                  outbox_stale_after_ms=int(STALE_AFTER_S * 1000))


async def add_entry(producer: ServiceRuntime, payload: type[EntryAddedV1], tenant: str, amount: int) -> uuid.UUID:
    entry_id = uuid.uuid4()
    async with producer.db.session(tenant_id=tenant) as session:
        envelope = await record_event(session, payload(entry_id=entry_id, amount=amount), aggregate_id=entry_id)
    return envelope.event_id


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


class TestBrokerRestartedEmpty:
    async def test_a_consumer_resumes_without_a_restart_and_its_readiness_says_when_it_cannot(
            self, broker: TansuBroker, sqlite_url: str, postgres_url: str, tmp_path: Path, tenant: str,
            unique: str) -> None:
        payload = entry_added(unique)
        group = f"audit-{unique}"
        check = f"consumer.{group}"
        platform = platform_for(tmp_path, broker.bootstrap)
        producer_bus, consumer_bus = transport(broker.bootstrap, "ledger"), transport(broker.bootstrap, group)
        producer = await build_runtime(ledger_module(), platform, sqlite_url, producer_bus)
        consumer = await build_runtime(ledger_module(group, payload=payload), platform, postgres_url, consumer_bus)
        async with started([producer_bus, consumer_bus], [producer, consumer]):
            await add_entry(producer, payload, tenant, 1)
            await eventually(lambda: entry_amounts(consumer, tenant), what="the first event")
            assert (await consumer.check_ready())[check] == "ok"

            broker.kill()
            failing = await eventually(lambda: _failing(consumer, check), what="readiness to name the consumer")
            assert failing.startswith("failing: no successful poll")

            broker.start()  # on the same port, with nothing: no topic, no group, no offset
            for amount in (2, 3):
                await add_entry(producer, payload, tenant, amount)
            await eventually(lambda: _amounts_are(consumer, tenant, [1, 2, 3]),
                             what="the events sent after the restart", timeout=RECOVERY)
            await eventually(lambda: _ready(consumer, check), what="readiness to say ok again", timeout=RECOVERY)

            # And it goes on consuming, committing on the topics created again.
            await add_entry(producer, payload, tenant, 4)
            await eventually(lambda: _amounts_are(consumer, tenant, [1, 2, 3, 4]), what="a later event")
        assert counter("amazonlite_consumer_restarts_total", group=group) >= 1


class TestDurableBrokerKilled:
    async def test_nothing_is_lost_and_the_consumer_resumes_from_its_committed_offsets(
            self, sqlite_url: str, postgres_url: str, tmp_path: Path, tenant: str, unique: str) -> None:
        payload = entry_added(unique)
        group = f"audit-{unique}"
        with servers.durable_tansu_broker() as broker:
            platform = platform_for(tmp_path, broker.bootstrap)
            producer_bus, consumer_bus = transport(broker.bootstrap, "ledger"), transport(broker.bootstrap, group)
            producer = await build_runtime(ledger_module(), platform, sqlite_url, producer_bus)
            consumer = await build_runtime(ledger_module(group, payload=payload), platform, postgres_url,
                                           consumer_bus)
            async with started([producer_bus, consumer_bus], [producer, consumer]):
                before = [await add_entry(producer, payload, tenant, amount) for amount in (1, 2)]
                await eventually(lambda: _amounts_are(consumer, tenant, [1, 2]), what="the events before the kill")
                await eventually(lambda: _lag(group, payload.event_type) == 0, what="the offsets to be committed")

                broker.kill()
                during = await add_entry(producer, payload, tenant, 3)  # the relay cannot publish it yet
                await asyncio.sleep(2 * STALE_AFTER_S)
                broker.start()

                await eventually(lambda: _amounts_are(consumer, tenant, [1, 2, 3]), what="the event of the outage",
                                 timeout=RECOVERY)
                await eventually(lambda: published(producer, during), what="the relay to mark it sent")
                await eventually(lambda: _ready(consumer, f"consumer.{group}"), what="readiness", timeout=RECOVERY)

            # The broker kept what it had accepted before the kill, and the offsets: nothing was
            # delivered again (the inbox would have dropped a repeat: it is counted, not applied).
            # Read until it shows the event of the outage too: once (CI, session 7) a fresh reader's
            # end offsets from the restarted broker, on object storage, did not include it yet,
            # although the consumer had applied it.
            async def on_the_topic() -> bool:
                return set(before) | {during} <= _event_ids(await read_topic(broker.bootstrap, payload.event_type))

            await eventually(on_the_topic, what="every event on the topic", timeout=RECOVERY)
            assert await count_rows(consumer.db.engine, "inbox", "consumer = :c", c=group) == 3
            assert counter("amazonlite_events_consumed_total", service=group, topic=payload.event_type,
                           outcome="duplicate") == 0


class TestRelayWhileTheBrokerIsDown:
    async def test_a_publish_gives_up_at_its_deadline_and_the_backlog_is_reported_then_drained(
            self, broker: TansuBroker, sqlite_url: str, tmp_path: Path, tenant: str, unique: str) -> None:
        payload = entry_added(unique)
        platform = platform_for(tmp_path, broker.bootstrap)
        bus = transport(broker.bootstrap, f"ledger-{unique}")
        service = f"ledger-{unique}"
        producer = await build_runtime(ledger_module(service), platform, sqlite_url, bus)
        await bus.start()
        try:
            broker.kill()
            events = [await add_entry(producer, payload, tenant, amount) for amount in (1, 2, 3)]

            began = time.monotonic()
            with pytest.raises((TimeoutError, KafkaError)):  # whichever comes first: the deadline, or aiokafka's
                await producer.relay.publish_pending()
            assert time.monotonic() - began < 10 * platform.outbox_publish_timeout_ms / 1000, \
                "the relay waited on a dead broker far longer than its deadline"

            await producer.start()  # the relay runs, and keeps failing
            await eventually(lambda: sample("amazonlite_outbox_backlog", service=service) == 3,
                             what="the backlog gauge")
            await eventually(lambda: (sample("amazonlite_outbox_oldest_age_seconds", service=service) or 0)
                             > STALE_AFTER_S, what="the age gauge to grow")
            ready = await producer.check_ready()
            assert ready["outbox"].startswith("failing: the oldest unpublished event is"), ready
            assert ready["bus"].startswith("failing"), ready

            broker.start()

            async def drained() -> bool:
                return all([await published(producer, event_id) for event_id in events])

            await eventually(drained, what="the backlog to drain", timeout=RECOVERY)
            await eventually(lambda: _ready(producer, "outbox"), what="readiness", timeout=RECOVERY)
            assert sample("amazonlite_outbox_backlog", service=service) == 0
            assert sample("amazonlite_outbox_oldest_age_seconds", service=service) == 0
            assert set(events) <= _event_ids(await read_topic(broker.bootstrap, payload.event_type))
        finally:
            await producer.stop()
            await bus.stop()


class TestEmbeddedBus:
    async def test_its_consumers_are_ok_by_construction_and_a_stuck_outbox_is_named(
            self, sqlite_url: str, tmp_path: Path, tenant: str, unique: str) -> None:
        payload = entry_added(unique)
        consumer_down = True

        async def downstream(messages: Sequence[Message]) -> None:  # another service, whose database is away
            if consumer_down:
                raise ConnectionError("the consumer's database is down")

        bus = InProcessTransport()
        bus.subscribe("downstream", [payload.event_type], downstream)
        service = f"ledger-{unique}"
        producer = await build_runtime(ledger_module(service, payload=payload), platform_for(tmp_path, ""),
                                       sqlite_url, bus)
        async with started([bus], [producer]):
            event_id = await add_entry(producer, payload, tenant, 1)
            failing = await eventually(lambda: _failing(producer, "outbox"), what="readiness to name the outbox")
            assert failing.startswith("failing: the oldest unpublished event is")
            assert (await producer.check_ready())[f"consumer.{service}"] == "ok"

            consumer_down = False
            await eventually(lambda: published(producer, event_id), what="the event to be delivered")
            await eventually(lambda: _ready(producer, "outbox"), what="readiness")


class TestGatewayReadiness:
    async def test_the_gateways_cache_invalidation_group_is_named_while_the_broker_is_away(
            self, broker: TansuBroker, tmp_path: Path, unique: str) -> None:
        events = transport(broker.bootstrap, "gateway")
        gateway = create_gateway(platform_for(tmp_path, broker.bootstrap), [], revocations=MemoryRevocationStore(),
                                 cache_policy=CachePolicy(routes=frozenset(), invalidated_by=(f"cache.{unique}.v1",)),
                                 events=events)

        async def ready() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as client:
                return await client.get("/health/ready")

        async with started([events], []):
            await eventually(lambda: _status(ready, 200), what="the gateway to be ready")
            assert (await ready()).json()["checks"]["consumer.gateway"] == "ok"

            broker.kill()

            async def consumer_named() -> httpx.Response | None:
                answer = await ready()
                return answer if answer.json()["checks"]["consumer.gateway"] != "ok" else None

            answer = await eventually(consumer_named, what="readiness to name the gateway's group")
            assert answer.status_code == 503
            assert answer.json()["checks"]["consumer.gateway"].startswith("failing: no successful poll")

            broker.start()
            await eventually(lambda: _status(ready, 200), what="the gateway to be ready again", timeout=RECOVERY)


async def _status(ready: Callable[[], Awaitable[httpx.Response]], status: int) -> httpx.Response | None:
    answer = await ready()
    return answer if answer.status_code == status else None


class TestMessagesWaitingUnconsumed:
    async def test_a_group_whose_fetches_bring_nothing_while_messages_wait_is_named_and_replaced(
            self, broker: TansuBroker, unique: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """Polls that succeed are not enough: a broker can answer every fetch empty while messages
        wait (tansu on object storage, whose reads outlast a short fetch wait). Here the records of
        every fetch are lost on their way to the loop, as if the broker had answered empty."""
        topic, group = f"empty.{unique}.v1", f"starved-{unique}"
        applied: list[bytes] = []

        async def deliver(messages: Sequence[Message]) -> None:
            applied.extend(message.value for message in messages)

        consumer_bus, producer_bus = transport(broker.bootstrap, group), transport(broker.bootstrap, "producer")
        consumer_bus.subscribe(group, [topic], deliver)

        async def readiness() -> str:
            return consumer_bus.check_consumer(group, STALE_AFTER_S)

        async with started([consumer_bus, producer_bus], []):
            await producer_bus.publish([Message(topic, b"k", b"first")])
            await eventually(lambda: applied == [b"first"], what="the first message")
            restarts = counter("amazonlite_consumer_restarts_total", group=group)

            real_getmany = AIOKafkaConsumer.getmany
            starving = True

            async def empty_answers(self: AIOKafkaConsumer, *partitions: object, **kwargs: object) -> object:
                records = await real_getmany(self, *partitions, **kwargs)  # type: ignore[arg-type]
                return {} if starving else records

            monkeypatch.setattr(AIOKafkaConsumer, "getmany", empty_answers)
            await asyncio.sleep(1.0)  # past the fetch that was in flight unpatched (0.5 s at most)
            await producer_bus.publish([Message(topic, b"k", b"second")])
            failing = await eventually(lambda: _not_ok(readiness), what="readiness to name the group")
            assert failing.startswith(f"failing: messages wait on {topic}["), failing
            await eventually(lambda: counter("amazonlite_consumer_restarts_total", group=group) > restarts,
                             what="a new consumer")

            starving = False  # a new consumer starts from the committed offset: nothing is lost
            await eventually(lambda: applied[-1:] == [b"second"], what="the waiting message", timeout=RECOVERY)
            await eventually(lambda: _is_ok(readiness), what="readiness to say ok again", timeout=RECOVERY)


class TestConsumerMetrics:
    async def test_lag_last_poll_and_commit_failures_are_on_metrics(
            self, broker: TansuBroker, sqlite_url: str, tmp_path: Path, unique: str) -> None:
        topic, group = f"lag.{unique}.v1", f"lagging-{unique}"
        store_down = asyncio.Event()
        store_down.set()
        applied: list[bytes] = []

        async def deliver(messages: Sequence[Message]) -> None:
            if store_down.is_set():
                raise ConnectionError("the consumer's database is down")
            applied.extend(message.value for message in messages)

        consumer_bus, producer_bus = transport(broker.bootstrap, group), transport(broker.bootstrap, "producer")
        consumer_bus.subscribe(group, [topic], deliver)
        runtime = await build_runtime(ledger_module(group), platform_for(tmp_path, broker.bootstrap), sqlite_url,
                                      consumer_bus)
        app = create_service_app(runtime, own_lifespan=False)
        async with started([consumer_bus, producer_bus], []):
            await producer_bus.publish([Message(topic, b"one-key", f"m{i}".encode()) for i in range(5)])
            lag = await eventually(lambda: _lag(group, topic), what="the lag to show")
            assert lag == 5

            store_down.clear()
            await eventually(lambda: len(applied) == 5, what="the messages to be applied")
            await eventually(lambda: _lag(group, topic) == 0, what="the lag to drop")
            text = await _metrics(app)
            last_poll = sample("amazonlite_consumer_last_poll_timestamp_seconds", group=group)
            assert last_poll is not None and abs(time.time() - last_poll) < 10
            assert f'amazonlite_consumer_last_poll_timestamp_seconds{{group="{group}"}}' in text
            assert f'amazonlite_consumer_lag{{group="{group}",partition=' in text

            assert f'amazonlite_consumer_commit_failures_total{{group="{group}"}} 0.0' in text
        # A consumer that is gone reports no lag: its partitions are someone else's now.
        assert not [s for metric in REGISTRY.collect() if metric.name == "amazonlite_consumer_lag"
                    for s in metric.samples if s.labels.get("group") == group]


async def _metrics(app: FastAPI) -> str:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        answer = await client.get("/metrics")
    return answer.text


def _event_ids(records: list[ConsumerRecord[bytes, bytes]]) -> set[uuid.UUID]:
    return {uuid.UUID(json.loads(r.value or b"{}")["eventId"]) for r in records}


def _lag(group: str, topic: str) -> float:
    return sum(s.value for metric in REGISTRY.collect() if metric.name == "amazonlite_consumer_lag"
               for s in metric.samples if s.labels.get("group") == group and s.labels.get("topic") == topic)


async def _failing(runtime: ServiceRuntime, check: str) -> str | None:
    value = (await runtime.check_ready())[check]
    return value if value != "ok" else None


async def _not_ok(check: Callable[[], Awaitable[str]]) -> str | None:
    value = await check()
    return value if value != "ok" else None


async def _is_ok(check: Callable[[], Awaitable[str]]) -> bool:
    return await check() == "ok"


async def _ready(runtime: ServiceRuntime, check: str) -> bool:
    return (await runtime.check_ready())[check] == "ok"


async def _amounts_are(runtime: ServiceRuntime, tenant: str, expected: list[int]) -> bool:
    return await entry_amounts(runtime, tenant) == expected
