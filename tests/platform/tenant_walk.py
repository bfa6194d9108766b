"""The machinery of the tenant-scope walk (`test_tenant_scope_walk.py`): every table of every service,
rows built from the column types for several tenants, snapshots of what a tenant owns, the SQL a
call sent, and what in a call's result belongs to another tenant."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

from sqlalchemy import JSON, Column, MetaData, Row, Table, event, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapper, Session
from sqlalchemy.types import TypeDecorator

from amazonlite.platform.db import Database, create_engine, utcnow
from amazonlite.platform.messaging import messaging_tables
from amazonlite.platform.migrations import upgrade
from amazonlite.platform.tenancy import UNSCOPED, TenantScoped
from amazonlite.topology import SERVICE_NAMES, load_service
from tests.support import servers

# Tables without a `tenant_id`, each with the reason. The walk checks this list is exact: a table
# missing the column that is not here fails, and so does an entry whose table has one or is gone.
TENANTLESS: dict[tuple[str, str], str] = {
    ("auth", "signing_keys"): "platform-wide: the access tokens of every tenant are signed by the same "
                              "keys, published at one JWKS endpoint",
}

# The kernel's messaging tables: Core tables with no ORM class, so the ORM scope does not reach
# them. Only the kernel writes them (the outbox stamps the session's tenant, the inbox and dead
# letters the event's); the relay and the dead-letter CLI read across tenants by design. Their
# walls are `tenant_id NOT NULL`, PostgreSQL row-level security and the static check that no
# service code touches them.
KERNEL_TABLES = frozenset({"outbox", "inbox", "dead_letters"})
# Kernel tables a service opts into, with the same walls: `idempotency_keys` (platform/idempotency.py,
# `add_idempotency_table`), written by the kernel in the request's tenant, purged across tenants.
OPTIONAL_KERNEL_TABLES = frozenset({"idempotency_keys"})

# Column values the generic builder cannot guess, each with the reason. Nullable columns are left
# NULL otherwise (a live token is unused, a key not retired), except foreign keys to another table.
OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    # `AddressRepository.default` finds the one address whose `is_default` is TRUE (never FALSE).
    ("users", "addresses"): {"is_default": True},
    # A guest cart (it expires; `get` reads it until then, the purges delete it once past).
    ("cart", "carts"): {"expires_at": dt.datetime(2030, 1, 1, tzinfo=dt.UTC)},
    # `used_by` counts the redemptions that took a use.
    ("cart", "coupon_redemptions"): {"outcome": "counted"},
}

LIFETIME = dt.timedelta(days=1)
_NATURAL_KEYS = uuid.UUID("6f0e2b54-7d1c-4b8e-9a55-0c2f1e1d9a01")


class MigratedDatabases:
    """A database of each service on each backend, migrated to head on first use and dropped with
    the stack; tests keep apart by using tenants of their own. On PostgreSQL, also a plain role
    (no superuser, no BYPASSRLS) that may read and write every table: row-level security binds it."""

    def __init__(self, stack: ExitStack, directory: Path) -> None:
        self.stack = stack
        self.directory = directory
        self.urls: dict[tuple[str, str], str] = {}
        self.plain_role = f"walk_{uuid.uuid4().hex[:10]}"
        self._role_created = False

    def url(self, backend: str, service: str) -> str:
        if (backend, service) not in self.urls:
            if backend == "sqlite":
                url = f"sqlite+aiosqlite:///{self.directory / f'{service}.sqlite3'}"
            else:
                self._create_role()
                url = self.stack.enter_context(servers.postgres_database())
            upgrade(service, load_service(service).migrations, url)
            if backend == "postgresql":
                asyncio.run(_execute(url, f'GRANT USAGE ON SCHEMA public TO "{self.plain_role}"',
                                     f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public '
                                     f'TO "{self.plain_role}"'))
            self.urls[backend, service] = url
        return self.urls[backend, service]

    def _create_role(self) -> None:
        if self._role_created:
            return
        admin = servers.PG_ADMIN_URL.replace("postgresql://", "postgresql+asyncpg://", 1)
        try:
            asyncio.run(_execute(admin, f'CREATE ROLE "{self.plain_role}" NOLOGIN NOSUPERUSER NOBYPASSRLS'))
        except Exception as exc:
            servers.unavailable("PostgreSQL", exc)
        self._role_created = True
        # Registered before any database, so it runs after they are all dropped (with the grants).
        self.stack.callback(lambda: asyncio.run(_execute(admin, f'DROP ROLE IF EXISTS "{self.plain_role}"')))


async def _execute(url: str, *statements: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def new_tenant(role: str) -> str:
    return f"walk-{role}-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class ServiceTables:
    """One service's tables, and the ORM class of each mapped one."""

    service: str
    metadata: MetaData
    mappers: Mapping[str, Mapper[Any]]

    @property
    def tables(self) -> list[Table]:
        return list(self.metadata.sorted_tables)

    def scoped(self) -> list[Table]:
        """The tables of `TenantScoped` ORM classes, parents before children."""
        return [t for t in self.tables if t.name in self.mappers and issubclass(self.cls(t.name), TenantScoped)]

    def with_tenant(self) -> list[Table]:
        return [t for t in self.tables if "tenant_id" in t.c]

    def without_tenant(self) -> list[Table]:
        return [t for t in self.tables if "tenant_id" not in t.c]

    def table(self, name: str) -> Table:
        return self.metadata.tables[name]

    def cls(self, table: str) -> type[Any]:
        return self.mappers[table].class_

    def dependents(self, table: str) -> list[Table]:
        """Scoped tables whose rows refer to `table`'s, directly or not; children before parents."""
        found: set[str] = set()
        frontier = {table}
        while frontier:
            refer = {t.name for t in self.scoped() for fk in t.foreign_keys
                     if fk.column.table.name in frontier and t.name != fk.column.table.name}
            frontier = refer - found
            found |= refer
        return [t for t in reversed(self.scoped()) if t.name in found and t.name != table]

    def ancestors(self, table: str) -> set[str]:
        """Tables `table`'s foreign keys need rows in, directly or not."""
        found: set[str] = set()
        frontier = {table}
        while frontier:
            refer = {fk.column.table.name for name in frontier for fk in self.table(name).foreign_keys}
            frontier = refer - found - {table}
            found |= refer
        return found - {table}


@cache
def service_tables(service: str) -> ServiceTables:
    metadata = load_service(service).metadata
    base = _declarative_base(importlib.import_module(f"amazonlite.services.{service}.models"), metadata)
    mappers = {m.local_table.name: m for m in base.registry.mappers if isinstance(m.local_table, Table)}
    return ServiceTables(service, metadata, mappers)


def _declarative_base(models: ModuleType, metadata: MetaData) -> type[DeclarativeBase]:
    bases = [v for v in vars(models).values()
             if isinstance(v, type) and issubclass(v, DeclarativeBase) and getattr(v, "metadata", None) is metadata]
    if not bases:
        raise AssertionError(f"{models.__name__} declares no DeclarativeBase on the service's metadata")
    return bases[0]


def every_table() -> list[tuple[str, str]]:
    return [(s, t.name) for s in SERVICE_NAMES for t in service_tables(s).tables]


def every_scoped_table() -> list[tuple[str, str]]:
    return [(s, t.name) for s in SERVICE_NAMES for t in service_tables(s).scoped()]


# Rows -------------------------------------------------------------------------------------------

def attribute(mapper: Mapper[Any], column: Column[Any]) -> str:
    return mapper.get_property_by_column(column).key


def column_value(column: Column[Any], *, seed: str, now: dt.datetime) -> Any:
    """A value for `column` from its type. Equal for equal seeds (so two tenants' rows share their
    natural keys: emails, slugs, SKUs, token hashes, user ids), except a primary key: always new."""
    type_ = column.type.impl_instance if isinstance(column.type, TypeDecorator) else column.type
    try:
        python_type = dict if isinstance(type_, JSON) else type_.python_type
    except NotImplementedError:
        python_type = None
    length = getattr(type_, "length", None)
    if python_type is uuid.UUID:
        if column.primary_key:
            return uuid.uuid4()
        return uuid.uuid5(_NATURAL_KEYS, f"{column.table.name}.{column.name}.{seed}")
    if python_type is str:
        text = uuid.uuid4().hex if column.primary_key else f"{column.name}-{seed}"
        return text[:length] if length else text
    if python_type is bool:
        return True
    if python_type is int:
        return 4200
    if python_type is float:
        return 4.2
    if python_type is dt.datetime:
        return now + LIFETIME
    if python_type is dict:
        return {"walk": seed}
    raise AssertionError(f"the walk cannot build a value for {column.table.name}.{column.name} "
                         f"({column.type!r}): teach tests/platform/tenant_walk.py:column_value")


def build(tables: ServiceTables, table: str, *, parents: Mapping[str, Mapping[str, Any]], seed: str,
          now: dt.datetime) -> dict[str, Any]:
    """Attribute values for a new row of `table` (no `tenant_id`: the session stamps it); foreign
    keys point at `parents` (a tenant's rows by table)."""
    mapper = tables.mappers[table]
    overrides = OVERRIDES.get((tables.service, table), {})
    values: dict[str, Any] = {}
    for column in tables.table(table).columns:
        if column.name == "tenant_id":
            continue
        if column.name in overrides:
            values[attribute(mapper, column)] = overrides[column.name]
            continue
        references = [fk.column for fk in column.foreign_keys]
        if references and references[0].table.name != table:
            target = references[0]
            values[attribute(mapper, column)] = parents[target.table.name][target.name]
            continue
        if column.nullable and not column.primary_key:
            continue
        if references:
            raise AssertionError(f"{table}.{column.name} refers to its own table and is required: "
                                 "teach the walk to build it")
        values[attribute(mapper, column)] = column_value(column, seed=seed, now=now)
    return values


def column_values(tables: ServiceTables, table: str, obj: Any) -> dict[str, Any]:
    mapper = tables.mappers[table]
    return {c.name: getattr(obj, attribute(mapper, c)) for c in tables.table(table).columns}


@dataclass
class Rows:
    """One tenant's rows of a service, by table: `rows.users.id`, `rows["users"]["email"]`."""

    tenant: str
    by_table: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __getitem__(self, table: str) -> dict[str, Any]:
        return self.by_table[table]

    def __getattr__(self, table: str) -> Any:
        try:
            return SimpleNamespace(**self.by_table[table])
        except KeyError:
            raise AttributeError(table) from None

    def identity(self, tables: ServiceTables, table: str) -> tuple[Any, ...]:
        return tuple(self.by_table[table][c.name] for c in tables.table(table).primary_key.columns)

    def identifying_values(self, tables: ServiceTables) -> set[Any]:
        """Values that only this tenant's rows hold: the tenant id and every primary key."""
        values: set[Any] = {self.tenant}
        for table in self.by_table:
            values.update(self.identity(tables, table))
        return values


@dataclass
class World:
    """A migrated database of one service, with the rows of tenants A and B (equal natural keys,
    their own ids), a tenant C that owns nothing, and the platform-wide rows."""

    tables: ServiceTables
    db: Database
    now: dt.datetime
    a: Rows
    b: Rows
    c: str

    @classmethod
    async def open(cls, service: str, url: str) -> World:
        tables = service_tables(service)
        db = Database(url, service=service, messaging=messaging_tables(tables.metadata))
        now = utcnow()
        world = cls(tables, db, now, Rows(new_tenant("a")), Rows(new_tenant("b")), new_tenant("c"))
        await world.seed_platform()
        world.a = await world.seed(world.a.tenant)
        world.b = await world.seed(world.b.tenant)
        return world

    async def close(self) -> None:
        await self.db.dispose()

    @property
    def tenants(self) -> set[str]:
        return {self.a.tenant, self.b.tenant, self.c}

    async def seed(self, tenant: str, *, only: set[str] | None = None, seed: str = "0",
                   parents: Rows | None = None) -> Rows:
        """One row of every scoped table (or of those in `only`), through the ORM in a session of
        `tenant`, foreign keys to that tenant's own rows (`parents` first, then those made here)."""
        rows = Rows(tenant, dict(parents.by_table) if parents else {})
        made = Rows(tenant)
        async with self.db.session(tenant_id=tenant) as session:
            for table in self.tables.scoped():
                if only is not None and table.name not in only:
                    continue
                obj = self.tables.cls(table.name)(**build(self.tables, table.name, parents=rows.by_table,
                                                          seed=seed, now=self.now))
                session.add(obj)
                await session.flush()
                rows.by_table[table.name] = made.by_table[table.name] = column_values(self.tables, table.name, obj)
        return made

    def platform_row(self, table: str, *, seed: str) -> Any:
        """A new row of a tenantless table."""
        mapper = self.tables.mappers[table]
        return mapper.class_(**{attribute(mapper, c): column_value(c, seed=seed, now=self.now)
                                for c in self.tables.table(table).columns if not c.nullable or c.primary_key})

    async def seed_platform(self) -> None:
        async with self.db.session(tenant_id=UNSCOPED) as session:
            session.add_all([self.platform_row(t.name, seed="0") for t in self.tables.without_tenant()])

    async def seed_kernel(self, table: str) -> None:
        """A row of A and one of B in a kernel messaging table, written as the kernel does (Core)."""
        kernel_table = self.tables.table(table)
        columns = [c for c in kernel_table.columns
                   if c.name != "tenant_id" and not c.nullable and c is not kernel_table.autoincrement_column]
        async with self.db.session(tenant_id=UNSCOPED) as session:
            for tenant in (self.a.tenant, self.b.tenant):
                values = {c.name: column_value(c, seed=tenant, now=self.now) for c in columns}
                await session.execute(insert(kernel_table).values(tenant_id=tenant, **values))

    async def snapshot(self, tenant: str) -> dict[str, list[str]]:
        """Every row `tenant` owns in every table of the service, read around the scope."""
        found: dict[str, list[str]] = {}
        async with self.db.engine.connect() as conn:
            for table in self.tables.with_tenant():
                rows = (await conn.execute(select(table).where(table.c.tenant_id == tenant))).all()
                found[table.name] = sorted(repr(tuple(row)) for row in rows)
        return found


# What a call sent and returned -----------------------------------------------------------------

@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: tuple[Any, ...]
    # Sent by a session's unit of work (a flush), not by a statement the code executed.
    flushed: bool = False


@contextmanager
def captured(engine: AsyncEngine) -> Iterator[list[Statement]]:
    """Every statement sent to the database inside the block, with its parameters."""
    statements: list[Statement] = []
    flushing: list[bool] = [False]

    def record(_conn: Any, _cursor: Any, sql: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append(Statement(sql, tuple(_flatten(parameters)), flushed=flushing[0]))

    def flush_starts(*_args: Any) -> None:
        flushing[0] = True

    def flush_ends(*_args: Any) -> None:
        flushing[0] = False

    listeners = [(engine.sync_engine, "before_cursor_execute", record), (Session, "before_flush", flush_starts),
                 (Session, "after_flush_postexec", flush_ends), (Session, "after_soft_rollback", flush_ends)]
    for target, name, listener in listeners:
        event.listen(target, name, listener)
    try:
        yield statements
    finally:
        for target, name, listener in listeners:
            event.remove(target, name, listener)


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _flatten(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


_TENANT_PREDICATE = re.compile(r"\btenant_id\s*=\s*(?:\?|\$\d+|%\(\w+\)s|:\w+)")


def tenant_tables_named(statement: Statement, tables: ServiceTables) -> list[str]:
    return [t.name for t in tables.with_tenant() if re.search(rf"\b{t.name}\b", statement.sql)]


def unscoped(statements: list[Statement], *, tables: ServiceTables, tenant: str) -> list[str]:
    """The statements on tenant tables that do not carry `tenant`: an insert needs the tenant's id,
    a read, change or delete a `tenant_id = <tenant>` predicate per tenant table it names. A unit of
    work's own UPDATE or DELETE goes by primary key, of a row the session holds: that the row is of
    the session's tenant is the kernel's check on the object, walked table by table."""
    problems = []
    for statement in statements:
        touched = tenant_tables_named(statement, tables)
        verb = statement.sql.lstrip().split(None, 1)[0].upper() if statement.sql.strip() else ""
        if not touched or (statement.flushed and verb in ("UPDATE", "DELETE")):
            continue
        if tenant not in statement.parameters:
            problems.append(f"does not carry the tenant {tenant!r}: {statement.sql}")
        elif verb != "INSERT" and len(_TENANT_PREDICATE.findall(statement.sql)) < len(touched):
            problems.append(f"names {touched} with fewer tenant_id predicates: {statement.sql}")
    return problems


def foreign(value: Any, *, tenant: str, foreign_values: set[Any]) -> list[str]:
    """What in `value` (a call's result: rows, ORM objects and their loaded relations, collections,
    scalars) belongs to another tenant: a row of another tenant, or one of `foreign_values`."""
    found: list[str] = []
    seen: set[int] = set()

    def walk(item: Any) -> None:
        if id(item) in seen:
            return
        seen.add(id(item))
        if isinstance(item, TenantScoped):
            if item.__dict__.get("tenant_id") != tenant:
                found.append(f"{item!r} of tenant {item.__dict__.get('tenant_id')!r}")
            for key, attr in item.__dict__.items():
                if key != "_sa_instance_state":
                    walk(attr)
        elif isinstance(item, Row):
            walk(tuple(item))
        elif isinstance(item, Mapping):
            for key, attr in item.items():
                walk(key)
                walk(attr)
        elif isinstance(item, list | tuple | set | frozenset):
            for attr in item:
                walk(attr)
        elif isinstance(item, str | uuid.UUID) and item in foreign_values:
            found.append(f"{item!r}, a value of another tenant's row")
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            for key, attr in vars(item).items():
                if key != "_sa_instance_state":
                    walk(attr)

    walk(value)
    return found


def is_empty(value: Any) -> bool:
    if value is None or value is False or (isinstance(value, int) and value == 0):
        return True
    return isinstance(value, Mapping | list | tuple | set | frozenset) and len(value) == 0


# How the walk calls a repository method (PLANS in test_tenant_scope_walk.py) -----------------------

Call = Callable[[Any, Rows, World], Any]


@dataclass(frozen=True)
class Read:
    """Reads what `call(repository, target rows, world)` aims at: in C's session it finds nothing;
    in A's it finds A's rows and nothing of B, whatever it aims at. `prepare` first runs in A's and
    in B's session, on their own rows, to put them in the state the read looks for."""

    call: Call
    prepare: Call | None = None


@dataclass(frozen=True)
class Write:
    """Changes what `call` aims at: aimed at B from C's or A's session, no row of B changes; aimed
    at A from A's session, A's rows change."""

    call: Call


@dataclass(frozen=True)
class Add:
    """Adds a row of `table` (`repository.method(row)`): stamped with the session's tenant; a row
    that names another tenant is refused."""

    table: str


@dataclass(frozen=True)
class Delete:
    """Deletes a row of `table` the session loaded (`repository.method(row)`): a session of A
    cannot load B's to hand it over; A's goes, B's stays."""

    table: str


@dataclass(frozen=True)
class Flush:
    """Sends what the session holds; runs no query of its own."""


@dataclass(frozen=True)
class PlatformRead:
    """Reads a tenantless table (see `TENANTLESS`): names no tenant table."""

    call: Call


@dataclass(frozen=True)
class PlatformAdd:
    table: str


@dataclass(frozen=True)
class Insert:
    """Inserts a new row of `table` with one statement (`call(repository, values)`, the values without
    `tenant_id`): stamped with the session's tenant; a row that names another tenant is refused, and
    nothing of it is written."""

    table: str
    call: Callable[[Any, dict[str, Any]], Any]


Plan = Read | Write | Add | Insert | Delete | Flush | PlatformRead | PlatformAdd


def later(world: World) -> dt.datetime:
    """Long after every row the walk built: whatever expires has expired."""
    return world.now + dt.timedelta(days=3650)
