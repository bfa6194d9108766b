"""Cursor pagination: `limit`, an opaque `cursor`, and `next_cursor` in the body.

A cursor is the sort key of the last item served, base64url-encoded JSON. A cursor that does not
decode is a 400 problem; it can never widen a query beyond the tenant scope.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel

from amazonlite.platform.errors import BadRequest

T = TypeVar("T")


class InvalidCursor(BadRequest):
    type = "invalid-cursor"
    title = "The cursor is not valid"


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).rstrip(b"=").decode()


def decode_cursor(cursor: str, *, length: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise InvalidCursor("Use the next_cursor of a previous page") from exc
    if not isinstance(values, list) or len(values) != length:
        raise InvalidCursor("Use the next_cursor of a previous page")
    return values


def encode_id_cursor(last_id: uuid.UUID) -> str:
    """The cursor of a page sorted by (time-ordered) id, after its last item."""
    return encode_cursor([last_id.hex])


def decode_id_cursor(cursor: str | None) -> uuid.UUID | None:
    """The id an id-sorted page continues from (None: the first page)."""
    if cursor is None:
        return None
    (value,) = decode_cursor(cursor, length=1)
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise InvalidCursor("Use the next_cursor of a previous page") from exc


Limit = Annotated[int, Query(ge=1, le=100, description="Items per page")]
CursorParam = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]
