"""Group commit: a delivery's consecutive events of one tenant and topic (a run) are applied in one
transaction, on each database; a run that fails is applied again one event at a time, so one bad
event never takes its neighbours with it; and the transports hand over batches."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import func, select

from amazonlite.platform.bus import Message
from amazonlite.platform.bus.memory import InProcessTransport
from amazonlite.platform.config import Environment, PlatformSettings
from amazonlite.platform.consumer import BatchContext, EventContext, PermanentError, RetryPolicy
from amazonlite.platform.db import TransientConflict
from amazonlite.platform.events import Envelope
from amazonlite.platform.service import ServiceRuntime
from tests.platform.helpers import counter
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

# What the handlers saw: (how many events one call got, the amounts), reset per test.
CALLS: list[tuple[int, list[int]]] = []
POISON = 13  # an amount the handlers refuse


async def copy_unless_poison(ctx: EventContext, event: EntryAddedV1) -> None:
    CALLS.append((1, [event.amount]))
    await copy_entry(ctx, event)
    if event.amount == POISON:
        raise PermanentError("thirteen is refused")


async def copy_all(ctx: BatchContext, events: list[EntryAddedV1]) -> None:
    CALLS.append((len(events), [event.amount for event in events]))
    for envelope, event in zip(ctx.envelopes, events, strict=True):
        ctx.session.add(Entry(id=event.entry_id, amount=event.amount, source_event_id=str(envelope.event_id)))
    await ctx.session.flush()
    if POISON in (event.amount for event in events):
        raise PermanentError("thirteen is refused")


def message(payload: type[EntryAddedV1], tenant: str, amount: int, *, event_id: uuid.UUID | None = None) -> Message:
    envelope = Envelope(event_id=event_id or uuid.uuid4(), event_type=payload.event_type,
                        occurred_at=dt.datetime.now(dt.UTC), producer="ledger", schema_version=1,
                        trace_id="0" * 32, correlation_id="runs", tenant_id=tenant,
                        payload=payload(entry_id=uuid.uuid4(), amount=amount).model_dump(mode="json"))
    return Message(payload.event_type, b"k", envelope.to_json())


async def rows(runtime: ServiceRuntime, table: Any) -> int:
    async with runtime.db.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


def run_sizes(service: str, topic: str) -> tuple[float, float]:
    """How many runs of more than one event, and how many events in them."""
    return (counter("amazonlite_event_run_size_count", service=service, topic=topic),
            counter("amazonlite_event_run_size_sum", service=service, topic=topic))


@pytest.fixture
async def runtimes(any_database_url: str, tmp_path: Path, unique: str) -> AsyncIterator[
        dict[str, tuple[ServiceRuntime, type[EntryAddedV1]]]]:
    """Two consumers on one database, one per kind of handler, each of its own topic."""
    CALLS.clear()
    platform = PlatformSettings(environment=Environment.TEST, data_dir=tmp_path, log_json=False)
    built: dict[str, tuple[ServiceRuntime, type[EntryAddedV1]]] = {}
    for kind, handler in (("each", {"on_entry": copy_unless_poison}), ("batch", {"on_entries": copy_all})):
        payload = entry_added(f"{kind}-{unique}")
        runtime = await build_runtime(ledger_module(f"runs-{kind}-{unique}", payload=payload, **handler), platform,
                                      any_database_url, InProcessTransport())
        runtime.consumer.retry = RetryPolicy(max_attempts=2, initial=0.001, maximum=0.002, conflict_initial=0.001)
        built[kind] = (runtime, payload)
    try:
        yield built
    finally:
        for runtime, _payload in built.values():
            await runtime.db.dispose()


@pytest.mark.parametrize("kind", ["each", "batch"])
async def test_a_run_is_applied_in_one_transaction_with_its_inbox_records(
        runtimes: dict[str, tuple[ServiceRuntime, type[EntryAddedV1]]], tenant: str, kind: str) -> None:
    runtime, payload = runtimes[kind]
    runs_before, events_before = run_sizes(runtime.name, payload.event_type)
    await runtime.consumer.deliver_many([message(payload, tenant, amount) for amount in (1, 2, 3, 4, 5)])
    assert await entry_amounts(runtime, tenant) == [1, 2, 3, 4, 5]
    assert await rows(runtime, MESSAGING.inbox) == 5
    assert run_sizes(runtime.name, payload.event_type) == (runs_before + 1, events_before + 5)
    # A handler of runs got them in one call; a handler of events, one call each, in order.
    assert ([(5, [1, 2, 3, 4, 5])] if kind == "batch" else [(1, [n]) for n in (1, 2, 3, 4, 5)]) == CALLS


async def test_a_runs_span_continues_the_first_events_trace_and_links_every_event(
        runtimes: dict[str, tuple[ServiceRuntime, type[EntryAddedV1]]], tenant: str,
        spans: InMemorySpanExporter) -> None:
    """A lone event (a quiet shop's checkout) stays one trace from its request to its consumer, batched
    or not; a run's other events are linked."""
    runtime, payload = runtimes["batch"]
    traces = [uuid.uuid4().hex for _ in range(3)]
    spans.clear()
    await runtime.consumer.deliver_many([
        dataclasses.replace(message(payload, tenant, amount),
                            headers=(("traceparent", f"00-{trace_id}-{'1' * 16}-01".encode()),))
        for amount, trace_id in zip((1, 2, 3), traces, strict=True)])
    [run] = [span for span in spans.get_finished_spans() if span.name == f"consume {payload.event_type}"]
    assert format(run.context.trace_id, "032x") == traces[0]
    assert run.parent is not None
    assert format(run.parent.span_id, "016x") == "1" * 16
    assert [format(link.context.trace_id, "032x") for link in run.links] == traces


@pytest.mark.parametrize("kind", ["each", "batch"])
async def test_events_applied_before_or_twice_in_a_run_are_handled_once(
        runtimes: dict[str, tuple[ServiceRuntime, type[EntryAddedV1]]], tenant: str, kind: str) -> None:
    runtime, payload = runtimes[kind]
    seen = message(payload, tenant, 1)
    await runtime.consumer.deliver(seen)
    again = message(payload, tenant, 2)
    duplicates = counter("amazonlite_events_consumed_total", service=runtime.name, topic=payload.event_type,
                         outcome="duplicate")
    CALLS.clear()
    await runtime.consumer.deliver_many([seen, again, again, message(payload, tenant, 3)])
    assert await entry_amounts(runtime, tenant) == [1, 2, 3]
    assert await rows(runtime, MESSAGING.inbox) == 3
    assert sorted(amount for _count, amounts in CALLS for amount in amounts) == [2, 3]
    assert counter("amazonlite_events_consumed_total", service=runtime.name, topic=payload.event_type,
                   outcome="duplicate") == duplicates + 2


@pytest.mark.parametrize("kind", ["each", "batch"])
async def test_a_bad_event_is_dead_lettered_alone_and_its_neighbours_are_applied(
        runtimes: dict[str, tuple[ServiceRuntime, type[EntryAddedV1]]], tenant: str, kind: str) -> None:
    runtime, payload = runtimes[kind]
    unreadable = Message(payload.event_type, b"k", b"{not an envelope")
    await runtime.consumer.deliver_many([message(payload, tenant, 1), message(payload, tenant, POISON),
                                         message(payload, tenant, 2), unreadable, message(payload, tenant, 3)])
    # The run of three failed whole (nothing of it stays), then went one by one: the poison event
    # alone is a dead letter, with the unreadable message; every other event is applied once.
    assert await entry_amounts(runtime, tenant) == [1, 2, 3]
    assert await rows(runtime, MESSAGING.inbox) == 3
    assert await rows(runtime, MESSAGING.dead_letters) == 2


async def test_runs_follow_tenant_and_topic_and_keep_the_order(
        runtimes: dict[str, tuple[ServiceRuntime, type[EntryAddedV1]]], tenant: str, unique: str) -> None:
    runtime, payload = runtimes["batch"]
    other = f"{tenant}-b"
    runs_before, events_before = run_sizes(runtime.name, payload.event_type)
    await runtime.consumer.deliver_many([
        message(payload, tenant, 1), message(payload, tenant, 2), message(payload, other, 10),
        message(payload, other, 11), message(payload, other, 12), message(payload, tenant, 3)])
    assert CALLS == [(2, [1, 2]), (3, [10, 11, 12]), (1, [3])]
    # Each run in its tenant's scope: each tenant sees its own entries only.
    assert await entry_amounts(runtime, tenant) == [1, 2, 3]
    assert await entry_amounts(runtime, other) == [10, 11, 12]
    assert run_sizes(runtime.name, payload.event_type) == (runs_before + 2, events_before + 5)


async def test_a_run_that_loses_a_race_is_done_again_whole(tmp_path: Path, tenant: str, unique: str) -> None:
    lost = 0
    calls: list[int] = []

    async def lose_twice(ctx: BatchContext, events: list[EntryAddedV1]) -> None:
        nonlocal lost
        calls.append(len(events))
        await copy_all(ctx, events)  # written, then rolled back with the inbox rows
        if lost < 2:
            lost += 1
            raise TransientConflict("the stock changed since it was read")

    payload = entry_added(f"race-{unique}")
    platform = PlatformSettings(environment=Environment.TEST, data_dir=tmp_path, log_json=False)
    runtime = await build_runtime(ledger_module(f"race-{unique}", payload=payload, on_entries=lose_twice), platform,
                                  f"sqlite+aiosqlite:///{tmp_path / 'race.sqlite3'}", InProcessTransport())
    runtime.consumer.retry = RetryPolicy(max_attempts=2, initial=0.001, maximum=0.002, conflict_initial=0.001)
    try:
        await runtime.consumer.deliver_many([message(payload, tenant, amount) for amount in (1, 2, 3)])
        assert calls == [3, 3, 3]
        assert await entry_amounts(runtime, tenant) == [1, 2, 3]
        assert await rows(runtime, MESSAGING.inbox) == 3
        assert counter("amazonlite_event_conflicts_total", service=runtime.name, topic=payload.event_type) == 2
    finally:
        await runtime.db.dispose()


async def test_the_in_process_bus_hands_each_group_its_messages_in_one_delivery() -> None:
    transport = InProcessTransport()
    got: dict[str, list[list[str]]] = {"a": [], "b": []}

    def recorder(group: str) -> Any:
        async def deliver(messages: Sequence[Message]) -> None:
            got[group].append([m.value.decode() for m in messages])
        return deliver

    transport.subscribe("a", ["t1", "t2"], recorder("a"))
    transport.subscribe("b", ["t2"], recorder("b"))
    await transport.start()
    await transport.publish([Message("t1", b"k", b"1"), Message("t2", b"k", b"2"), Message("t3", b"k", b"3"),
                             Message("t1", b"k", b"4")])
    assert got == {"a": [["1", "2", "4"]], "b": [["2"]]}
