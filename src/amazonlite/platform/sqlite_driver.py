"""SQLite statements in one thread hop each.

aiosqlite runs each SQLite connection in a thread of its own and hands it every call through a
queue: one hop there and one back (a future resolved across threads, the event loop woken). The
cursor SQLAlchemy's aiosqlite adapter uses makes four such calls per statement (open a cursor,
execute, fetch, close), and in the embedded topology every unit of work of every service runs its
statements through them on the one event loop: a checkout's saga spends about as much of the loop
on those hand-offs as on its SQL. `OneHopCursor` does the four in the connection's thread in one
call and keeps what the statement returned (description, row count, last row id, rows), as the
adapter's own cursor keeps the rows.

The same SQLite connection runs the same statements in the same order, so transactions, locking and
errors are as before (an error raised in the thread reaches the adapter's own error translation).
Server-side cursors (`stream()`) keep SQLAlchemy's cursor. `install()` points the adapter's
connection class at this cursor; `platform.db.create_engine` calls it for every SQLite engine (they
are all ours in a process).
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection, AsyncAdapt_aiosqlite_cursor
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

Outcome = tuple[Any, int, int | None, list[Any]]


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> Outcome:
    """In the connection's thread: the whole statement, cursor to close."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:  # no aiosqlite cursor: nothing to open
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass  # the rows are all fetched already

    async def _async_soft_close(self) -> None:
        return None  # closed in the connection's thread already

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            return await_(self._statement(operation, parameters, many=False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            return await_(self._statement(operation, seq_of_parameters, many=True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _statement(self, operation: str, parameters: Any, *, many: bool) -> None:
        async with self._adapt_connection._execute_mutex:
            outcome: Outcome = await self._connection._execute(
                _run, self._connection._conn, operation, parameters, many)
        self._description, self._rowcount, self._lastrowid, rows = outcome
        self._rows = collections.deque(rows)


def install() -> None:
    AsyncAdapt_aiosqlite_connection._cursor_cls = OneHopCursor
