"""Consuming events: declared handlers, the inbox, retries with backoff, dead letters.

A service declares its handlers once:

    handlers = EventHandlers()

    @handlers.subscriber(UserRegisteredV1)
    async def create_profile(ctx: EventContext, event: UserRegisteredV1) -> None: ...

`Consumer.deliver` applies one message: inside one transaction of the consuming service it
records `(consumer, event_id)` in the inbox and runs the handler, so a redelivered event has no
second effect. A failing handler is retried with bounded exponential backoff and jitter; after the
last attempt the message is recorded as a dead letter (and, on Kafka, published to
`<topic>.dlt`) and consumption goes on.
"""

from __future__ import annotations

import asyncio
import random
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import structlog
from opentelemetry import trace
from prometheus_client import Counter, Histogram
from pydantic import ValidationError
from sqlalchemy import CursorResult, Insert, insert, select, update
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
HANDLE_SECONDS = Histogram("amazonlite_event_handle_seconds", "Time to apply one event",
                           ["service", "topic"])


class PermanentError(Exception):
    """A handler error that retrying cannot fix: the event goes to the dead letters at once."""


@dataclass(frozen=True)
class EventContext:
    session: AsyncSession
    envelope: Envelope

    @property
    def tenant_id(self) -> str:
        return self.envelope.tenant_id


Handler = Callable[[EventContext, Any], Awaitable[None]]


@dataclass(frozen=True)
class Subscription(Generic[P]):
    topic: str
    payload: type[P]
    handler: Handler


class EventHandlers:
    """A service's declared subscriptions: topic → (payload model, handler)."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, Subscription[Any]] = {}

    def subscriber(self, payload: type[P]) -> Callable[[Handler], Handler]:
        topic: str = payload.event_type  # type: ignore[attr-defined]

        def register(fn: Handler) -> Handler:
            if topic in self.subscriptions:
                raise ValueError(f"{topic} already has a handler")
            self.subscriptions[topic] = Subscription(topic, payload, fn)
            return fn

        return register

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


class Duplicate(Exception):
    pass


class Consumer:
    def __init__(self, service: str, db: Database, tables: MessagingTables, handlers: EventHandlers,
                 transport: Transport, retry: RetryPolicy) -> None:
        self.service = service
        self.db = db
        self.tables = tables
        self.handlers = handlers
        self.transport = transport
        self.retry = retry
        self._tracer = tracer("amazonlite.consumer")
        self._record_inbox = _inbox_insert(db.dialect, tables)

    def attach(self) -> None:
        if self.handlers.subscriptions:
            self.transport.subscribe(self.service, self.handlers.topics, self.deliver)

    async def deliver(self, message: Message) -> None:
        try:
            envelope = Envelope.from_json(message.value)
        except ValidationError as exc:
            await self._dead_letter(message, None, "default", f"unreadable envelope: {exc}", 1)
            return
        bind_correlation_id(envelope.correlation_id or envelope.event_id.hex)
        with self._tracer.start_as_current_span(
            f"consume {message.topic}", context=extract_context(message.headers),
            kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.destination.name": message.topic, "messaging.consumer.group.name": self.service},
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
                    outcome = await self.apply(subscription, envelope)
                CONSUMED.labels(self.service, envelope.event_type, outcome).inc()
                return
            except (PermanentError, ValidationError) as exc:
                await self._dead_letter(message, envelope, envelope.tenant_id, _describe(exc), attempt)
                return
            except Exception as exc:
                if is_database_outage(exc):
                    # Not the event's fault: nothing is dead-lettered for an outage. The transport
                    # delivers it again later (Kafka: from the uncommitted offset; in-process: the
                    # relay's next try), and the outage is logged once, not per event.
                    DEPENDENCIES.unavailable(database_dependency(self.service), error=repr(exc)[:300])
                    raise
                if is_transient_conflict(exc) and conflicts < self.retry.max_conflicts:
                    # Lost a race (its transaction rolled back whole, inbox row included): do it again.
                    conflicts += 1
                    attempt -= 1
                    CONFLICTS.labels(self.service, envelope.event_type).inc()
                    log.debug("consumer.conflict_retrying", service=self.service, topic=envelope.event_type,
                              event_id=str(envelope.event_id), conflicts=conflicts, error=str(exc)[:300])
                    await asyncio.sleep(self.retry.conflict_delay(conflicts))
                    continue
                if attempt >= self.retry.max_attempts:
                    await self._dead_letter(message, envelope, envelope.tenant_id, _describe(exc), attempt)
                    return
                RETRIES.labels(self.service, envelope.event_type).inc()
                log.warning("consumer.retrying", service=self.service, topic=envelope.event_type,
                            event_id=str(envelope.event_id), attempt=attempt, error=str(exc))
                await asyncio.sleep(self.retry.delay(attempt))

    async def apply(self, subscription: Subscription[Any], envelope: Envelope) -> str:
        """Apply one event in one transaction with its inbox record; 'applied' or 'duplicate'."""
        inbox = self.tables.inbox
        row = {"consumer": self.service, "event_id": envelope.event_id, "tenant_id": envelope.tenant_id,
               "topic": envelope.event_type, "processed_at": utcnow()}
        try:
            async with self.db.session(tenant_id=envelope.tenant_id) as session:
                if self._record_inbox is not None:
                    # One statement records the event or finds it recorded (it waits for a concurrent
                    # delivery's transaction holding the same key, then skips if that one commits).
                    recorded = cast(CursorResult[Any], await session.execute(self._record_inbox, row))
                    if recorded.rowcount == 0:
                        raise Duplicate
                else:
                    seen = await session.scalar(select(inbox.c.event_id).where(
                        inbox.c.consumer == self.service, inbox.c.event_id == envelope.event_id))
                    if seen is not None:
                        raise Duplicate
                    await session.execute(insert(inbox), row)
                payload = subscription.payload.model_validate(envelope.payload)
                await subscription.handler(EventContext(session, envelope), payload)
        except Duplicate:
            return "duplicate"
        except IntegrityError:
            # A concurrent delivery of the same event won the inbox insert: already done.
            async with self.db.session(tenant_id=envelope.tenant_id) as session:
                seen = await session.scalar(select(inbox.c.event_id).where(
                    inbox.c.consumer == self.service, inbox.c.event_id == envelope.event_id))
            if seen is not None:
                return "duplicate"
            raise
        return "applied"

    async def _dead_letter(self, message: Message, envelope: Envelope | None, tenant: str, error: str,
                           attempts: int) -> None:
        async with self.db.session(tenant_id=UNSCOPED) as session:
            await session.execute(insert(self.tables.dead_letters).values(
                id=new_id(), tenant_id=tenant, consumer=self.service,
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
                (*message.headers, ("x-dead-letter-consumer", self.service.encode()),
                 ("x-dead-letter-error", error[:500].encode())))])
        except Exception as exc:
            # The dead-letter table is the record; the topic mirrors it for external tooling. Failing
            # here must not redeliver the message and dead-letter it twice.
            log.warning("consumer.dead_letter_topic_failed", service=self.service, topic=message.topic,
                        error=str(exc))

    async def dead_letters(self, *, include_replayed: bool = False, limit: int = 100) -> list[Any]:
        """Dead letters of this consumer, oldest first."""
        table = self.tables.dead_letters
        query = select(table).where(table.c.consumer == self.service).order_by(table.c.created_at).limit(limit)
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
        outcome = await self.apply(subscription, envelope)
        async with self.db.session(tenant_id=UNSCOPED) as session:
            await session.execute(update(table).where(table.c.id == dead_letter_id).values(replayed_at=utcnow()))
        CONSUMED.labels(self.service, envelope.event_type, f"replayed-{outcome}").inc()
        return outcome


def _inbox_insert(dialect: str, tables: MessagingTables) -> Insert | None:
    """The inbox insert that skips an event already recorded (row count 0), where the database has
    one that skips only that: PostgreSQL's and SQLite's ON CONFLICT DO NOTHING on the inbox's key.
    MySQL's INSERT IGNORE would also swallow other errors (a value too long), so there the consumer
    reads the inbox first, then inserts."""
    if dialect == "postgresql":
        return postgresql.insert(tables.inbox).on_conflict_do_nothing(index_elements=["consumer", "event_id"])
    if dialect == "sqlite":
        return sqlite.insert(tables.inbox).on_conflict_do_nothing(index_elements=["consumer", "event_id"])
    return None


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()
