"""The tables every service keeps for its messages: outbox, inbox and dead letters.

A service's `models.py` calls `add_messaging_tables(Base.metadata)` so that the tables live in its
own database and its own migration history. The kernel reads and writes them with Core
statements: the relay spans tenants by design, and every row still carries its `tenant_id`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    Uuid,
)

from amazonlite.platform.db import UTC

# SQLite only auto-increments an INTEGER PRIMARY KEY.
SEQUENCE = BigInteger().with_variant(Integer(), "sqlite")


@dataclass(frozen=True)
class MessagingTables:
    outbox: Table
    inbox: Table
    dead_letters: Table


def add_messaging_tables(metadata: MetaData) -> MessagingTables:
    outbox = Table(
        "outbox", metadata,
        Column("id", SEQUENCE, primary_key=True, autoincrement=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("tenant_id", String(64), nullable=False),
        Column("topic", String(200), nullable=False),
        Column("aggregate_id", String(200), nullable=False),
        Column("envelope", Text, nullable=False),
        Column("traceparent", String(128), nullable=True),
        Column("created_at", UTC, nullable=False),
        Column("published_at", UTC, nullable=True),
        Index("ix_outbox_unpublished", "published_at", "id"),
    )
    inbox = Table(
        "inbox", metadata,
        Column("consumer", String(100), nullable=False),
        Column("event_id", Uuid, nullable=False),
        Column("tenant_id", String(64), nullable=False),
        Column("topic", String(200), nullable=False),
        Column("processed_at", UTC, nullable=False),
        PrimaryKeyConstraint("consumer", "event_id"),
    )
    dead_letters = Table(
        "dead_letters", metadata,
        Column("id", Uuid, primary_key=True),
        Column("tenant_id", String(64), nullable=False),
        Column("consumer", String(100), nullable=False),
        Column("event_id", Uuid, nullable=True),
        Column("topic", String(200), nullable=False),
        Column("message", Text, nullable=False),
        Column("error", Text, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("created_at", UTC, nullable=False),
        Column("replayed_at", UTC, nullable=True),
        Index("ix_dead_letters_pending", "replayed_at", "created_at"),
    )
    return MessagingTables(outbox, inbox, dead_letters)


def messaging_tables(metadata: MetaData) -> MessagingTables:
    return MessagingTables(
        metadata.tables["outbox"], metadata.tables["inbox"], metadata.tables["dead_letters"]
    )
