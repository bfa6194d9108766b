"""The platform's outgoing mail as an operator can read it: the `notification.email.requested.v1`
events the auth service recorded in the outbox of its own database (embedded: its SQLite file
under the data directory; distributed: its PostgreSQL database).

The outbox is the record of what was asked to be mailed, in both topologies, whatever the
notifications service then does with it; published rows stay in it for an hour.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.e2e.actors import eventually

EMAIL_REQUESTED = "notification.email.requested.v1"


class Mailbox:
    def __init__(self, auth_database_url: str) -> None:
        self.database_url = auth_database_url

    async def _mails(self) -> list[dict[str, Any]]:
        engine = create_async_engine(self.database_url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(text("SELECT envelope FROM outbox WHERE topic = :topic ORDER BY id"),
                                           {"topic": EMAIL_REQUESTED})).scalars().all()
        finally:
            await engine.dispose()
        return [json.loads(row)["payload"] for row in rows]

    def mails(self, *, to: str, template: str) -> list[dict[str, Any]]:
        """The emails of `template` the platform asked to send to `to`, oldest first."""
        return [m for m in asyncio.run(self._mails()) if m["to"] == to and m["template"] == template]

    def token(self, *, to: str, template: str, after: int = 0) -> str:
        """The token of the newest email of `template` to `to`, once there are more than `after` of them."""
        def arrived() -> list[dict[str, Any]]:
            mails = self.mails(to=to, template=template)
            return mails if len(mails) > after else []

        newest = eventually(arrived, timeout=30.0, what=f"email number {after + 1} of {template} to {to}")[-1]
        return str(newest["variables"]["token"])
