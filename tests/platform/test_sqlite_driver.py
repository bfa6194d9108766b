"""SQLite statements in one thread hop each (platform/sqlite_driver.py) behave as the driver's own."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from amazonlite.platform.db import create_engine
from amazonlite.platform.sqlite_driver import OneHopCursor


async def test_rows_counts_ids_and_errors_come_back_as_from_the_drivers_cursor(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'one-hop.sqlite3'}")
    try:
        async with engine.begin() as conn:
            raw = await conn.get_raw_connection()
            assert raw.dbapi_connection is not None
            assert isinstance(raw.dbapi_connection.cursor(), OneHopCursor)
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
            inserted = await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
            assert inserted.lastrowid == 1
            await conn.execute(text("INSERT INTO t (name) VALUES (:name)"), [{"name": "b"}, {"name": "c"}])
            updated = await conn.execute(text("UPDATE t SET name = name || '!' WHERE id > 1"))
            assert updated.rowcount == 2
            rows = (await conn.execute(text("SELECT id, name FROM t ORDER BY id"))).all()
            assert [tuple(r) for r in rows] == [(1, "a"), (2, "b!"), (3, "c!")]
            assert (await conn.execute(text("SELECT name FROM t WHERE id = 9"))).first() is None
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
        async with engine.connect() as conn:  # the failed transaction left nothing behind
            assert await conn.scalar(text("SELECT count(*) FROM t")) == 3
            streamed = await conn.stream(text("SELECT name FROM t ORDER BY id"))  # server-side: the driver's
            assert [r.name async for r in streamed] == ["a", "b!", "c!"]
    finally:
        await engine.dispose()
