"""Users' data migrations, run on a database holding rows written by the older code."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import insert, select

from amazonlite.platform.db import create_engine
from amazonlite.platform.migrations import upgrade
from amazonlite.services.users.app import SERVICE
from amazonlite.services.users.models import Profile

BEFORE_NFKC = "c9e6999aad92"


class TestProfileEmailsInOneForm:
    def test_stored_emails_take_the_nfkc_form(self, any_database_url: str) -> None:
        upgrade("users", SERVICE.migrations, any_database_url, BEFORE_NFKC)
        before = {uuid.uuid4(): ("default", "\uff41\uff44\uff41@example.com"),
                  uuid.uuid4(): ("default", "ada@example.com"), uuid.uuid4(): ("acme", "\ufb01sh@example.com")}
        profiles = Profile.__table__

        async def write() -> None:
            engine = create_engine(any_database_url)
            try:
                async with engine.begin() as conn:
                    for profile_id, (tenant, email) in before.items():
                        await conn.execute(insert(profiles).values(id=profile_id, tenant_id=tenant, email=email,
                                                                   name="N"))
            finally:
                await engine.dispose()

        async def read() -> dict[uuid.UUID, tuple[str, str]]:
            engine = create_engine(any_database_url)
            try:
                async with engine.connect() as conn:
                    rows = await conn.execute(select(profiles.c.id, profiles.c.tenant_id, profiles.c.email))
                    return {profile_id: (tenant, email) for profile_id, tenant, email in rows}
            finally:
                await engine.dispose()

        asyncio.run(write())
        upgrade("users", SERVICE.migrations, any_database_url)
        plain = {"\uff41\uff44\uff41@example.com": "ada@example.com", "\ufb01sh@example.com": "fish@example.com"}
        assert asyncio.run(read()) == {profile_id: (tenant, plain.get(email, email))
                                       for profile_id, (tenant, email) in before.items()}
