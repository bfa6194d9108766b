"""The transactional outbox and its relay.

`record_event` adds the event to the caller's session, so it commits with the state change that
caused it or not at all. The relay publishes unpublished rows in id order (and so in order per
aggregate; the Kafka key is the aggregate id) and marks them sent. Several relay replicas are
safe: each locks the rows it publishes (`FOR UPDATE`), a second waits, then finds them sent.

A batch the bus has not accepted within `publish_timeout` (on the in-process bus, which applies
the events before it returns: an event not applied within it, see `_publish_inline`) is
given up (its row locks released)
and tried again with bounded backoff; a batch that reached the bus before the deadline may be
published twice, which the consumers' inboxes make harmless. The backlog and the age of the oldest
unpublished event are kept current while the bus refuses, for `/metrics` and for readiness.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Sequence

from prometheus_client import Counter, Gauge
from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.platform.bus import Message, Transport
from amazonlite.platform.context import current_correlation_id
from amazonlite.platform.db import Database, utcnow
from amazonlite.platform.events import Envelope, EventPayload
from amazonlite.platform.ids import new_id
from amazonlite.platform.messaging import MessagingTables
from amazonlite.platform.outages import DEPENDENCIES
from amazonlite.platform.tenancy import TENANT_KEY, UNSCOPED, insert_together
from amazonlite.platform.tracing import current_traceparent

OUTBOX_WRITTEN = "outbox_written"
PRODUCER = "producer"
TABLES = "messaging_tables"

OUTBOX_PUBLISHED = Counter("amazonlite_outbox_published_total", "Events published by the relay",
                           ["service", "topic"])
OUTBOX_BACKLOG = Gauge("amazonlite_outbox_backlog", "Unpublished outbox rows", ["service"])
OUTBOX_AGE = Gauge("amazonlite_outbox_oldest_age_seconds", "Age of the oldest unpublished event",
                   ["service"])
OUTBOX_FAILURES = Counter("amazonlite_outbox_publish_failures_total", "Failed relay batches",
                          ["service"])
MAX_BACKOFF_S = 5.0
# Events handed to an in-process bus in one call (see `publish_pending`).
INLINE_PART = 50


async def record_event(session: AsyncSession, payload: EventPayload, *, aggregate_id: object) -> Envelope:
    """Write `payload` into the outbox of the session's service, in the session's transaction."""
    (envelope,) = await record_events(session, [(payload, aggregate_id)])
    return envelope


async def record_events(session: AsyncSession, events: Sequence[tuple[EventPayload, object]]) -> list[Envelope]:
    """Write each `(payload, aggregate_id)` into the outbox, in order, with one statement."""
    outbox, rows, envelopes = outbox_rows(session, events)
    await insert_together(session, [(outbox, rows)])
    return envelopes


def outbox_rows(session: AsyncSession, events: Sequence[tuple[EventPayload, object]]
                ) -> tuple[Table, list[dict[str, object]], list[Envelope]]:
    """The outbox table and its rows for each `(payload, aggregate_id)`, in order, with their
    envelopes, for a caller that inserts them together with its own rows (`insert_together`) in
    the session's transaction."""
    tables: MessagingTables = session.info[TABLES]
    tenant = session.info[TENANT_KEY]
    if tenant == UNSCOPED:
        raise RuntimeError("an event belongs to a tenant; record it in a tenant's session")
    traceparent = current_traceparent()
    trace_id = traceparent.split("-")[1] if traceparent else "0" * 32
    correlation_id = current_correlation_id() or ""
    producer = session.info[PRODUCER]
    envelopes: list[Envelope] = []
    rows: list[dict[str, object]] = []
    for payload, aggregate_id in events:
        envelope = Envelope(
            event_id=new_id(), event_type=type(payload).event_type, occurred_at=utcnow(), producer=producer,
            schema_version=type(payload).schema_version, trace_id=trace_id, correlation_id=correlation_id,
            tenant_id=tenant, payload=payload.model_dump(mode="json"))
        envelopes.append(envelope)
        rows.append({"event_id": envelope.event_id, "tenant_id": tenant, "topic": envelope.event_type,
                     "aggregate_id": str(aggregate_id), "envelope": envelope.to_json().decode(),
                     "traceparent": traceparent, "created_at": envelope.occurred_at})
    if rows:
        session.info[OUTBOX_WRITTEN] = True  # the relay is woken after the commit
    return tables.outbox, rows, envelopes


class OutboxRelay:
    def __init__(self, service: str, db: Database, tables: MessagingTables, transport: Transport, *,
                 poll_interval: float = 0.25, batch_size: int = 200, publish_timeout: float = 5.0,
                 retention: dt.timedelta = dt.timedelta(hours=1)) -> None:
        self.service = service
        self.db = db
        self.tables = tables
        self.transport = transport
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.publish_timeout = publish_timeout
        self.retention = retention
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # When the oldest unpublished event was created, as last measured (None: nothing pending).
        self._oldest: dt.datetime | None = None
        self._dependency = f"{service}.outbox"
        OUTBOX_AGE.labels(service).set_function(self.oldest_age)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.service}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def oldest_age(self) -> float:
        """Seconds since the oldest unpublished event was created; 0 when none is pending."""
        return 0.0 if self._oldest is None else max((utcnow() - self._oldest).total_seconds(), 0.0)

    def check(self, stale_after: float) -> str:
        """Readiness: "failing" once the oldest unpublished event is older than `stale_after` seconds."""
        age = self.oldest_age()
        return "ok" if age <= stale_after else f"failing: the oldest unpublished event is {age:.0f} s old"

    async def _run(self) -> None:
        backoff = self.poll_interval
        cycles = 0
        while True:
            try:
                published = await self.publish_pending()
                DEPENDENCIES.available(self._dependency)
                backoff = self.poll_interval
                cycles += 1
                if cycles % 200 == 0:
                    await self.prune()
                if published:
                    continue  # there may be more
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                OUTBOX_FAILURES.labels(self.service).inc()
                DEPENDENCIES.unavailable(self._dependency, error=f"{type(exc).__name__}: {exc}")
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                with contextlib.suppress(Exception):  # its database may be what fails
                    await self._measure_backlog()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)

    async def unpublished(self, tenant_id: str) -> list[Message]:
        """A tenant's events not yet published, in order, as the bus would carry them; they stay
        unpublished. For seeding: `topology.seed` hands them to the services seeded after this one."""
        outbox = self.tables.outbox
        async with self.db.session(tenant_id=UNSCOPED) as session:
            rows = (await session.execute(
                select(outbox.c.topic, outbox.c.aggregate_id, outbox.c.envelope)
                .where(outbox.c.published_at.is_(None), outbox.c.tenant_id == tenant_id)
                .order_by(outbox.c.id))).all()
        return [Message(row.topic, row.aggregate_id.encode(), row.envelope.encode()) for row in rows]

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished events; return how many were published."""
        outbox = self.tables.outbox
        async with self.db.session(tenant_id=UNSCOPED) as session:
            query = (select(outbox.c.id, outbox.c.topic, outbox.c.aggregate_id, outbox.c.envelope,
                            outbox.c.traceparent)
                     .where(outbox.c.published_at.is_(None))
                     .order_by(outbox.c.id).limit(self.batch_size))
            if self.db.dialect != "sqlite":
                query = query.with_for_update()
            rows = (await session.execute(query)).all()
            if not rows:
                OUTBOX_BACKLOG.labels(self.service).set(0)
                self._oldest = None
                return 0
            messages = [
                Message(row.topic, row.aggregate_id.encode(), row.envelope.encode(),
                        (("traceparent", row.traceparent.encode()),) if row.traceparent else ())
                for row in rows
            ]
            if self.transport.delivers_inline:
                await self._publish_inline(messages)
            else:
                try:
                    async with asyncio.timeout(self.publish_timeout):
                        await self.transport.publish(messages)
                except TimeoutError as exc:
                    raise TimeoutError(f"the bus did not accept {len(messages)} events in "
                                       f"{self.publish_timeout:g} s") from exc
            await session.execute(update(outbox).where(outbox.c.id.in_([r.id for r in rows]))
                                  .values(published_at=utcnow()))
            for row in rows:
                OUTBOX_PUBLISHED.labels(self.service, row.topic).inc()
        await self._measure_backlog()
        return len(rows)

    async def _publish_inline(self, messages: list[Message]) -> None:
        """A bus that applies the events in every consumer before it returns (in-process) takes as
        long as they do. It gets parts of at most `INLINE_PART` events, each whole, so a consumer
        applies its runs of one tenant and topic in one transaction each (one event at a time, a
        relay is a queue a busy saga waits in). The deadline is per part; a part that misses it is
        sent again in halves (the consumers' inboxes drop what it had applied), down to single
        events, whose deadline is final: a batch slow only in all is published, not thrown back."""
        pending, size = messages, INLINE_PART
        while pending:
            part = pending[:size]
            try:
                async with asyncio.timeout(self.publish_timeout):
                    await self.transport.publish(part)
            except TimeoutError as exc:
                if len(part) == 1:
                    raise TimeoutError(f"the bus did not apply an event in {self.publish_timeout:g} s") from exc
                size = len(part) // 2
                continue
            pending = pending[len(part):]

    async def _measure_backlog(self) -> None:
        outbox = self.tables.outbox
        async with self.db.session(tenant_id=UNSCOPED) as session:
            count, oldest = (await session.execute(
                select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.published_at.is_(None))
            )).one()
        OUTBOX_BACKLOG.labels(self.service).set(count)
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=dt.UTC)
        self._oldest = oldest

    async def prune(self) -> None:
        outbox = self.tables.outbox
        async with self.db.session(tenant_id=UNSCOPED) as session:
            await session.execute(delete(outbox).where(outbox.c.published_at < utcnow() - self.retention))
