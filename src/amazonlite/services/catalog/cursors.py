"""Cursors of the catalog's listings. A cursor comes back from the client: each value is checked as
strictly as a request body, so that nothing we would never have issued reaches the database (where
it could overflow or be refused)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from amazonlite.platform.pagination import InvalidCursor, decode_cursor, encode_cursor
from amazonlite.services.catalog.schemas import MAX_MONEY, SHORT_NAME_LENGTH

CURSOR_EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
CURSOR_LATEST = dt.datetime(3000, 1, 1, tzinfo=dt.UTC)


class Named(Protocol):
    @property
    def id(self) -> uuid.UUID: ...

    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


def not_ours() -> InvalidCursor:
    return InvalidCursor("Use the next_cursor of a previous page")


def cursor_id(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise not_ours()
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise not_ours() from exc


def cursor_text(value: Any, *, max_length: int) -> str:
    if not isinstance(value, str) or len(value) > max_length or "\x00" in value:
        raise not_ours()
    return value


def cursor_moment(value: Any) -> dt.datetime:
    """An ISO 8601 time with an offset, as UTC, within the years a row of ours can carry."""
    if not isinstance(value, str) or len(value) > 64:
        raise not_ours()
    try:
        moment = dt.datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise not_ours()
        moment = moment.astimezone(dt.UTC)
    except (ValueError, OverflowError) as exc:  # not a time, or one that leaves the calendar in UTC
        raise not_ours() from exc
    if not CURSOR_EARLIEST <= moment < CURSOR_LATEST:
        raise not_ours()
    return moment


def cursor_money(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_MONEY:
        raise not_ours()
    return value


def cursor_rating(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 5:
        raise not_ours()
    return float(value)


def name_cursor_after(cursor: str | None) -> tuple[str, uuid.UUID] | None:
    """Where a listing by name (categories, brands) resumes."""
    if cursor is None:
        return None
    name, last_id = decode_cursor(cursor, length=2)
    return cursor_text(name, max_length=SHORT_NAME_LENGTH), cursor_id(last_id)


def name_page(rows: Sequence[T], limit: int) -> tuple[Sequence[T], str | None]:
    """The page out of `limit + 1` rows, and a cursor when the extra row shows that more follow."""
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor([last.name, str(last.id)])
