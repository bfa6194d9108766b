from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class EventPayload(BaseModel):
    """Base of every payload. Consumers ignore fields they do not know, so adding an optional
    field is a compatible change; removing or retyping one is not."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str]
    summary: ClassVar[str] = ""


class Money(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    amount: int
    currency: str
