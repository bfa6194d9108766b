from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from amazonlite.contracts.base import EventPayload

EmailTemplate = Literal["verify_email", "password_reset"]


class EmailRequestedV1(EventPayload):
    """A transactional email to send. `variables` fill the tenant's template for `template`; secrets
    such as a one-time token travel only here, never in logs."""

    event_type: ClassVar[str] = "notification.email.requested.v1"
    producer: ClassVar[str] = "auth"
    summary: ClassVar[str] = ("An email must be sent (verification, password reset); carries the template and "
                              "its variables. Key: user_id.")

    user_id: UUID
    to: str
    template: EmailTemplate
    locale: str | None = None
    variables: dict[str, str]
