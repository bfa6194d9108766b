"""The platform's outgoing mail as an operator can read it: the `notification.email.requested.v1`
events the auth service recorded in the outbox of its own database (embedded: its SQLite file
under the data directory; distributed: its PostgreSQL database).

The outbox is the record of what was asked to be mailed, in both topologies, whatever the
notifications service then does with it; published rows stay in it for an hour.
"""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.actors import eventually
from tests.e2e.operator import query

EMAIL_REQUESTED = "notification.email.requested.v1"


class Mailbox:
    def __init__(self, auth_database_url: str) -> None:
        self.database_url = auth_database_url

    def mails(self, *, to: str, template: str) -> list[dict[str, Any]]:
        """The emails of `template` the platform asked to send to `to`, oldest first."""
        rows = query(self.database_url, "SELECT envelope FROM outbox WHERE topic = :topic ORDER BY id",
                     {"topic": EMAIL_REQUESTED})
        mails = [json.loads(row.envelope)["payload"] for row in rows]
        return [m for m in mails if m["to"] == to and m["template"] == template]

    def token(self, *, to: str, template: str, after: int = 0) -> str:
        """The token of the newest email of `template` to `to`, once there are more than `after` of them."""
        def arrived() -> list[dict[str, Any]]:
            mails = self.mails(to=to, template=template)
            return mails if len(mails) > after else []

        newest = eventually(arrived, timeout=30.0, what=f"email number {after + 1} of {template} to {to}")[-1]
        return str(newest["variables"]["token"])
