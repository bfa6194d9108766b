"""The Kafka consumer loop outlives the broker's transient errors. A rebalance that fails an offset
commit cannot be provoked on demand with a real broker, so a stand-in consumer raises aiokafka's
own CommitFailedError; the loop under test is the real one."""

from __future__ import annotations

import asyncio
import time

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

        async def deliver(message: Message) -> None:
            delivered.append(message)

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
        async def deliver(message: Message) -> None:
            pass

        transport = KafkaTransport("unused:9092", client_id="test", restart_after_s=0.3)
        group = _Group("refused", ("orders.v1",), deliver, consumer=RefusingConsumer(error))  # type: ignore[arg-type]
        stalled = await asyncio.wait_for(transport._consume(group, time.time()), timeout=10)
        assert stalled.startswith(reason)
