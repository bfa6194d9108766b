"""Outbox → Kafka (tansu) → inbox, between runtimes on separate databases, each with its own
KafkaTransport (consumer group = service name)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from sqlalchemy import select

from amazonlite.contracts import UserRegisteredV1
from amazonlite.platform.bus import Message
from amazonlite.platform.bus.kafka import KafkaTransport
from amazonlite.platform.consumer import EventContext
from amazonlite.platform.events import dead_letter_topic
from amazonlite.platform.migrations import upgrade
from amazonlite.platform.outbox import record_event
from amazonlite.platform.revocation import MemoryRevocationStore
from amazonlite.platform.service import ServiceRuntime
from amazonlite.topology import load_service
from tests.platform.helpers import count_rows, counter, eventually, read_topic, started
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
from tests.support.harness import fast_platform_settings as platform_for
from tests.support.servers import FAST_GROUPS

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.xdist_group("kafka")]

CONSUMED = "amazonlite_events_consumed_total"


async def republish(bootstrap: str, record: ConsumerRecord[bytes, bytes]) -> None:
    """Publish a message read from the topic again, byte for byte, as a broker redelivery would."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(record.topic, record.value, key=record.key, headers=list(record.headers))
    finally:
        await producer.stop()


async def the_record(bootstrap: str, topic: str, event_id: uuid.UUID) -> ConsumerRecord[bytes, bytes]:
    [record] = [r for r in await read_topic(bootstrap, topic) if json.loads(r.value)["eventId"] == str(event_id)]
    return record


class TestOutboxToInbox:
    async def test_an_event_is_applied_once_even_when_kafka_delivers_it_again(
            self, postgres_url: str, second_postgres_url: str, tmp_path: Path, kafka_bootstrap: str,
            tenant: str, unique: str) -> None:
        payload = entry_added(unique)
        group = f"audit-{unique}"
        platform = platform_for(tmp_path, kafka_bootstrap=kafka_bootstrap)
        producer_bus = KafkaTransport(kafka_bootstrap, client_id=f"ledger-{unique}", **FAST_GROUPS)
        consumer_bus = KafkaTransport(kafka_bootstrap, client_id=group, **FAST_GROUPS)
        producer = await build_runtime(ledger_module(), platform, postgres_url, producer_bus)
        consumer = await build_runtime(ledger_module(group, payload=payload), platform, second_postgres_url,
                                       consumer_bus)
        entry_id = uuid.uuid4()
        async with started([producer_bus, consumer_bus], [producer, consumer]):
            async with producer.db.session(tenant_id=tenant) as session:
                session.add(Entry(id=entry_id, amount=500))
                envelope = await record_event(session, payload(entry_id=entry_id, amount=500), aggregate_id=entry_id)
            await eventually(lambda: entry_amounts(consumer, tenant), what="the consumer to apply the event")

            await republish(kafka_bootstrap, await the_record(kafka_bootstrap, payload.event_type, envelope.event_id))
            await eventually(lambda: counter(CONSUMED, service=group, topic=payload.event_type,
                                                 outcome="duplicate") > 0, what="the redelivery to arrive")

        assert await entry_amounts(consumer, tenant) == [500]
        assert await count_rows(consumer.db.engine, "inbox", "consumer = :c", c=group) == 1
        assert counter(CONSUMED, service=group, topic=payload.event_type, outcome="applied") == 1

    async def test_the_users_service_creates_one_profile_from_a_user_registered_event(
            self, postgres_url: str, second_postgres_url: str, tmp_path: Path, kafka_bootstrap: str,
            tenant: str, unique: str) -> None:
        users = load_service("users")
        await asyncio.to_thread(upgrade, "users", users.migrations, second_postgres_url)
        platform = platform_for(tmp_path, kafka_bootstrap=kafka_bootstrap)
        producer_bus = KafkaTransport(kafka_bootstrap, client_id=f"ledger-{unique}", **FAST_GROUPS)
        users_bus = KafkaTransport(kafka_bootstrap, client_id=f"users-{unique}", **FAST_GROUPS)
        producer = await build_runtime(ledger_module(), platform, postgres_url, producer_bus)
        consumer = ServiceRuntime(users, platform, transport=users_bus, revocations=MemoryRevocationStore(),
                                  settings=users.settings(database_url=second_postgres_url))
        topic = UserRegisteredV1.event_type
        duplicates_before = counter(CONSUMED, service="users", topic=topic, outcome="duplicate")
        user_id = uuid.uuid4()

        async def profiles() -> int:
            return await count_rows(consumer.db.engine, "profiles", "tenant_id = :t", t=tenant)

        async with started([producer_bus, users_bus], [producer, consumer]):
            async with producer.db.session(tenant_id=tenant) as session:
                envelope = await record_event(session, UserRegisteredV1(
                    user_id=user_id, email=f"{unique}@example.com", name="Ada", roles=["customer"]),
                    aggregate_id=user_id)
            await eventually(profiles, what="users to create the profile")

            await republish(kafka_bootstrap, await the_record(kafka_bootstrap, topic, envelope.event_id))
            await eventually(lambda: counter(CONSUMED, service="users", topic=topic, outcome="duplicate")
                                         > duplicates_before, what="the redelivery to arrive")

        assert await profiles() == 1
        assert await count_rows(consumer.db.engine, "inbox", "tenant_id = :t", t=tenant) == 1


class TestOrderPerAggregate:
    async def test_fifty_events_of_one_aggregate_arrive_in_the_order_they_were_committed(
            self, sqlite_url: str, postgres_url: str, tmp_path: Path, kafka_bootstrap: str,
            tenant: str, unique: str) -> None:
        payload = entry_added(unique)
        group = f"audit-{unique}"
        received: list[int] = []

        async def remember(_ctx: EventContext, event: EntryAddedV1) -> None:
            received.append(event.seq)

        platform = platform_for(tmp_path, kafka_bootstrap=kafka_bootstrap)
        producer_bus = KafkaTransport(kafka_bootstrap, client_id=f"ledger-{unique}", **FAST_GROUPS)
        consumer_bus = KafkaTransport(kafka_bootstrap, client_id=group, **FAST_GROUPS)
        producer = await build_runtime(ledger_module(), platform, sqlite_url, producer_bus)
        consumer = await build_runtime(ledger_module(group, payload=payload, on_entry=remember), platform,
                                       postgres_url, consumer_bus)
        aggregate = uuid.uuid4()
        async with started([producer_bus, consumer_bus], [producer, consumer]):
            for seq in range(50):  # the relay runs meanwhile, so they leave in batches of varying size
                async with producer.db.session(tenant_id=tenant) as session:
                    await record_event(session, payload(entry_id=aggregate, amount=seq, seq=seq),
                                       aggregate_id=aggregate)
            await eventually(lambda: len(received) >= 50, what="50 events")

        assert received == list(range(50))


class TestPoisonEvent:
    async def test_a_poison_event_is_dead_lettered_and_the_partition_moves_on(
            self, sqlite_url: str, postgres_url: str, tmp_path: Path, kafka_bootstrap: str,
            tenant: str, unique: str) -> None:
        payload = entry_added(unique)
        group = f"audit-{unique}"
        topic = payload.event_type

        async def picky(ctx: EventContext, event: EntryAddedV1) -> None:
            if event.amount == 13:
                raise ValueError(f"entry {event.entry_id} has an unlucky amount")
            await copy_entry(ctx, event)

        platform = platform_for(tmp_path, kafka_bootstrap=kafka_bootstrap, consumer_max_attempts=3)
        producer_bus = KafkaTransport(kafka_bootstrap, client_id=f"ledger-{unique}", **FAST_GROUPS)
        consumer_bus = KafkaTransport(kafka_bootstrap, client_id=group, **FAST_GROUPS)
        producer = await build_runtime(ledger_module(), platform, sqlite_url, producer_bus)
        consumer = await build_runtime(ledger_module(group, payload=payload, on_entry=picky), platform,
                                       postgres_url, consumer_bus)
        aggregate, poison_id, good_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        async with started([producer_bus, consumer_bus], [producer, consumer]):
            async with producer.db.session(tenant_id=tenant) as session:
                poison = await record_event(session, payload(entry_id=poison_id, amount=13), aggregate_id=aggregate)
            async with producer.db.session(tenant_id=tenant) as session:
                await record_event(session, payload(entry_id=good_id, amount=7), aggregate_id=aggregate)
            await eventually(lambda: entry_amounts(consumer, tenant), what="the next event to be applied")

        assert await entry_amounts(consumer, tenant) == [7]
        original = await the_record(kafka_bootstrap, topic, poison.event_id)
        [dead] = await read_topic(kafka_bootstrap, dead_letter_topic(topic))
        assert dead.value == original.value
        assert dead.key == str(aggregate).encode()
        headers = dict(dead.headers)
        assert headers["x-dead-letter-consumer"] == group.encode()
        assert f"ValueError: entry {poison_id} has an unlucky amount" in headers["x-dead-letter-error"].decode()

        table = MESSAGING.dead_letters
        async with consumer.db.engine.connect() as conn:
            [row] = (await conn.execute(select(table))).all()
        assert (row.consumer, row.event_id, row.topic, row.tenant_id, row.attempts) == (
            group, poison.event_id, topic, tenant, 3)
        assert "unlucky amount" in row.error
        assert row.replayed_at is None
        assert counter("amazonlite_dead_letters_total", service=group, topic=topic) == 1
        assert counter("amazonlite_event_retries_total", service=group, topic=topic) == 2



class TestFirstPublish:
    async def test_a_first_batch_naming_a_topic_created_elsewhere_and_a_brand_new_one_is_published(
            self, kafka_bootstrap: str) -> None:
        """auth's first signup publishes user.registered.v1 (created by the users service when it
        subscribed) and notification.email.requested.v1 (new) in one batch. Without waiting for the
        producer's metadata of the new topic, tansu answered NotLeaderForPartition after aiokafka's
        40 s request timeout: the first event of a fresh platform took 40 s."""
        existing, brand_new = f"exists.{uuid.uuid4().hex[:8]}.v1", f"new.{uuid.uuid4().hex[:8]}.v1"
        received: list[str] = []

        async def deliver(messages: Sequence[Message]) -> None:
            received.extend(message.topic for message in messages)

        consumer = KafkaTransport(kafka_bootstrap, client_id="consumer-side", **FAST_GROUPS)
        consumer.subscribe("first-publish", [existing], deliver)
        producer = KafkaTransport(kafka_bootstrap, client_id="producer-side", **FAST_GROUPS)
        # As on a fresh platform: the consumer's service starts (creating its topic), then the producer's,
        # and the first publish comes a little later.
        async with started([consumer], []), started([producer], []):
            await eventually(lambda: consumer.check_consumer("first-publish", 60) == "ok",
                             what="the consumer group to join")
            await asyncio.sleep(5)
            await producer.publish([Message(existing, b"k", b"one"), Message(brand_new, b"k", b"two")])
            await eventually(lambda: received == [existing], what="the event on the existing topic")
        assert [r.value for r in await read_topic(kafka_bootstrap, brand_new)] == [b"two"]
