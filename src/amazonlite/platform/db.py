"""Databases: one async engine per service, sessions as units of work, declarative bases.

Each service declares its own `Base` on its own `MetaData` from `service_metadata()`; the
naming convention keeps constraint names stable across SQLite, PostgreSQL and MySQL, which
matters for migrations.
"""

from __future__ import annotations

import datetime as dt
import socket
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import DateTime, MetaData, Uuid, event, text
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import await_only
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random

from amazonlite.platform import sqlite_driver
from amazonlite.platform.errors import AppError
from amazonlite.platform.ids import new_id
from amazonlite.platform.outages import DEPENDENCIES, database_dependency
from amazonlite.platform.tenancy import TENANT_KEY

log = structlog.get_logger("amazonlite.db")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)




def _as_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


class UTC(TypeDecorator[dt.datetime]):
    """Stores UTC, returns aware UTC datetimes on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))  # keep microseconds
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use utcnow()")
        value = value.astimezone(dt.UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return _as_utc(value)


def service_metadata(service: str) -> MetaData:
    """A service's own MetaData: its tables, its migrations. Declare the base with it:

        class Base(DeclarativeBase):
            metadata = service_metadata("orders")
    """
    return MetaData(naming_convention=NAMING_CONVENTION, info={"service": service})


class IdPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)


class Timestamps:
    created_at: Mapped[dt.datetime] = mapped_column(UTC, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTC, default=utcnow, onupdate=utcnow)


def ensure_sqlite_directory(url: str) -> None:
    """Create the folder of a SQLite file URL, so a fresh data directory just works."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    parsed = make_url(url)
    # Parameters stay out of error messages and logs: they hold password hashes, emails, tokens.
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            kwargs["poolclass"] = NullPool
        ensure_sqlite_directory(url)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800)
        if parsed.get_backend_name() in ("mysql", "mariadb"):
            # As on PostgreSQL: each statement sees the latest commit and a locking read locks the
            # rows it returns, not index gaps (MySQL's REPEATABLE READ default does both otherwise).
            kwargs["isolation_level"] = "READ COMMITTED"
    if parsed.get_backend_name() == "sqlite":
        sqlite_driver.install()
    engine = create_async_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        _sqlite_pragmas(engine)
        _sqlite_savepoints_inside_the_transaction(engine)
    if parsed.get_backend_name() != "sqlite":
        _ping_only_idle_connections(engine)
    if engine.dialect.driver == "asyncpg":
        # Many rows of one INSERT go as one multi-row statement, as on psycopg and the other
        # drivers, rather than asyncpg's executemany (a bind and an execution per row): one
        # execution on the server, and a third less client time for the reservation path's writes.
        engine.dialect.use_insertmanyvalues_wo_returning = True
    return engine


# A pooled connection returned this recently is handed out again without a ping: it worked a moment
# ago. Should the database have restarted in that moment, the unit of work that gets it fails as
# an outage (and SQLAlchemy then replaces every pooled connection), as it would have had the
# database gone away just after the ping.
PING_IDLE_AFTER_S = 1.0


def _ping_only_idle_connections(engine: AsyncEngine) -> None:
    """The pool's pre-ping, for connections that sat idle: a consumer's unit of work or a request
    takes a connection back within milliseconds, and a ping there is one round trip more per unit.
    On asyncpg the ping is one round trip (an empty query): SQLAlchemy's own wraps it in BEGIN …
    ROLLBACK for pgbouncer's transaction mode, which we do not use. Errors are translated as
    SQLAlchemy's are, so a closed or terminated connection still counts as a disconnect and is
    replaced."""
    returned_at: dict[int, float] = {}
    dialect = engine.dialect
    ping = dialect.do_ping

    @event.listens_for(engine.sync_engine, "checkin")
    def _returned(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection is not None:
            returned_at[id(dbapi_connection)] = time.monotonic()

    @event.listens_for(engine.sync_engine, "close")
    def _closed(dbapi_connection: Any, _record: Any) -> None:
        returned_at.pop(id(dbapi_connection), None)

    def ping_if_idle(dbapi_connection: Any) -> bool:
        if time.monotonic() - returned_at.get(id(dbapi_connection), 0.0) < PING_IDLE_AFTER_S:
            return True
        if dialect.driver != "asyncpg":
            return ping(dbapi_connection)
        try:
            await_only(dbapi_connection._connection.fetchrow(";"))
        except Exception as error:
            dbapi_connection._handle_exception(error)
        return True

    dialect.do_ping = ping_if_idle  # type: ignore[method-assign]


# SQLSTATEs of a database that cannot be reached or will not take the connection: class 08
# (connection exception), shutdowns and start-ups (57P01-57P03), too many connections (53300), and a
# database not accepting connections (55000, from ALTER DATABASE ... ALLOW_CONNECTIONS false).
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300", "55000"})
# MySQL/MariaDB: cannot connect (2002, 2003), server gone or connection lost (2006, 2013), too many
# connections (1040), shutting down (1053).
_UNAVAILABLE_MYSQL_CODES = frozenset({2002, 2003, 2006, 2013, 1040, 1053})


def is_database_outage(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached or will not serve now (an outage, which
    passes), rather than that a statement is wrong: a driver error with a connection-class code, or
    the socket error a driver raises unwrapped when it cannot connect (asyncpg: ConnectionRefusedError,
    or socket.gaierror when the database's host name no longer resolves)."""
    if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        if isinstance(candidate, (ConnectionError, TimeoutError)):
            return True
        sqlstate = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(sqlstate, str) and (sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES):
            return True
        args = getattr(candidate, "args", ())
        if args and isinstance(args[0], int) and args[0] in _UNAVAILABLE_MYSQL_CODES:
            return True
    return False


# A transaction that lost a race the database resolves by aborting it: PostgreSQL's deadlock victim
# (40P01), serialization failure (40001) and lock not available (55P03, a NOWAIT or lock_timeout);
# MySQL/MariaDB's deadlock victim (1213) and lock wait timeout (1205). Done again, the same unit of
# work succeeds. A consumer does it again itself; a request answers 409 concurrent-update (http.py).
_CONFLICT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
_CONFLICT_MYSQL_CODES = frozenset({1213, 1205})


class TransientConflict(Exception):
    """Raised by a unit of work that found, half-way, that a concurrent one changed what it had read
    (a conditional update that no longer applies): roll back and do the whole unit again."""


def is_transient_conflict(exc: BaseException) -> bool:
    """Whether `exc` says the transaction lost a race and doing it again will do (a deadlock victim, a
    serialization failure, a lock wait timed out, SQLite's busy "database is locked", or a
    `TransientConflict`), rather than that the database is down or the statement is wrong."""
    if isinstance(exc, TransientConflict) or _is_locked(exc):
        return True
    if not isinstance(exc, DBAPIError) or exc.connection_invalidated:
        return False
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        if candidate is None:
            continue
        if _is_locked(candidate):
            return True
        sqlstate = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate in _CONFLICT_SQLSTATES:
            return True
        args = getattr(candidate, "args", ())
        if args and isinstance(args[0], int) and args[0] in _CONFLICT_MYSQL_CODES:
            return True
    return False


def _is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    # The driver begins a transaction at the first write, not at a read, so concurrent readers
    # never hold a snapshot that a writer's lock upgrade would have to break (WAL mode).
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        # Switching a fresh file to WAL needs it to itself, and SQLite answers "database is locked"
        # at once (no busy wait) when another connection opens it at that moment: processes
        # starting together on a new data directory retry for a while. The waits block this
        # process's event loop (a connect event is synchronous), which only ever happens while a
        # fresh data directory is being opened at start-up.
        for attempt in Retrying(retry=retry_if_exception(_is_locked), stop=stop_after_delay(30),
                                wait=wait_random(0.01, 0.1), reraise=True):
            with attempt:
                cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def _sqlite_savepoints_inside_the_transaction(engine: AsyncEngine) -> None:
    """The driver begins a transaction before a write statement only (see `_sqlite_pragmas`), and a
    SAVEPOINT is none: a savepoint (`session.begin_nested()`) that came before any write in its unit
    of work was itself the outermost transaction, and releasing it committed it, alone. A unit of work
    that then failed kept what the savepoint wrote (a webhook's receipt without its effect, so the
    webhook sent again was taken for a replay and its payment never moved). A transaction is begun
    before such a savepoint."""

    @event.listens_for(engine.sync_engine, "savepoint")
    def _begin_first(conn: Any, _name: str) -> None:
        if not getattr(conn.connection.driver_connection, "in_transaction", True):
            conn.exec_driver_sql("BEGIN")


AFTER_COMMIT = "after_commit"


def after_commit(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Run `callback` once the session's unit of work has committed (never if it rolls back).
    For effects outside the database that must not run ahead of the data, like dropping a cached
    copy: dropped before the commit, a concurrent read could cache the old row again. A failing
    callback is logged, not raised: the request's data is already committed."""
    session.info.setdefault(AFTER_COMMIT, []).append(callback)


class Database:
    """A service's engine and its sessions. `session()` is a unit of work: it commits on a clean
    exit and rolls back on an exception. Only the edge (a request, a consumer, a task) opens one.

    Each session knows its tenant (the scope), its service and its messaging tables (for the
    outbox); after a commit that wrote to the outbox, `on_outbox_commit` wakes the relay.
    """

    def __init__(self, url: str, *, service: str = "", messaging: Any = None, pool_size: int = 10,
                 echo: bool = False) -> None:
        self.url = url
        self.service = service
        self.engine = create_engine(url, pool_size=pool_size, echo=echo)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=True)
        self.dialect = self.engine.dialect.name
        self.messaging = messaging
        self.on_outbox_commit: Callable[[], None] | None = None

    @asynccontextmanager
    async def session(self, *, tenant_id: str) -> AsyncIterator[AsyncSession]:
        """Commit on a clean exit; roll back on an exception, except an `AppError` that
        `keeps_changes`: its work is committed (and its after-commit callbacks run), then it
        propagates, e.g. a reused refresh token revokes its family and still answers 401."""
        info = {TENANT_KEY: tenant_id, "producer": self.service, "messaging_tables": self.messaging}
        async with self.sessionmaker(info=info) as session:
            try:
                yield session
            except BaseException as exc:
                if not (isinstance(exc, AppError) and exc.keeps_changes):
                    await session.rollback()
                    raise
                await self._commit(session)
                raise
            await self._commit(session)

    async def _commit(self, session: AsyncSession) -> None:
        reached_the_database = session.in_transaction()  # a session that did nothing proves nothing
        try:
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        if reached_the_database:
            DEPENDENCIES.available(database_dependency(self.service))  # an outage it was in is over
        if session.info.get("outbox_written") and self.on_outbox_commit is not None:
            self.on_outbox_commit()
        for callback in session.info.pop(AFTER_COMMIT, ()):
            try:
                await callback()
            except Exception:
                log.exception("db.after_commit_failed", service=self.service)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
