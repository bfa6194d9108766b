from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from amazonlite.platform.db import Database, after_commit


class TestAfterCommit:
    async def test_runs_after_a_commit_and_never_after_a_rollback(self, tmp_path: Path) -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
        ran: list[str] = []

        async def note() -> None:
            ran.append("ran")

        async with db.session(tenant_id="acme") as session:
            after_commit(session, note)
            assert ran == []
        assert ran == ["ran"]

        async def failing_request() -> None:
            async with db.session(tenant_id="acme") as session:
                after_commit(session, note)
                raise RuntimeError("the request failed")

        with pytest.raises(RuntimeError):
            await failing_request()
        assert ran == ["ran"]
        await db.dispose()

    async def test_a_failing_callback_does_not_fail_the_committed_work(self, tmp_path: Path) -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")

        attempted: list[str] = []

        async def broken() -> None:
            attempted.append("drop")
            raise ConnectionError("cache is down")

        async with db.session(tenant_id="acme") as session:
            await session.execute(text("CREATE TABLE notes (body TEXT)"))
            await session.execute(text("INSERT INTO notes VALUES ('kept')"))
            after_commit(session, broken)
        async with db.session(tenant_id="acme") as session:
            bodies = (await session.execute(text("SELECT body FROM notes"))).scalars().all()
        await db.dispose()
        assert attempted == ["drop"]
        assert bodies == ["kept"]
