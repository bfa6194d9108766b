from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from amazonlite.contracts.base import EventPayload


class UserRegisteredV1(EventPayload):
    event_type: ClassVar[str] = "user.registered.v1"
    producer: ClassVar[str] = "auth"
    summary: ClassVar[str] = "A user account was created (signup, OAuth or the CLI). Key: user_id."

    user_id: UUID
    email: str
    name: str
    roles: list[str]


class NotificationChannels(BaseModel):
    """Opt-in per channel for one notification type."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    email: bool
    sms: bool


class UserPreferencesUpdatedV1(EventPayload):
    event_type: ClassVar[str] = "user.preferences.updated.v1"
    producer: ClassVar[str] = "users"
    summary: ClassVar[str] = ("A user's notification preferences changed; carries all of them (replace, do not "
                              "merge). Key: user_id.")

    user_id: UUID
    # notification type (e.g. "order_updates", "marketing") -> channels the user opted in to
    notifications: dict[str, NotificationChannels]
