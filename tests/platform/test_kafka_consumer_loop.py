"""The Kafka consumer loop outlives the broker's transient errors. A rebalance that fails an offset
commit cannot be provoked on demand with a real broker, so a stand-in consumer raises aiokafka's
own CommitFailedError; the loop under test is the real one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest
from aiokafka.errors import CommitFailedError, KafkaError, NotCoordinatorForGroupError, UnknownTopicOrPartitionError
from aiokafka.structs import ConsumerRecord, TopicPartition

from amazonlite.platform.bus import Message
from amazonlite.platform.bus.kafka import KafkaTransport, _Group
from tests.platform.helpers import counter

PARTITION = TopicPartition("orders.v1", 0)


class RebalancingConsumer:
    """Hands out one record per fetch; the first offset commit fails as in a rebalance."""

    def __init__(self) -> None:
        self.fetches = 0
        self.committed: list[int] = []

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[ConsumerRecord]]:
        self.fetches += 1
        await asyncio.sleep(0.01)
        record = ConsumerRecord("orders.v1", 0, self.fetches, 0, 0, b"k", b"v", None, 1, 1, [])
        return {PARTITION: [record]}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if not self.committed and self.fetches == 1:
            self.committed.append(-1)
            raise CommitFailedError("the group rebalanced")
        self.committed.append(offsets[PARTITION])

    def seek(self, partition: TopicPartition, offset: int) -> None:
        pass

    def assignment(self) -> set[TopicPartition]:
        return {PARTITION}

    def last_poll_timestamp(self, partition: TopicPartition) -> int:
        return int(time.time() * 1000)

    def highwater(self, partition: TopicPartition) -> int:
        return self.fetches + 1


class RefusingConsumer(RebalancingConsumer):
    """Every offset commit fails with `error`."""

    def __init__(self, error: KafkaError) -> None:
        super().__init__()
        self.error = error

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        raise self.error


class TestConsumerLoop:
    async def test_a_failed_offset_commit_does_not_stop_consumption(self) -> None:
        delivered: list[Message] = []

        async def deliver(messages: Sequence[Message]) -> None:
            delivered.extend(messages)

        consumer = RebalancingConsumer()
        transport = KafkaTransport("unused:9092", client_id="test")
        transport._running = True
        group = _Group("orders", ("orders.v1",), deliver, consumer=consumer)  # type: ignore[arg-type]
        group.task = asyncio.create_task(transport._consume(group, time.time()))
        await asyncio.sleep(0.3)
        transport._running = False
        alive = not group.task.done()
        group.task.cancel()
        assert alive, "the consumer loop ended after one failed commit"
        assert len(delivered) >= 5
        assert consumer.committed[0] == -1 and consumer.committed[-1] >= 5
        assert counter("amazonlite_consumer_commit_failures_total", group="orders") == 1

    @pytest.mark.parametrize(("error", "reason"), [
        (UnknownTopicOrPartitionError(), "the broker does not know a topic of the group"),
        (NotCoordinatorForGroupError(), "offset commits failing for"),
    ])
    async def test_a_group_whose_commits_keep_failing_stops_consuming_to_be_replaced(
            self, error: KafkaError, reason: str) -> None:
        async def deliver(messages: Sequence[Message]) -> None:
            pass

        transport = KafkaTransport("unused:9092", client_id="test", restart_after_s=0.3)
        group = _Group("refused", ("orders.v1",), deliver, consumer=RefusingConsumer(error))  # type: ignore[arg-type]
        stalled = await asyncio.wait_for(transport._consume(group, time.time()), timeout=10)
        assert stalled.startswith(reason)


class TwoPartitionConsumer(RebalancingConsumer):
    """Each fetch brings two records of each of two partitions of one topic."""

    SECOND = TopicPartition("orders.v1", 1)

    def __init__(self) -> None:
        super().__init__()
        self.offsets = {PARTITION: 0, self.SECOND: 100}
        self.seeks: list[tuple[int, int]] = []
        self.commits: list[dict[int, int]] = []

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[ConsumerRecord]]:
        self.fetches += 1
        await asyncio.sleep(0.01)
        return {tp: [ConsumerRecord("orders.v1", tp.partition, offset, 0, 0, b"k", f"{tp.partition}:{offset}".encode(),
                                    None, 1, 1, []) for offset in (start, start + 1)]
                for tp, start in self.offsets.items()}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append({tp.partition: offset for tp, offset in offsets.items()})
        self.offsets.update(offsets)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition.partition, offset))
        self.offsets[partition] = offset

    def assignment(self) -> set[TopicPartition]:
        return set(self.offsets)


class TestAFetchIsOneDelivery:
    async def test_every_partition_goes_in_one_delivery_and_comes_again_from_its_first_record_after_a_failure(
            self) -> None:
        deliveries: list[list[str]] = []

        async def deliver(messages: Sequence[Message]) -> None:
            deliveries.append([m.value.decode() for m in messages])
            if len(deliveries) == 1:
                raise ConnectionRefusedError("the store is down")

        consumer = TwoPartitionConsumer()
        transport = KafkaTransport("unused:9092", client_id="test", retry_backoff_s=0.01)
        transport._running = True
        group = _Group("orders", ("orders.v1",), deliver, consumer=consumer)  # type: ignore[arg-type]
        group.task = asyncio.create_task(transport._consume(group, time.time()))
        try:
            for _ in range(200):
                if len(deliveries) >= 3:
                    break
                await asyncio.sleep(0.01)
        finally:
            transport._running = False
            group.task.cancel()
        # One delivery per fetch, each partition's records in order.
        assert deliveries[0] == ["0:0", "0:1", "1:100", "1:101"]
        # The failed one: both partitions sought back to their first record, nothing committed for it.
        assert consumer.seeks[:2] == [(0, 0), (1, 100)]
        assert deliveries[1] == deliveries[0]
        # Applied: one commit names both partitions, past their last record.
        assert consumer.commits[0] == {0: 2, 1: 102}
        assert deliveries[2] == ["0:2", "0:3", "1:102", "1:103"]
