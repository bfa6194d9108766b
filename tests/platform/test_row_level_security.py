"""PostgreSQL row-level security, the second tenant wall: a statement that escaped the ORM's tenant
scope (raw SQL here) still sees and changes only the session's tenant, when the service connects as
an ordinary role (superusers bypass RLS, so production must not use one)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from amazonlite.platform.db import Database
from amazonlite.platform.messaging import messaging_tables
from amazonlite.platform.migrations import upgrade
from amazonlite.platform.tenancy import UNSCOPED
from amazonlite.services.users.models import Profile
from amazonlite.topology import load_service
from tests.support import servers

pytestmark = pytest.mark.postgres


@pytest.fixture
def app_role_url(postgres_url: str) -> Iterator[str]:
    """The users database, migrated, and a URL that connects to it as a plain role."""
    users = load_service("users")
    upgrade("users", users.migrations, postgres_url)
    role = f"al_app_{uuid.uuid4().hex[:8]}"
    database = postgres_url.rsplit("/", 1)[1]
    admin = servers.PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"

    async def run(*statements: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run(
        f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS',
        f'GRANT USAGE ON SCHEMA public TO "{role}"',
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"',
        f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{role}"',
    ))
    try:
        yield postgres_url.replace("postgres@", f"{role}@", 1)
    finally:
        # Roles are cluster-wide: revoke what it was granted, then drop it.
        asyncio.run(run(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"',
                        f'REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM "{role}"',
                        f'REVOKE ALL ON SCHEMA public FROM "{role}"',
                        f'DROP ROLE "{role}"'))


@pytest.fixture
async def db(app_role_url: str) -> AsyncIterator[Database]:
    users = load_service("users")
    database = Database(app_role_url, service="users", messaging=messaging_tables(users.metadata))
    for tenant, name in (("acme", "Ada"), ("globex", "Grace")):
        async with database.session(tenant_id=tenant) as session:
            session.add(Profile(id=uuid.uuid4(), email=f"{name.lower()}@example.com", name=name))
    yield database
    await database.dispose()


class TestRowLevelSecurity:
    async def test_raw_sql_in_a_tenant_session_sees_only_that_tenant(self, db: Database) -> None:
        async with db.session(tenant_id="acme") as session:
            names = (await session.execute(text("SELECT name FROM profiles"))).scalars().all()
            changed = await session.execute(text("UPDATE profiles SET name = 'Changed'"))
        assert names == ["Ada"]
        assert changed.rowcount == 1
        async with db.session(tenant_id="globex") as session:
            assert (await session.execute(text("SELECT name FROM profiles"))).scalars().all() == ["Grace"]

    async def test_raw_sql_cannot_write_a_row_of_another_tenant(self, db: Database) -> None:
        with pytest.raises(DBAPIError, match="row-level security"):
            async with db.session(tenant_id="acme") as session:
                await session.execute(text(
                    "INSERT INTO profiles (id, email, name, tenant_id, created_at, updated_at) "
                    "VALUES (:id, 'x@example.com', 'X', 'globex', now(), now())"), {"id": uuid.uuid4().hex})
        async with db.session(tenant_id=UNSCOPED) as session:
            count = await session.scalar(text("SELECT count(*) FROM profiles"))
        assert count == 2

    async def test_a_connection_that_names_no_tenant_sees_nothing(self, db: Database) -> None:
        async with db.engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM profiles")) == 0

    async def test_the_kernel_s_unscoped_work_sees_every_tenant(self, db: Database) -> None:
        async with db.session(tenant_id=UNSCOPED) as session:
            assert await session.scalar(text("SELECT count(*) FROM profiles")) == 2
