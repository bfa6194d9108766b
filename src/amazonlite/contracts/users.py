from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from amazonlite.contracts.base import EventPayload


class UserRegisteredV1(EventPayload):
    event_type: ClassVar[str] = "user.registered.v1"
    producer: ClassVar[str] = "auth"
    summary: ClassVar[str] = "A user account was created (signup, OAuth or the CLI). Key: user_id."

    user_id: UUID
    email: str
    name: str
    roles: list[str]
