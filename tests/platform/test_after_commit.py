from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from amazonlite.platform.db import Database, after_commit
from amazonlite.platform.errors import AppError


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


class Revoked(AppError):
    status = 401
    type = "revoked"
    title = "Revoked"
    keeps_changes = True


class TestAnErrorThatKeepsItsChanges:
    async def test_its_work_is_committed_its_callbacks_run_and_it_still_propagates(self, tmp_path: Path) -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
        async with db.session(tenant_id="acme") as session:
            await session.execute(text("CREATE TABLE notes (body TEXT)"))
        ran: list[str] = []

        async def note() -> None:
            ran.append("ran")

        async def refused_request(error: Exception) -> None:
            async with db.session(tenant_id="acme") as session:
                await session.execute(text("INSERT INTO notes VALUES (:body)"), {"body": type(error).__name__})
                after_commit(session, note)
                raise error

        with pytest.raises(Revoked):
            await refused_request(Revoked("a reused token revokes its family"))
        with pytest.raises(RuntimeError):
            await refused_request(RuntimeError("an ordinary failure"))
        async with db.session(tenant_id="acme") as session:
            bodies = (await session.execute(text("SELECT body FROM notes"))).scalars().all()
        await db.dispose()
        assert bodies == ["Revoked"]
        assert ran == ["ran"]
