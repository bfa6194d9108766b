"""A test-only service, "ledger", to drive the messaging kernel from both ends.

It is shaped like a real service (its own declarative base, the messaging tables, one
tenant-scoped table, a versioned payload, declared handlers) but has no migrations: its tables
are created with `metadata.create_all`. Each test builds its own payload class on its own topic
(`entry_added(...)`), so tests sharing one broker never see each other's messages.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Integer, String, Uuid, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from amazonlite.platform.bus import Transport
from amazonlite.platform.config import PlatformSettings, ServiceSettings
from amazonlite.platform.consumer import BatchContext, EventContext, EventHandlers
from amazonlite.platform.db import service_metadata
from amazonlite.platform.messaging import add_messaging_tables
from amazonlite.platform.revocation import MemoryRevocationStore
from amazonlite.platform.service import ServiceModule, ServiceRuntime
from amazonlite.platform.tenancy import TenantScoped


class Base(DeclarativeBase):
    metadata = service_metadata("ledger")


MESSAGING = add_messaging_tables(Base.metadata)
TOPIC = "ledger.entry_added.v1"


class Entry(TenantScoped, Base):
    """A ledger entry; the producer's state change, and the consumer's effect (its own database)."""

    __tablename__ = "entries"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    amount: Mapped[int] = mapped_column(Integer)
    # The consumer's copy records which event it came from.
    source_event_id: Mapped[str | None] = mapped_column(String(64), default=None)


class EntryAddedV1(BaseModel):
    """A test payload (not a contract)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str] = TOPIC
    schema_version: ClassVar[int] = 1

    entry_id: uuid.UUID
    amount: int
    seq: int = 0


def entry_added(topic_suffix: str) -> type[EntryAddedV1]:
    """`EntryAddedV1` on its own topic, `ledger.<suffix>.entry_added.v1`."""
    return type(f"EntryAdded_{topic_suffix}", (EntryAddedV1,),
                {"event_type": f"ledger.{topic_suffix}.entry_added.v1", "__module__": __name__})


class LedgerSettings(ServiceSettings):
    service_name: ClassVar[str] = "ledger"


OnEntry = Callable[[EventContext, EntryAddedV1], Awaitable[None]]
OnEntries = Callable[[BatchContext, list[EntryAddedV1]], Awaitable[None]]


async def copy_entry(ctx: EventContext, event: EntryAddedV1) -> None:
    """The consumer's effect: a copy of the entry in its own database, in the inbox's transaction."""
    ctx.session.add(Entry(id=event.entry_id, amount=event.amount, source_event_id=str(ctx.envelope.event_id)))
    await ctx.session.flush()


def ledger_module(name: str = "ledger", *, payload: type[EntryAddedV1] | None = None,
                  on_entry: OnEntry | None = None, on_entries: OnEntries | None = None) -> ServiceModule:
    """A ServiceModule named `name`; with `payload`, it consumes that topic with `on_entry` (default:
    copy), or with `on_entries`, a handler of whole runs."""
    handlers = EventHandlers()
    if payload is not None and on_entries is not None:
        handlers.batch_subscriber(payload)(on_entries)
    elif payload is not None:
        handlers.subscriber(payload)(on_entry or copy_entry)
    return ServiceModule(name=name, router=APIRouter(), metadata=Base.metadata, settings=LedgerSettings,
                         migrations=Path(__file__).parent / "no-migrations", handlers=handlers)


async def create_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


async def build_runtime(module: ServiceModule, platform: PlatformSettings, database_url: str,
                        transport: Transport) -> ServiceRuntime:
    """A runtime for a ledger module on `database_url` with its tables created (not started)."""
    runtime = ServiceRuntime(module, platform, transport=transport, revocations=MemoryRevocationStore(),
                             settings=LedgerSettings(database_url=database_url))
    await create_tables(runtime.db.engine)
    return runtime


async def entry_amounts(runtime: ServiceRuntime, tenant_id: str) -> list[int]:
    async with runtime.db.session(tenant_id=tenant_id) as session:
        return list((await session.scalars(select(Entry.amount).order_by(Entry.amount))).all())


async def published(runtime: ServiceRuntime, event_id: uuid.UUID) -> bool:
    """Whether the runtime's relay has marked the event sent."""
    outbox = MESSAGING.outbox
    async with runtime.db.engine.connect() as conn:
        count = await conn.scalar(select(func.count()).select_from(outbox).where(
            outbox.c.event_id == event_id, outbox.c.published_at.is_not(None)))
    return count == 1
