"""Auth's data migrations, run on a database holding rows written by the older code."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import insert, select

from amazonlite.platform.db import create_engine
from amazonlite.platform.migrations import upgrade
from amazonlite.services.auth.app import SERVICE
from amazonlite.services.auth.models import User

BEFORE_NFKC = "495525881e2d"
FULL_WIDTH_ADA = "\uff41\uff44\uff41@example.com"  # what the older code stored for a full-width signup


def accounts(url: str, *rows: tuple[str, str]) -> dict[str, tuple[str, str]]:
    """Insert (tenant, email) accounts as the older code stored them; their ids."""
    async def run() -> dict[str, tuple[str, str]]:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                ids = {}
                for tenant, email in rows:
                    result = await conn.execute(insert(User.__table__).values(
                        tenant_id=tenant, email=email, name="N", password_hash="x", roles=["customer"]
                    ).returning(User.__table__.c.id))
                    ids[str(result.scalar_one())] = (tenant, email)
                return ids
        finally:
            await engine.dispose()

    return asyncio.run(run())


def stored(url: str) -> dict[str, tuple[str, str]]:
    async def run() -> dict[str, tuple[str, str]]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                table = User.__table__
                rows = await conn.execute(select(table.c.id, table.c.tenant_id, table.c.email))
                return {str(user_id): (tenant, email) for user_id, tenant, email in rows}
        finally:
            await engine.dispose()

    return asyncio.run(run())


class TestEmailsInOneForm:
    def test_stored_emails_take_the_nfkc_form(self, any_database_url: str) -> None:
        upgrade("auth", SERVICE.migrations, any_database_url, BEFORE_NFKC)
        ids = accounts(any_database_url, ("default", FULL_WIDTH_ADA), ("default", "\ufb01sh@example.com"),
                       ("default", "bob@example.com"), ("acme", "ada@example.com"))
        upgrade("auth", SERVICE.migrations, any_database_url)
        after = stored(any_database_url)
        assert {user_id: after[user_id] for user_id in ids} == {
            user_id: (tenant, {FULL_WIDTH_ADA: "ada@example.com", "\ufb01sh@example.com": "fish@example.com"}
                      .get(email, email)) for user_id, (tenant, email) in ids.items()}

    # MariaDB's utf8mb4_unicode_ci collation compares full-width letters equal to plain ones: its
    # unique (tenant, email) never let such a pair in, so the collision exists on the other two only.
    @pytest.mark.parametrize("database", ["sqlite_url", "postgres_url"])
    def test_accounts_that_would_share_an_email_stop_the_upgrade_and_are_named(
            self, database: str, request: pytest.FixtureRequest) -> None:
        url: str = request.getfixturevalue(database)
        upgrade("auth", SERVICE.migrations, url, BEFORE_NFKC)
        ids = accounts(url, ("default", "ada@example.com"), ("default", FULL_WIDTH_ADA),
                       ("default", "\uff42\uff4f\uff42@example.com"))
        with pytest.raises(RuntimeError) as refused:
            upgrade("auth", SERVICE.migrations, url)
        message = str(refused.value)
        colliding = [user_id for user_id, (_tenant, email) in ids.items() if email != "\uff42\uff4f\uff42@example.com"]
        assert all(user_id in message for user_id in colliding), message
        assert "ada@example.com" in message and "bob" not in message
        assert stored(url) == ids  # nothing changed, the lone full-width bob included

        # Once an operator gives one of them another address, the upgrade goes through.
        async def readdress() -> None:
            engine = create_engine(url)
            try:
                async with engine.begin() as conn:
                    table = User.__table__
                    await conn.execute(table.update().where(table.c.email == FULL_WIDTH_ADA)
                                       .values(email="ada.second@example.com"))
            finally:
                await engine.dispose()

        asyncio.run(readdress())
        upgrade("auth", SERVICE.migrations, url)
        assert sorted(email for _tenant, email in stored(url).values()) == [
            "ada.second@example.com", "ada@example.com", "bob@example.com"]
