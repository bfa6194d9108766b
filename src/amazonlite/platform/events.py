"""The event envelope: the wire format of the bus, the same on every transport.

Payload models live in `amazonlite.contracts`; the kernel knows them only through the
`EventPayload` protocol (a Pydantic model with `event_type` and `schema_version` class attributes).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field


class EventPayload(Protocol):
    event_type: ClassVar[str]
    schema_version: ClassVar[int]

    def model_dump(self, *, mode: str = ..., by_alias: bool | None = ...) -> dict[str, Any]: ...

    @classmethod
    def model_validate(cls, obj: Any) -> Any: ...


class Envelope(BaseModel):
    """Every field is required on the wire (ARCHITECTURE §4)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    event_id: uuid.UUID = Field(alias="eventId")
    event_type: str = Field(alias="eventType", min_length=1)
    occurred_at: dt.datetime = Field(alias="occurredAt")
    producer: str = Field(min_length=1)
    schema_version: int = Field(alias="schemaVersion", ge=1)
    trace_id: str = Field(alias="traceId")
    correlation_id: str = Field(alias="correlationId")
    tenant_id: str = Field(alias="tenantId", min_length=1)
    payload: dict[str, Any]

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Envelope:
        return cls.model_validate_json(raw)


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlt"
