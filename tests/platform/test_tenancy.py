"""The tenant scope of sessions: a session of tenant A neither sees nor changes tenant B's rows."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import bindparam, delete, func, insert, select, update

from amazonlite.platform.db import Database
from amazonlite.platform.outbox import record_event
from amazonlite.platform.tenancy import UNSCOPED, TenantScopeMissing, insert_together
from tests.platform.ledger import MESSAGING, Entry, EntryAddedV1, create_tables

A, B = "tenant-a", "tenant-b"


async def ledger_database(url: str) -> AsyncIterator[Database]:
    database = Database(url, service="ledger", messaging=MESSAGING)
    await create_tables(database.engine)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def db(sqlite_url: str) -> AsyncIterator[Database]:
    async for database in ledger_database(sqlite_url):
        yield database


@pytest.fixture
async def b_entry(db: Database) -> uuid.UUID:
    """Two entries of tenant A (amounts 1 and 2) and one of tenant B (amount 10), whose id is returned."""
    async with db.session(tenant_id=A) as session:
        session.add_all([Entry(amount=1), Entry(amount=2)])
    entry_id = uuid.uuid4()
    async with db.session(tenant_id=B) as session:
        session.add(Entry(id=entry_id, amount=10))
    return entry_id


async def amounts(db: Database, tenant: str) -> list[int]:
    async with db.session(tenant_id=tenant) as session:
        return sorted((await session.scalars(select(Entry.amount))).all())


class TestReads:
    async def test_a_session_of_a_sees_only_the_rows_of_a(self, db: Database, b_entry: uuid.UUID) -> None:
        async with db.session(tenant_id=A) as session:
            assert sorted(e.amount for e in (await session.scalars(select(Entry))).all()) == [1, 2]
            assert await session.scalar(select(Entry).where(Entry.id == b_entry)) is None
            assert await session.get(Entry, b_entry) is None
            assert await session.scalar(select(func.sum(Entry.amount))) == 3
            assert await session.scalar(select(func.count(Entry.id))) == 2

    async def test_counting_rows_counts_only_the_rows_of_a(self, db: Database, b_entry: uuid.UUID) -> None:
        async with db.session(tenant_id=A) as session:
            assert await session.scalar(select(func.count()).select_from(Entry)) == 2
            assert await session.scalar(select(func.count()).where(Entry.id == b_entry)) == 0


class TestWrites:
    async def test_updating_b_rows_from_a_session_of_a_touches_nothing(self, db: Database,
                                                                       b_entry: uuid.UUID) -> None:
        async with db.session(tenant_id=A) as session:
            targeted = await session.execute(update(Entry).where(Entry.id == b_entry).values(amount=99))
            everything = await session.execute(update(Entry).values(amount=0))
        assert (targeted.rowcount, everything.rowcount) == (0, 2)
        assert await amounts(db, B) == [10]
        assert await amounts(db, A) == [0, 0]

    async def test_deleting_from_a_session_of_a_leaves_b_rows(self, db: Database, b_entry: uuid.UUID) -> None:
        async with db.session(tenant_id=A) as session:
            targeted = await session.execute(delete(Entry).where(Entry.id == b_entry))
            everything = await session.execute(delete(Entry))
        assert (targeted.rowcount, everything.rowcount) == (0, 2)
        assert await amounts(db, B) == [10]
        assert await amounts(db, A) == []

    async def test_new_rows_are_stamped_with_the_session_tenant(self, db: Database) -> None:
        async with db.session(tenant_id=A) as session:
            entry = Entry(amount=5)
            session.add(entry)
        assert entry.tenant_id == A
        assert await amounts(db, A) == [5]

    async def test_adding_a_row_of_another_tenant_raises_and_writes_nothing(self, db: Database) -> None:
        with pytest.raises(TenantScopeMissing):
            async with db.session(tenant_id=A) as session:
                session.add(Entry(amount=5, tenant_id=B))
        assert await amounts(db, A) == []
        assert await amounts(db, B) == []

    async def test_an_orm_insert_statement_for_another_tenant_raises(self, db: Database) -> None:
        with pytest.raises(TenantScopeMissing):
            async with db.session(tenant_id=A) as session:
                await session.execute(insert(Entry).values(id=uuid.uuid4(), amount=5, tenant_id=B))
        assert await amounts(db, B) == []

    async def test_a_row_cannot_move_to_another_tenant(self, db: Database, b_entry: uuid.UUID) -> None:
        async def move() -> None:
            async with db.session(tenant_id=B) as session:
                entry = await session.get(Entry, b_entry)
                assert entry is not None
                entry.tenant_id = A

        with pytest.raises(TenantScopeMissing):
            await move()
        assert await amounts(db, A) == [1, 2]
        assert await amounts(db, B) == [10]


class TestPreparedStatements:
    """A statement built once and run in sessions of several tenants sees each time only the
    tenant of the session it runs in (the kernel keeps its scoped form per tenant)."""

    async def test_one_statement_object_reads_each_tenant_in_turn(self, db: Database, b_entry: uuid.UUID) -> None:
        total = select(func.sum(Entry.amount)).where(Entry.amount >= bindparam("least"))
        for tenant, least, expected in ((A, 0, 3), (B, 0, 10), (A, 2, 2), (B, 11, None), (A, 0, 3)):
            async with db.session(tenant_id=tenant) as session:
                assert await session.scalar(total, {"least": least}) == expected

    async def test_one_update_object_changes_each_tenant_in_turn(self, db: Database, b_entry: uuid.UUID) -> None:
        double = (update(Entry).values(amount=Entry.amount * 2).where(Entry.amount >= bindparam("least"))
                  .execution_options(synchronize_session=False))
        async with db.session(tenant_id=A) as session:
            assert (await session.execute(double, {"least": 0})).rowcount == 2
        async with db.session(tenant_id=B) as session:
            assert (await session.execute(double, {"least": 0})).rowcount == 1
        assert await amounts(db, A) == [2, 4]
        assert await amounts(db, B) == [20]


@pytest.fixture
async def any_db(any_database_url: str) -> AsyncIterator[Database]:
    async for database in ledger_database(any_database_url):
        yield database


class TestInsertTogether:
    """Rows written without the unit of work, on each database (PostgreSQL: one statement for every
    table, whatever the row counts)."""

    async def test_rows_are_stamped_with_the_session_tenant_and_take_their_defaults(self, any_db: Database) -> None:
        async with any_db.session(tenant_id=A) as session:
            await insert_together(session, [(Entry, [{"amount": 4}, {"amount": 6}])])  # ids by default
            await insert_together(session, [(Entry, [{"id": uuid.uuid4(), "amount": 8}])])
        assert await amounts(any_db, A) == [4, 6, 8]
        assert await amounts(any_db, B) == []
        async with any_db.engine.connect() as conn:
            assert await conn.scalar(select(func.count(func.distinct(Entry.id)))) == 3

    async def test_rows_of_several_tables_go_together_and_plain_tables_as_given(self, any_db: Database) -> None:
        event_id = uuid.uuid4()
        outbox_row = {"event_id": event_id, "tenant_id": A, "topic": "t", "aggregate_id": "a", "envelope": "{}",
                      "traceparent": None, "created_at": dt.datetime.now(dt.UTC)}
        async with any_db.session(tenant_id=A) as session:
            await insert_together(session, [(Entry, [{"amount": n} for n in range(1, 6)]), (MESSAGING.outbox, []),
                                            (MESSAGING.outbox, [outbox_row])])
        assert await amounts(any_db, A) == [1, 2, 3, 4, 5]
        async with any_db.engine.connect() as conn:
            rows = (await conn.execute(select(MESSAGING.outbox.c.event_id, MESSAGING.outbox.c.tenant_id))).all()
        assert [(row.event_id, row.tenant_id) for row in rows] == [(event_id, A)]

    async def test_a_row_of_another_tenant_raises_and_writes_nothing(self, any_db: Database) -> None:
        with pytest.raises(TenantScopeMissing):
            async with any_db.session(tenant_id=A) as session:
                await insert_together(session, [(Entry, [{"id": uuid.uuid4(), "amount": 1},
                                                         {"id": uuid.uuid4(), "amount": 2, "tenant_id": B}])])
        assert await amounts(any_db, A) == []
        assert await amounts(any_db, B) == []

    async def test_an_unscoped_session_cannot_insert_rows_this_way(self, db: Database) -> None:
        with pytest.raises(TenantScopeMissing):
            async with db.session(tenant_id=UNSCOPED) as session:
                await insert_together(session, [(Entry, [{"id": uuid.uuid4(), "amount": 1, "tenant_id": A}])])
        assert await amounts(db, A) == []


class TestUnscopedSession:
    async def test_an_unscoped_session_refuses_to_record_an_event(self, db: Database) -> None:
        entry_id = uuid.uuid4()
        with pytest.raises(RuntimeError, match="belongs to a tenant"):
            async with db.session(tenant_id=UNSCOPED) as session:
                await record_event(session, EntryAddedV1(entry_id=entry_id, amount=1), aggregate_id=entry_id)
        async with db.engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(MESSAGING.outbox)) == 0

    async def test_an_unscoped_session_must_name_the_tenant_of_a_new_row(self, db: Database) -> None:
        with pytest.raises(TenantScopeMissing):
            async with db.session(tenant_id=UNSCOPED) as session:
                session.add(Entry(amount=1))
        async with db.session(tenant_id=UNSCOPED) as session:
            session.add(Entry(amount=1, tenant_id=B))
        assert await amounts(db, B) == [1]
