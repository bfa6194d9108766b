"""`amazonlite dlq list` and `amazonlite dlq replay`: an event that dead-lettered for a reason since
fixed is delivered again, once in effect."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from amazonlite.cli import app
from amazonlite.contracts import UserRegisteredV1
from amazonlite.platform.config import platform_settings
from amazonlite.topology import load_service
from tests.platform.helpers import count_rows
from tests.support.harness import fast_platform_settings as platform_for
from tests.support.harness import running_service

pytestmark = pytest.mark.postgres


def run_cli(database_url: str, *args: str) -> Result:
    """The CLI as an operator runs it, against the users service's database."""
    platform_settings.cache_clear()
    try:
        return CliRunner().invoke(app, list(args), env={"AMAZONLITE_USERS_DATABASE_URL": database_url,
                                                        "COLUMNS": "300"})
    finally:
        platform_settings.cache_clear()


async def cli(database_url: str, *args: str) -> Result:
    # The commands run their own event loop (asyncio.run), so not on the test's.
    return await asyncio.to_thread(run_cli, database_url, *args)


class TestDeadLetterReplay:
    async def test_replay_delivers_a_dead_letter_again_once(self, postgres_url: str, tmp_path: Path,
                                                             tenant: str) -> None:
        user_id = uuid.uuid4()
        platform = platform_for(tmp_path, consumer_max_attempts=2)
        async with running_service(load_service("users"), postgres_url, tmp_path, platform=platform) as users:
            engine = users.runtime.db.engine
            async with engine.begin() as conn:  # every attempt fails: the table is not where it should be
                await conn.execute(text("ALTER TABLE profiles RENAME TO profiles_moved"))
            await users.deliver(UserRegisteredV1(user_id=user_id, email="ada@example.com", name="Ada",
                                                 roles=["customer"]), tenant=tenant)
            async with engine.begin() as conn:
                await conn.execute(text("ALTER TABLE profiles_moved RENAME TO profiles"))
            [dead] = await users.runtime.consumer.dead_letters()
            assert dead.attempts == 2

            listed = await cli(postgres_url, "dlq", "list", "--service", "users")
            assert listed.exit_code == 0, listed.output
            assert str(dead.id) in listed.stdout
            assert tenant in listed.stdout
            assert UserRegisteredV1.event_type in listed.stdout

            replayed = await cli(postgres_url, "dlq", "replay", "--service", "users", "--all")
            assert replayed.exit_code == 0, replayed.output
            assert f"users {dead.id}: applied" in replayed.output

            async with users.client(tenant=tenant, user_id=user_id, roles=("customer",)) as client:
                me = await client.get("/api/v1/users/me")
            assert me.status_code == 200, me.text
            assert me.json()["email"] == "ada@example.com"

            listed_again = await cli(postgres_url, "dlq", "list", "--service", "users")
            assert listed_again.exit_code == 0, listed_again.output
            assert str(dead.id) not in listed_again.stdout

            again = await cli(postgres_url, "dlq", "replay", "--service", "users", "--id", str(dead.id))
            assert again.exit_code == 0, again.output
            assert await count_rows(engine, "profiles", "tenant_id = :t", t=tenant) == 1
            assert await count_rows(engine, "inbox", "tenant_id = :t", t=tenant) == 1
