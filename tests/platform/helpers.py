"""Helpers for the messaging tests: bounded waits, raw Kafka reads, counters, row counts."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from amazonlite.platform.service import ServiceRuntime

DEADLINE = 20.0


async def eventually(probe: Callable[[], Any], *, what: str, timeout: float = DEADLINE,
                     interval: float = 0.05) -> Any:
    """Call `probe()` (awaiting it if it is a coroutine) until it returns something truthy; fail after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        last = probe()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout}s still waiting for {what} (last: {last!r})")
        await asyncio.sleep(interval)


async def read_topic(bootstrap: str, topic: str, *, timeout: float = DEADLINE) -> list[ConsumerRecord[bytes, bytes]]:
    """Every message on `topic` now (up to each partition's end offset), read with a raw consumer
    outside any consumer group; in partition, then offset order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=10)
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while not consumer.partitions_for_topic(topic):
            if time.monotonic() > deadline:
                raise AssertionError(f"topic {topic} does not exist after {timeout}s")
            await consumer.topics()  # refreshes the metadata
            await asyncio.sleep(0.05)
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        while len(records) < sum(ends.values()):
            if time.monotonic() > deadline:
                raise AssertionError(f"read {len(records)} of {sum(ends.values())} messages on {topic}")
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


def counter(name: str, **labels: str) -> float:
    """The current value of a prometheus counter sample (0 when it was never incremented)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def count_rows(engine: AsyncEngine, table: str, where: str = "", **params: Any) -> int:
    async with engine.connect() as conn:
        value = await conn.scalar(text(f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")),
                                  params)
    return int(value or 0)


@asynccontextmanager
async def started(transports: Sequence[Any], runtimes: Sequence[ServiceRuntime]) -> AsyncIterator[None]:
    """Start the transports (together: each Kafka consumer group takes seconds to join), then the
    runtimes; stop them all in reverse."""
    await asyncio.gather(*(t.start() for t in transports))
    try:
        for runtime in runtimes:
            await runtime.start()
        yield
    finally:
        for runtime in reversed(runtimes):
            await runtime.stop()
        for transport in transports:
            await transport.stop()
