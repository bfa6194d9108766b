"""The Kafka transport (aiokafka): any Kafka-protocol broker (Apache Kafka, Redpanda, tansu).

Topic per event type, key = aggregate id (so one aggregate's events stay in order on one
partition), consumer group = service name, offsets committed only after the message was applied
or dead-lettered. Partitions of one group are consumed concurrently, messages within a partition
in order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from amazonlite.platform.bus import Deliver, Message

log = structlog.get_logger("amazonlite.bus.kafka")


@dataclass
class _Group:
    group: str
    topics: tuple[str, ...]
    deliver: Deliver
    consumer: AIOKafkaConsumer | None = None
    task: asyncio.Task[None] | None = None
    # Set once the group coordinator has given this member its partitions (maybe none): before that
    # the process is not ready, its consumer is not consuming yet.
    joined: bool = False


class _JoinListener(ConsumerRebalanceListener):
    def __init__(self, group: _Group) -> None:
        self.group = group

    async def on_partitions_revoked(self, revoked: object) -> None:
        pass

    async def on_partitions_assigned(self, assigned: object) -> None:
        self.group.joined = True


class KafkaTransport:
    name = "kafka"

    def __init__(self, bootstrap: str, *, client_id: str, partitions: int = 3,
                 fetch_max_wait_ms: int = 10, retry_backoff_s: float = 0.5, session_timeout_ms: int = 10_000,
                 heartbeat_interval_ms: int = 3_000) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.partitions = partitions
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.retry_backoff_s = retry_backoff_s
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self._groups: list[_Group] = []
        self._producer: AIOKafkaProducer | None = None
        self._known_topics: set[str] = set()
        self._topic_lock = asyncio.Lock()
        self._running = False

    def subscribe(self, group: str, topics: Sequence[str], deliver: Deliver) -> None:
        self._groups.append(_Group(group, tuple(topics), deliver))

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, client_id=self.client_id, acks="all", linger_ms=2,
        )
        await self._producer.start()
        self._running = True
        await self.ensure_topics({t for g in self._groups for t in g.topics})
        for group in self._groups:
            group.consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                client_id=f"{self.client_id}-{group.group}",
                group_id=group.group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=self.fetch_max_wait_ms,
                session_timeout_ms=self.session_timeout_ms,
                heartbeat_interval_ms=self.heartbeat_interval_ms,
            )
            group.consumer.subscribe(list(group.topics), listener=_JoinListener(group))
            await group.consumer.start()
            group.task = asyncio.create_task(self._consume(group), name=f"kafka-consume-{group.group}")

    async def stop(self) -> None:
        self._running = False
        for group in self._groups:
            if group.task:
                group.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await group.task
            if group.consumer:
                with contextlib.suppress(Exception):
                    await group.consumer.stop()
            group.task, group.consumer = None, None
        if self._producer:
            await self._producer.stop()
            self._producer = None

    async def ensure_topics(self, topics: set[str]) -> None:
        missing = topics - self._known_topics
        if not missing:
            return
        async with self._topic_lock:
            missing = topics - self._known_topics
            if not missing:
                return
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id=f"{self.client_id}-admin")
            await admin.start()
            try:
                existing = set(await admin.list_topics())
                to_create = [NewTopic(t, self.partitions, 1) for t in sorted(missing - existing)]
                if to_create:
                    with contextlib.suppress(TopicAlreadyExistsError):
                        await admin.create_topics(to_create)
            finally:
                await admin.close()
            if self._producer is not None:
                # The producer must know where a topic lives before its first send. Without this, a
                # first batch naming a topic the producer already knew and one just created was
                # answered NotLeaderForPartition only after the 40 s request timeout (tansu): the
                # first signup of a fresh distributed platform took 40 s to reach the users service.
                for topic in sorted(missing):
                    await self._producer.partitions_for(topic)
            self._known_topics |= missing

    async def publish(self, messages: Sequence[Message]) -> None:
        if self._producer is None:
            raise ConnectionError("the Kafka transport is not started")
        await self.ensure_topics({m.topic for m in messages})
        futures = [
            await self._producer.send(m.topic, m.value, key=m.key, headers=list(m.headers))
            for m in messages
        ]
        await asyncio.gather(*futures)

    async def ping(self) -> None:
        if self._producer is None:
            raise ConnectionError("the Kafka transport is not started")
        for group in self._groups:
            if group.task is None or group.task.done():
                raise ConnectionError(f"the consumer of group {group.group} is not running")
            if not group.joined:
                raise ConnectionError(f"the consumer of group {group.group} has not joined its group yet")
        await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout=5)

    async def _consume(self, group: _Group) -> None:
        consumer = group.consumer
        assert consumer is not None
        while self._running:
            try:
                batches = await consumer.getmany(timeout_ms=500, max_records=500)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker unreachable: aiokafka reconnects, we wait
                log.warning("bus.fetch_failed", group=group.group, error=str(exc))
                await asyncio.sleep(self.retry_backoff_s)
                continue
            if batches:
                # return_exceptions: one partition's failure must not end the others, nor the loop.
                results = await asyncio.gather(*(self._apply(group, consumer, tp, records)
                                                 for tp, records in batches.items()), return_exceptions=True)
                for result in results:
                    if isinstance(result, Exception):
                        log.warning("bus.batch_failed", group=group.group, error=repr(result))

    async def _apply(self, group: _Group, consumer: AIOKafkaConsumer, tp: TopicPartition,
                     records: list[ConsumerRecord[bytes, bytes]]) -> None:
        done: int | None = None
        for record in records:
            message = Message(record.topic, record.key or b"", record.value or b"",
                              tuple((k, v) for k, v in (record.headers or ())))
            try:
                await group.deliver(message)
            except Exception as exc:  # the consumer's own store is down: deliver again later
                log.warning("bus.deliver_failed", group=group.group, topic=record.topic,
                            offset=record.offset, error=str(exc))
                consumer.seek(tp, record.offset)
                await asyncio.sleep(self.retry_backoff_s)
                break
            done = record.offset
        if done is not None:
            try:
                await consumer.commit({tp: done + 1})
            except Exception as exc:
                # A rebalance or a lost coordinator: the partition's new owner (maybe us) gets these
                # messages again, and the inbox makes the repeat harmless.
                log.warning("bus.commit_failed", group=group.group, partition=tp.partition, error=str(exc))
