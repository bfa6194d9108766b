"""A unit of work is atomic on every database, savepoints included: what a savepoint wrote is undone
with its unit of work, whether or not anything was written before it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from amazonlite.platform.db import Database


class Failed(Exception):
    pass


@pytest.mark.parametrize("written_before", [False, True], ids=["savepoint-first", "write-first"])
async def test_what_a_savepoint_wrote_goes_with_its_failed_unit_of_work(
        any_database_url: str, tmp_path: Path, written_before: bool) -> None:
    db = Database(any_database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP TABLE IF EXISTS savepoint_notes"))
            await conn.execute(text("CREATE TABLE savepoint_notes (body VARCHAR(20) PRIMARY KEY)"))

        async def losing_unit_of_work() -> None:
            async with db.session(tenant_id="acme") as session:
                await session.execute(text("SELECT 1"))  # a read begins no transaction on SQLite
                if written_before:
                    await session.execute(text("INSERT INTO savepoint_notes VALUES ('before')"))
                async with session.begin_nested():  # as a repository's "add unless it exists" does
                    await session.execute(text("INSERT INTO savepoint_notes VALUES ('receipt')"))
                await session.execute(text("INSERT INTO savepoint_notes VALUES ('after')"))
                raise Failed("the unit of work lost a race")

        with pytest.raises(Failed):
            await losing_unit_of_work()
        async with db.session(tenant_id="acme") as session:
            assert (await session.execute(text("SELECT body FROM savepoint_notes"))).all() == []
        async with db.session(tenant_id="acme") as session:  # and a unit of work that succeeds keeps it all
            async with session.begin_nested():
                await session.execute(text("INSERT INTO savepoint_notes VALUES ('receipt')"))
            await session.execute(text("INSERT INTO savepoint_notes VALUES ('after')"))
        async with db.session(tenant_id="acme") as session:
            kept = (await session.execute(text("SELECT body FROM savepoint_notes ORDER BY body"))).scalars().all()
        assert kept == ["after", "receipt"]
    finally:
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP TABLE IF EXISTS savepoint_notes"))
        await db.dispose()
