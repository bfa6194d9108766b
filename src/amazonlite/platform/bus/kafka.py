"""The Kafka transport (aiokafka): any Kafka-protocol broker (Apache Kafka, Redpanda, tansu).

Topic per event type, key = aggregate id (so one aggregate's events stay in order on one
partition), consumer group = service name, offsets committed only after the message was applied
or dead-lettered. Partitions of one group are consumed concurrently, messages within a partition
in order.

A group recovers by itself: when it has not polled or committed successfully for
`restart_after_s`, or the broker says one of its topics is unknown (a broker that came back with
empty storage), its consumer is stopped, its topics are created again and a new consumer joins,
with bounded backoff between attempts. The new consumer starts from the group's committed offsets,
or from the earliest message of a topic the group never committed on (a broker restarted empty).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError
from prometheus_client import Counter, Gauge

from amazonlite.platform.bus import Deliver, Message
from amazonlite.platform.outages import DEPENDENCIES

log = structlog.get_logger("amazonlite.bus.kafka")

LAG = Gauge("amazonlite_consumer_lag", "Messages on a partition the group has not consumed yet (highwater - position)",
            ["group", "topic", "partition"])
LAST_POLL = Gauge("amazonlite_consumer_last_poll_timestamp_seconds",
                  "When the group last fetched from the broker successfully (Unix time)", ["group"])
COMMIT_FAILURES = Counter("amazonlite_consumer_commit_failures_total", "Offset commits that failed or timed out",
                          ["group"])
RESTARTS = Counter("amazonlite_consumer_restarts_total", "Consumers stopped and started again after a stall",
                   ["group"])
MAX_RESTART_BACKOFF_S = 5.0


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
    # Whether it holds an assignment now (not between a revocation and the next assignment).
    assigned: bool = False
    # Unix times: the last fetch answered for every assigned partition, and the first of the offset
    # commits failing since the last one that succeeded.
    polled_at: float = 0.0
    commits_failing_since: float | None = None
    # The broker answered a commit with "unknown topic or partition": it lost the topic.
    unknown_topic: bool = False
    # The next offset to consume per partition (after the last message applied, or the one to retry).
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    # Per partition with messages waiting: the position it waits at, and since when (Unix time). A
    # broker can answer every fetch, empty, while messages wait (tansu on object storage when its
    # reads take longer than the fetch wait): polls succeed, nothing is consumed.
    waiting: dict[TopicPartition, tuple[int, float]] = field(default_factory=dict)
    # Why the group last stalled, until it is seen working again (readiness says it meanwhile: a
    # replaced consumer is not well because it was replaced).
    stalled: str | None = None
    stalled_since: float = 0.0

    def __post_init__(self) -> None:
        COMMIT_FAILURES.labels(self.group)  # exported from 0, not from the first failure

    @property
    def dependency(self) -> str:
        """Its name in readiness and in the outage log."""
        return f"consumer.{self.group}"

    def polled(self, at: float) -> None:
        if at > self.polled_at:
            self.polled_at = at
            LAST_POLL.labels(self.group).set(at)

    def commit_failed(self, exc: BaseException) -> None:
        COMMIT_FAILURES.labels(self.group).inc()
        if self.commits_failing_since is None:
            self.commits_failing_since = time.time()
        if isinstance(exc, UnknownTopicOrPartitionError):
            self.unknown_topic = True

    def forget_partition(self, tp: TopicPartition) -> None:
        """The partition is no longer this member's (revoked, or its consumer thrown away)."""
        self.next_offsets.pop(tp, None)
        self.waiting.pop(tp, None)
        with contextlib.suppress(KeyError):
            LAG.remove(self.group, tp.topic, str(tp.partition))

    def observe_position(self, tp: TopicPartition, position: int, highwater: int, now: float) -> None:
        LAG.labels(self.group, tp.topic, str(tp.partition)).set(max(highwater - position, 0))
        if position >= highwater:
            self.waiting.pop(tp, None)
        elif self.waiting.get(tp, (None, 0.0))[0] != position:
            self.waiting[tp] = (position, now)

    def stall(self, since: float, limit: float, *, joining_grace: float = 0.0) -> str | None:
        """Why the group counts as stalled when nothing went right for `limit` seconds after `since`
        (polls: `joining_grace` longer while it waits for an assignment, which a rebalance can hold
        for a session timeout)."""
        now = time.time()
        if self.unknown_topic:
            return "the broker does not know a topic of the group"
        if now - max(self.polled_at, since) > limit + (0.0 if self.assigned else joining_grace):
            return f"no successful poll for {now - self.polled_at:.0f} s"
        if self.commits_failing_since is not None and now - max(self.commits_failing_since, since) > limit:
            return f"offset commits failing for {now - self.commits_failing_since:.0f} s"
        for tp, (position, waiting_since) in self.waiting.items():
            if now - max(waiting_since, since) > limit:
                return f"messages wait on {tp.topic}[{tp.partition}] at offset {position}, none consumed for " \
                       f"{now - waiting_since:.0f} s"
        return None


class _JoinListener(ConsumerRebalanceListener):
    def __init__(self, group: _Group) -> None:
        self.group = group

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        self.group.assigned = False
        self.group.commits_failing_since = None  # failures of commits on partitions it no longer has
        for tp in revoked:
            self.group.forget_partition(tp)

    async def on_partitions_assigned(self, assigned: object) -> None:
        if not self.group.joined:
            self.group.polled(time.time())
        self.group.joined = self.group.assigned = True


class KafkaTransport:
    name = "kafka"
    delivers_inline = False

    def __init__(self, bootstrap: str, *, client_id: str, partitions: int = 3,
                 fetch_max_wait_ms: int = 10, retry_backoff_s: float = 0.5, session_timeout_ms: int = 10_000,
                 heartbeat_interval_ms: int = 3_000, request_timeout_ms: int = 5_000,
                 restart_after_s: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.partitions = partitions
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.retry_backoff_s = retry_backoff_s
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.request_timeout_ms = request_timeout_ms
        self.restart_after_s = restart_after_s
        self._groups: list[_Group] = []
        self._producer: AIOKafkaProducer | None = None
        self._known_topics: set[str] = set()
        self._topic_lock = asyncio.Lock()
        self._running = False

    @property
    def _request_timeout_s(self) -> float:
        return self.request_timeout_ms / 1000

    @property
    def _joining_grace_s(self) -> float:
        """How long a join may wait for the group's other members (a dead one: a session timeout)."""
        return self.session_timeout_ms / 1000 + self._request_timeout_s

    def subscribe(self, group: str, topics: Sequence[str], deliver: Deliver) -> None:
        self._groups.append(_Group(group, tuple(topics), deliver))

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, client_id=self.client_id, acks="all", linger_ms=2,
            request_timeout_ms=self.request_timeout_ms,
        )
        await self._producer.start()
        self._running = True
        await self.ensure_topics({t for g in self._groups for t in g.topics})
        for group in self._groups:
            await self._start_consumer(group)
            group.task = asyncio.create_task(self._supervise(group), name=f"kafka-consume-{group.group}")

    async def stop(self) -> None:
        self._running = False
        for group in self._groups:
            if group.task:
                group.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await group.task
            await self._discard_consumer(group)
            group.task = None
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
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id=f"{self.client_id}-admin",
                                        request_timeout_ms=self.request_timeout_ms)
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

    def forget_topics(self, topics: Sequence[str]) -> None:
        """The broker may have lost these topics (it restarted with empty storage): check again and
        create them before their next use."""
        self._known_topics -= set(topics)

    async def publish(self, messages: Sequence[Message]) -> None:
        if self._producer is None:
            raise ConnectionError("the Kafka transport is not started")
        topics = {m.topic for m in messages}
        try:
            # tansu acknowledges a send to a topic it does not have, and drops it: after a restart
            # with empty storage the first events of an idle producer were lost. Ask which topics
            # the broker has (one request, without creating any) and create those it lost.
            cluster = await self._producer.client.fetch_all_metadata()
            self.forget_topics(list(topics - cluster.topics()))
            await self.ensure_topics(topics)
            futures = [
                await self._producer.send(m.topic, m.value, key=m.key, headers=list(m.headers))
                for m in messages
            ]
            await asyncio.gather(*futures)
        except BaseException:  # a failure or the caller's deadline: the broker may have lost them
            self.forget_topics(list(topics))
            raise

    async def ping(self) -> None:
        if self._producer is None:
            raise ConnectionError("the Kafka transport is not started")
        await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout=self._request_timeout_s)

    def check_consumer(self, group: str, stale_after: float) -> str:
        state = next((g for g in self._groups if g.group == group), None)
        if state is None:
            return "ok"
        if state.task is None or state.task.done():
            return "failing: not running"
        if not state.joined:
            return "failing: has not joined its group yet"
        reason = state.stall(0.0, stale_after, joining_grace=self._joining_grace_s)
        # Or replaced after `restart_after_s` without working, and not working since, for long enough.
        not_working_for = time.time() - state.stalled_since + self.restart_after_s
        if reason is None and state.stalled is not None and not_working_for > stale_after:
            reason = state.stalled
        return "ok" if reason is None else f"failing: {reason}"

    def _new_consumer(self, group: _Group) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id=f"{self.client_id}-{group.group}",
            group_id=group.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
            # A join request waits up to the session timeout for the group's other members.
            request_timeout_ms=self.session_timeout_ms + self.request_timeout_ms,
        )
        consumer.subscribe(list(group.topics), listener=_JoinListener(group))
        return consumer

    async def _start_consumer(self, group: _Group) -> None:
        group.consumer = self._new_consumer(group)
        group.unknown_topic = False
        group.commits_failing_since = None  # the old consumer's
        group.next_offsets.clear()  # the new consumer starts where the group committed
        group.waiting.clear()
        # Joining waits for the group's assignment, up to a session timeout on tansu.
        async with asyncio.timeout(self._request_timeout_s + 2 * self.session_timeout_ms / 1000):
            await group.consumer.start()

    async def _discard_consumer(self, group: _Group) -> None:
        consumer, group.consumer = group.consumer, None
        if consumer is None:
            return
        for tp in consumer.assignment():  # its lag is no longer this member's to report
            group.forget_partition(tp)
        try:
            async with asyncio.timeout(self._request_timeout_s):
                await consumer.stop()
        except asyncio.CancelledError:
            # aiokafka's stop awaits its fetch task after cancelling it, and lets the task's
            # CancelledError out: only ours (the transport stopping) goes on.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
        except Exception as exc:
            log.debug("bus.consumer_stop_failed", group=group.group, error=repr(exc))

    async def _supervise(self, group: _Group) -> None:
        """Consume; when the group stalls, replace its consumer (topics recreated), backing off
        while that fails or the new one stalls again at once."""
        backoff = self.retry_backoff_s
        while self._running:
            started = time.time()
            try:
                reason = await self._consume(group, started)
            except Exception as exc:  # a bug: logged as one, and the consumer replaced as a stalled one
                log.exception("bus.consumer_failed", group=group.group)
                reason = f"{type(exc).__name__}: {exc}"
            if group.stalled is None:
                group.stalled_since = time.time()
            group.stalled = reason
            DEPENDENCIES.unavailable(group.dependency, error=reason)
            RESTARTS.labels(group.group).inc()
            if time.time() - started > 2 * self.restart_after_s:
                backoff = self.retry_backoff_s  # it had consumed for a while: a new outage
            while self._running:
                await self._discard_consumer(group)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_RESTART_BACKOFF_S)
                try:
                    self.forget_topics(group.topics)
                    async with asyncio.timeout(2 * self._request_timeout_s):
                        await self.ensure_topics(set(group.topics))
                    await self._start_consumer(group)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.debug("bus.consumer_restart_failed", group=group.group, error=repr(exc))
                    continue
                log.info("bus.consumer_restarted", group=group.group, reason=reason)
                break

    async def _consume(self, group: _Group, started: float) -> str:
        """Consume until the group stalls; return why it did."""
        consumer = group.consumer
        assert consumer is not None
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=500, max_records=500)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker unreachable: aiokafka reconnects, we wait
                log.debug("bus.fetch_failed", group=group.group, error=str(exc))
                batches = {}
                await asyncio.sleep(self.retry_backoff_s)
            progressed = False
            batches = {tp: records for tp, records in batches.items() if records}
            if batches:
                try:
                    progressed = await self._apply(group, consumer, batches)
                except Exception as exc:  # a bug: logged, and the loop goes on (the records come again)
                    log.warning("bus.batch_failed", group=group.group, error=repr(exc))
                # The broker answered; the time spent applying the batch is no stall of the bus.
                group.polled(time.time())
            await self._observe(group, consumer)
            reason = group.stall(started, self.restart_after_s, joining_grace=self._joining_grace_s)
            if reason is not None:
                return reason
            working = group.commits_failing_since is None and time.time() - group.polled_at < self.restart_after_s
            if working and (progressed or not group.waiting):  # consuming, or nothing waits for it
                group.stalled = None
                DEPENDENCIES.available(group.dependency)

    async def _observe(self, group: _Group, consumer: AIOKafkaConsumer) -> None:
        """Note the last successful fetch of the group, and its position and lag per partition."""
        assigned = consumer.assignment()
        if not assigned:
            # No partitions to fetch (more members than partitions): the coordinator's heartbeats
            # keep the membership, a lost one revokes the assignment and makes the member join again.
            if group.assigned:
                group.polled(time.time())
            return
        stamps = [consumer.last_poll_timestamp(tp) for tp in assigned]
        if all(stamps):
            group.polled(min(s for s in stamps if s) / 1000)
        now = time.time()
        for tp in assigned:
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue  # not fetched yet
            position = group.next_offsets.get(tp)
            if position is None:  # nothing consumed since the assignment: where the consumer stands
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self._request_timeout_s):
                        position = await consumer.position(tp)
            if position is not None:
                group.observe_position(tp, position, highwater, now)

    async def _apply(self, group: _Group, consumer: AIOKafkaConsumer,
                     batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> bool:
        """Deliver a fetch's records, every partition's in order, in one delivery (the consumer
        applies runs of one tenant and topic in one transaction each, and partitions of a topic
        make one run: group commit across them), then commit each partition's offset; whether they
        were applied. Order holds per partition, and so per key; Kafka orders nothing across
        partitions or topics."""
        messages = [Message(record.topic, record.key or b"", record.value or b"",
                            tuple((k, v) for k, v in (record.headers or ())))
                    for records in batches.values() for record in records]
        try:
            await group.deliver(messages)
        except Exception as exc:  # its own store is down (the database's outage is logged): deliver again later
            log.debug("bus.deliver_failed", group=group.group, records=len(messages), error=str(exc))
            now = time.time()
            for tp, records in batches.items():
                # From the first: the inbox drops those applied before the store went down.
                first = records[0].offset
                consumer.seek(tp, first)
                group.next_offsets[tp] = first
                # Waiting on its own store, not on the broker: readiness names the database, and a
                # new consumer would not help.
                group.waiting[tp] = (first, now)
            await asyncio.sleep(self.retry_backoff_s)
            return False
        offsets = {tp: records[-1].offset + 1 for tp, records in batches.items()}
        group.next_offsets.update(offsets)
        try:
            # aiokafka retries a commit the broker answers with a retriable error forever (an
            # unknown topic after a broker restart, ~6,600 times in 5 minutes): bound it.
            async with asyncio.timeout(self._request_timeout_s):
                await consumer.commit(offsets)
        except Exception as exc:
            # A rebalance or a lost coordinator: the partitions' new owners (maybe us) get these
            # messages again, and the inbox makes the repeat harmless.
            group.commit_failed(exc)
            log.debug("bus.commit_failed", group=group.group, partitions=sorted(tp.partition for tp in offsets),
                      error=repr(exc))
            if isinstance(exc, TimeoutError):
                await self._check_topics(group, consumer)
        else:
            group.commits_failing_since = None
        return True

    async def _check_topics(self, group: _Group, consumer: AIOKafkaConsumer) -> None:
        """A commit that times out may be one the broker keeps refusing because it lost the topic
        (aiokafka retries those without telling): ask the broker which topics it has."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._request_timeout_s):
                if set(group.topics) - await consumer.topics():
                    group.unknown_topic = True
