"""Consuming events: declared handlers, the inbox, retries with backoff, dead letters.

A service declares its handlers once:

    handlers = EventHandlers()

    @handlers.subscriber(UserRegisteredV1)
    async def create_profile(ctx: EventContext, event: UserRegisteredV1) -> None: ...

A handler that can apply many events of its topic at once (fewer statements per event, one
conditional update for many orders of a hot row) is declared with `batch_subscriber` and receives a
list:

    @handlers.batch_subscriber(OrderCreatedV1)
    async def reserve(ctx: BatchContext, events: list[OrderCreatedV1]) -> None: ...

`Consumer.deliver_many` applies what a transport hands it (a Kafka partition's fetched records, a
relay's batch on the in-process bus), in order. Consecutive events of one tenant and one topic (a
run) are applied in one transaction of the consuming service, which records each `(consumer,
event_id)` in the inbox and runs the handler for the events not recorded before, so a redelivered
event has no second effect: group commit, one commit (and one fsync) for the run. A run that
fails for any reason but an outage of its store is applied again one event per transaction, where
a failing handler is retried with bounded exponential backoff and jitter; after the last attempt
the message is recorded as a dead letter (and, on Kafka, published to `<topic>.dlt`) and
consumption goes on. One bad event never takes its run's neighbours with it.
"""

from __future__ import annotations

import asyncio
import random
import traceback
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import structlog
from opentelemetry import trace
from prometheus_client import Counter, Histogram
from pydantic import ValidationError
from sqlalchemy import Insert, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.platform.bus import Message, Transport
from amazonlite.platform.context import bind_correlation_id, bind_tenant
from amazonlite.platform.db import Database, is_database_outage, is_transient_conflict, utcnow
from amazonlite.platform.events import Envelope, dead_letter_topic
from amazonlite.platform.ids import new_id
from amazonlite.platform.messaging import MessagingTables
from amazonlite.platform.outages import DEPENDENCIES, database_dependency
from amazonlite.platform.tenancy import UNSCOPED
from amazonlite.platform.tracing import extract_context, tracer

log = structlog.get_logger("amazonlite.consumer")

P = TypeVar("P")

CONSUMED = Counter("amazonlite_events_consumed_total", "Events applied", ["service", "topic", "outcome"])
RETRIES = Counter("amazonlite_event_retries_total", "Handler attempts that failed and were retried",
                  ["service", "topic"])
DEAD_LETTERS = Counter("amazonlite_dead_letters_total", "Events dead-lettered", ["service", "topic"])
CONFLICTS = Counter("amazonlite_event_conflicts_total",
                    "Units of work that lost a race (a deadlock, a serialization failure, a lock wait "
                    "timeout, a busy SQLite) and were done again", ["service", "topic"])
HANDLE_SECONDS = Histogram("amazonlite_event_handle_seconds",
                           "Time to apply one unit of work (one event, or a run of events in one transaction)",
                           ["service", "topic"])
RUN_SIZE = Histogram("amazonlite_event_run_size", "Events applied together in one transaction",
                     ["service", "topic"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))


class PermanentError(Exception):
    """A handler error that retrying cannot fix: the event goes to the dead letters at once."""


@dataclass(frozen=True)
class EventContext:
    session: AsyncSession
    envelope: Envelope
    # The consuming service's runtime (its settings, state, other services), as an endpoint has it.
    runtime: Any = None

    @property
    def tenant_id(self) -> str:
        return self.envelope.tenant_id


@dataclass(frozen=True)
class BatchContext:
    """A run of events of one tenant and topic, new to this consumer, in the order they arrived."""

    session: AsyncSession
    envelopes: Sequence[Envelope]
    runtime: Any = None

    @property
    def tenant_id(self) -> str:
        return self.envelopes[0].tenant_id


Handler = Callable[[EventContext, Any], Awaitable[None]]
BatchHandler = Callable[[BatchContext, list[Any]], Awaitable[None]]


@dataclass(frozen=True)
class Subscription(Generic[P]):
    topic: str
    payload: type[P]
    handler: Handler | BatchHandler
    batch: bool = False


class EventHandlers:
    """A service's declared subscriptions: topic → (payload model, handler)."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, Subscription[Any]] = {}

    def subscriber(self, payload: type[P]) -> Callable[[Handler], Handler]:
        """A handler of one event at a time (a run's events are handed to it in turn, in one
        transaction)."""
        def register(fn: Handler) -> Handler:
            self._add(Subscription(payload.event_type, payload, fn))  # type: ignore[attr-defined]
            return fn

        return register

    def batch_subscriber(self, payload: type[P]) -> Callable[[BatchHandler], BatchHandler]:
        """A handler of a whole run at once: it gets the run's new events (never an empty list)."""
        def register(fn: BatchHandler) -> BatchHandler:
            self._add(Subscription(payload.event_type, payload, fn, batch=True))  # type: ignore[attr-defined]
            return fn

        return register

    def _add(self, subscription: Subscription[Any]) -> None:
        if subscription.topic in self.subscriptions:
            raise ValueError(f"{subscription.topic} already has a handler")
        self.subscriptions[subscription.topic] = subscription

    @property
    def topics(self) -> list[str]:
        return sorted(self.subscriptions)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial: float = 0.05
    maximum: float = 2.0
    # A unit of work that lost a race (`is_transient_conflict`) is done again at once, after a short
    # jittered pause, without spending an attempt: the event is not at fault. Bounded all the same,
    # after which the conflict counts as an ordinary failure.
    max_conflicts: int = 100
    conflict_initial: float = 0.002
    conflict_maximum: float = 0.25

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff before attempt `attempt + 1`."""
        ceiling = min(self.maximum, self.initial * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)

    def conflict_delay(self, conflicts: int) -> float:
        """Full jitter (0 up to a ceiling doubling per conflict): racers spread apart."""
        ceiling = min(self.conflict_maximum, self.conflict_initial * (2 ** min(conflicts - 1, 16)))
        return random.uniform(0, ceiling)


class Consumer:
    def __init__(self, service: str, db: Database, tables: MessagingTables, handlers: EventHandlers,
                 transport: Transport, retry: RetryPolicy, *, runtime: Any = None, group: str | None = None) -> None:
        self.service = service
        # The consumer group and the inbox's name: the service's, shared by its replicas (each event
        # goes to one of them), unless each replica keeps a read model of its own (search's index).
        self.group = group or service
        self.runtime = runtime  # handed to the handlers in their context
        self.db = db
        self.tables = tables
        self.handlers = handlers
        self.transport = transport
        self.retry = retry
        self._tracer = tracer("amazonlite.consumer")
        self._record_inbox = _inbox_insert(db.dialect, tables)

    def attach(self) -> None:
        if self.handlers.subscriptions:
            self.transport.subscribe(self.group, self.handlers.topics, self.deliver_many)

    async def deliver(self, message: Message) -> None:
        """Apply one message (see `deliver_many`)."""
        await self.deliver_many((message,))

    async def deliver_many(self, messages: Sequence[Message]) -> None:
        """Apply `messages` in order, each run of one tenant and topic in one transaction. Returns
        once every message is applied or dead-lettered; raises only when its store is down, and then
        the transport delivers the messages again (the inbox drops the ones applied already)."""
        for run in self._runs(messages):
            if not isinstance(run, list):  # unreadable: no envelope, no tenant, no handler
                message, error = run
                await self._dead_letter(message, None, "default", error, 1)
                continue
            subscription = self.handlers.subscriptions.get(run[0][1].event_type)
            if subscription is not None and len(run) > 1 and await self._apply_run(subscription, run):
                continue
            for message, envelope in run:
                await self._deliver_one(message, envelope)

    @staticmethod
    def _runs(messages: Sequence[Message]) -> Iterator[list[tuple[Message, Envelope]] | tuple[Message, str]]:
        """Runs of consecutive readable messages of one tenant and topic; an unreadable message on
        its own, with why."""
        run: list[tuple[Message, Envelope]] = []
        for message in messages:
            try:
                envelope = Envelope.from_json(message.value)
            except ValidationError as exc:
                if run:
                    yield run
                    run = []
                yield message, f"unreadable envelope: {exc}"
                continue
            if run and (run[0][1].tenant_id, run[0][1].event_type) != (envelope.tenant_id, envelope.event_type):
                yield run
                run = []
            run.append((message, envelope))
        if run:
            yield run

    async def _apply_run(self, subscription: Subscription[Any], run: list[tuple[Message, Envelope]]) -> bool:
        """The run in one transaction, done again while it loses races; False when it fails
        otherwise (its events are then applied one by one)."""
        first = run[0][1]
        topic = first.event_type
        bind_correlation_id(first.correlation_id or first.event_id.hex)
        bind_tenant(first.tenant_id)
        # The run's span continues the first event's trace (a lone checkout stays one trace from the
        # request to the last consumer) and links every event's, the first included.
        links = [trace.Link(span) for span in (trace.get_current_span(extract_context(m.headers)).get_span_context()
                                               for m, _e in run) if span.is_valid]
        conflicts = 0
        with self._tracer.start_as_current_span(
            f"consume {topic}", context=extract_context(run[0][0].headers), kind=trace.SpanKind.CONSUMER,
            links=links,
            attributes={"messaging.destination.name": topic, "messaging.consumer.group.name": self.group,
                        "messaging.batch.message_count": len(run)},
        ):
            while True:
                try:
                    with HANDLE_SECONDS.labels(self.service, topic).time():
                        outcomes = await self.apply(subscription, [envelope for _m, envelope in run])
                except Exception as exc:
                    if await self._redo_after(exc, topic, conflicts):
                        conflicts += 1
                        continue
                    log.info("consumer.run_applied_one_by_one", service=self.service, topic=topic, events=len(run),
                             error=_describe(exc)[:300])
                    return False
                RUN_SIZE.labels(self.service, topic).observe(len(run))
                for outcome, count in Tally(outcomes).items():
                    CONSUMED.labels(self.service, topic, outcome).inc(count)
                return True

    async def _deliver_one(self, message: Message, envelope: Envelope) -> None:
        bind_correlation_id(envelope.correlation_id or envelope.event_id.hex)
        with self._tracer.start_as_current_span(
            f"consume {message.topic}", context=extract_context(message.headers),
            kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.destination.name": message.topic, "messaging.consumer.group.name": self.group},
        ):
            bind_tenant(envelope.tenant_id)
            await self._apply_with_retries(message, envelope)

    async def _apply_with_retries(self, message: Message, envelope: Envelope) -> None:
        subscription = self.handlers.subscriptions.get(envelope.event_type)
        if subscription is None:
            await self._dead_letter(message, envelope, envelope.tenant_id,
                                    f"{self.service} has no handler for {envelope.event_type}", 1)
            return
        attempt = 0
        conflicts = 0
        while True:
            attempt += 1
            try:
                with HANDLE_SECONDS.labels(self.service, envelope.event_type).time():
                    (outcome,) = await self._apply_one(subscription, envelope)
                CONSUMED.labels(self.service, envelope.event_type, outcome).inc()
                return
            except (PermanentError, ValidationError) as exc:
                await self._dead_letter(message, envelope, envelope.tenant_id, _describe(exc), attempt)
                return
            except Exception as exc:
                if await self._redo_after(exc, envelope.event_type, conflicts):
                    conflicts += 1
                    attempt -= 1
                    continue
                if attempt >= self.retry.max_attempts:
                    await self._dead_letter(message, envelope, envelope.tenant_id, _describe(exc), attempt)
                    return
                RETRIES.labels(self.service, envelope.event_type).inc()
                log.warning("consumer.retrying", service=self.service, topic=envelope.event_type,
                            event_id=str(envelope.event_id), attempt=attempt, error=str(exc))
                await asyncio.sleep(self.retry.delay(attempt))

    async def _redo_after(self, exc: Exception, topic: str, conflicts: int) -> bool:
        """After a unit of work failed with `exc`: an outage of the store propagates (not the event's
        fault: nothing is dead-lettered for it; the transport delivers again later, Kafka from the
        uncommitted offset, in-process at the relay's next try, and the outage is logged once, not per
        event). A lost race (its transaction rolled back whole, inbox rows included) within the cap
        is counted and waited for: True, do it again. Anything else: False."""
        if is_database_outage(exc):
            DEPENDENCIES.unavailable(database_dependency(self.service), error=repr(exc)[:300])
            raise exc
        if not (is_transient_conflict(exc) and conflicts < self.retry.max_conflicts):
            return False
        CONFLICTS.labels(self.service, topic).inc()
        log.debug("consumer.conflict_retrying", service=self.service, topic=topic, conflicts=conflicts + 1,
                  error=str(exc)[:300])
        await asyncio.sleep(self.retry.conflict_delay(conflicts + 1))
        return True

    async def _apply_one(self, subscription: Subscription[Any], envelope: Envelope) -> list[str]:
        try:
            return await self.apply(subscription, [envelope])
        except IntegrityError:
            # A concurrent delivery of the same event won the inbox insert: already done.
            inbox = self.tables.inbox
            async with self.db.session(tenant_id=envelope.tenant_id) as session:
                seen = await session.scalar(select(inbox.c.event_id).where(
                    inbox.c.consumer == self.group, inbox.c.event_id == envelope.event_id))
            if seen is not None:
                return ["duplicate"]
            raise

    async def apply(self, subscription: Subscription[Any], envelopes: Sequence[Envelope]) -> list[str]:
        """Apply events of one tenant and topic in one transaction with their inbox records;
        'applied' or 'duplicate' for each. The handler runs only for events the inbox had not
        recorded (nor seen earlier in `envelopes`)."""
        now = utcnow()
        firsts: dict[Any, Envelope] = {}
        for envelope in envelopes:
            firsts.setdefault(envelope.event_id, envelope)
        async with self.db.session(tenant_id=envelopes[0].tenant_id) as session:
            recorded = await self._record(session, list(firsts.values()), now)
            new = [envelope for event_id, envelope in firsts.items() if event_id in recorded]
            if new:
                payloads = [subscription.payload.model_validate(envelope.payload) for envelope in new]
                if subscription.batch:
                    await cast(BatchHandler, subscription.handler)(BatchContext(session, new, self.runtime), payloads)
                else:
                    handler = cast(Handler, subscription.handler)
                    for envelope, payload in zip(new, payloads, strict=True):
                        bind_correlation_id(envelope.correlation_id or envelope.event_id.hex)
                        await handler(EventContext(session, envelope, self.runtime), payload)
        applied = {envelope.event_id for envelope in new}
        outcomes = []
        for envelope in envelopes:
            outcomes.append("applied" if envelope.event_id in applied else "duplicate")
            applied.discard(envelope.event_id)  # a second copy in the same run is a duplicate
        return outcomes

    async def _record(self, session: AsyncSession, envelopes: Sequence[Envelope], now: Any) -> set[Any]:
        """Record the events in the inbox; the ids of those it had not recorded before. One
        statement on PostgreSQL and SQLite (it waits for a concurrent delivery's transaction
        holding the same key, then skips that row if it commits)."""
        inbox = self.tables.inbox
        rows = [{"consumer": self.group, "event_id": envelope.event_id, "tenant_id": envelope.tenant_id,
                 "topic": envelope.event_type, "processed_at": now} for envelope in envelopes]
        if self._record_inbox is not None:
            return set((await session.scalars(self._record_inbox, rows)).all())
        ids = [row["event_id"] for row in rows]
        seen = set((await session.scalars(select(inbox.c.event_id).where(
            inbox.c.consumer == self.group, inbox.c.event_id.in_(ids)))).all())
        fresh = [row for row in rows if row["event_id"] not in seen]
        if fresh:
            await session.execute(insert(inbox), fresh)
        return {row["event_id"] for row in fresh}

    async def _dead_letter(self, message: Message, envelope: Envelope | None, tenant: str, error: str,
                           attempts: int) -> None:
        async with self.db.session(tenant_id=UNSCOPED) as session:
            await session.execute(insert(self.tables.dead_letters).values(
                id=new_id(), tenant_id=tenant, consumer=self.group,
                event_id=envelope.event_id if envelope else None, topic=message.topic,
                message=message.value.decode("utf-8", "replace"), error=error[:8000], attempts=attempts,
                created_at=utcnow()))
        # Counted once recorded: a dead letter that could not be written is delivered again instead.
        DEAD_LETTERS.labels(self.service, message.topic).inc()
        log.error("consumer.dead_lettered", service=self.service, topic=message.topic,
                  event_id=str(envelope.event_id) if envelope else None, attempts=attempts, error=error)
        try:
            await self.transport.publish([Message(
                dead_letter_topic(message.topic), message.key, message.value,
                (*message.headers, ("x-dead-letter-consumer", self.group.encode()),
                 ("x-dead-letter-error", error[:500].encode())))])
        except Exception as exc:
            # The dead-letter table is the record; the topic mirrors it for external tooling. Failing
            # here must not redeliver the message and dead-letter it twice.
            log.warning("consumer.dead_letter_topic_failed", service=self.service, topic=message.topic,
                        error=str(exc))

    async def dead_letters(self, *, include_replayed: bool = False, limit: int = 100) -> list[Any]:
        """Dead letters of this consumer, oldest first."""
        table = self.tables.dead_letters
        query = select(table).where(table.c.consumer == self.group).order_by(table.c.created_at).limit(limit)
        if not include_replayed:
            query = query.where(table.c.replayed_at.is_(None))
        async with self.db.session(tenant_id=UNSCOPED) as session:
            return list((await session.execute(query)).all())

    async def replay(self, dead_letter_id: Any) -> str:
        """Apply a dead letter again through the inbox; marks it replayed when it applies."""
        table = self.tables.dead_letters
        async with self.db.session(tenant_id=UNSCOPED) as session:
            row = (await session.execute(select(table).where(table.c.id == dead_letter_id))).one_or_none()
        if row is None:
            raise LookupError(f"no dead letter {dead_letter_id}")
        envelope = Envelope.from_json(row.message)
        subscription = self.handlers.subscriptions.get(envelope.event_type)
        if subscription is None:
            raise LookupError(f"{self.service} has no handler for {envelope.event_type}")
        (outcome,) = await self._apply_one(subscription, envelope)
        async with self.db.session(tenant_id=UNSCOPED) as session:
            await session.execute(update(table).where(table.c.id == dead_letter_id).values(replayed_at=utcnow()))
        CONSUMED.labels(self.service, envelope.event_type, f"replayed-{outcome}").inc()
        return outcome


def _inbox_insert(dialect: str, tables: MessagingTables) -> Insert | None:
    """The inbox insert that skips an event already recorded (and returns the ids it inserted), where the database has
    one that skips only that: PostgreSQL's and SQLite's ON CONFLICT DO NOTHING on the inbox's key.
    MySQL's INSERT IGNORE would also swallow other errors (a value too long), so there the consumer
    reads the inbox first, then inserts."""
    if dialect == "postgresql":
        statement: Insert = postgresql.insert(tables.inbox).on_conflict_do_nothing(
            index_elements=["consumer", "event_id"])
    elif dialect == "sqlite":
        statement = sqlite.insert(tables.inbox).on_conflict_do_nothing(index_elements=["consumer", "event_id"])
    else:
        return None
    return statement.returning(tables.inbox.c.event_id)


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()
