"""The one tenant-scope mechanism: every ORM statement of a scoped session sees one tenant only.

A session is opened for a tenant (`Database.session(tenant_id=...)`); from then on every ORM
SELECT, UPDATE and DELETE on a `TenantScoped` entity gets `tenant_id = :tenant` added, and every
new row is stamped with it. A row of another tenant cannot enter the session (added, merged or
deleted), so the unit of work never writes, deletes or reloads one. A session opened without a
tenant refuses every ORM statement (select, update, delete), so a query cannot forget the scope;
textual SQL (`text()`) is outside the scope, which is why services may not use it (the table walk's
static check). Only kernel infrastructure that spans tenants by design (the outbox relay) opens an
explicitly unscoped session.
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, Insert, String, Table, Text, bindparam, event, insert, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column, with_loader_criteria
from sqlalchemy.sql.base import Executable

from amazonlite.platform.errors import BadRequest

TENANT_KEY = "tenant_id"
UNSCOPED = "*unscoped*"
DEFAULT_TENANT = "default"
TENANT_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


class InvalidTenant(BadRequest):
    type = "invalid-tenant"
    title = "The tenant id is not valid"


class TenantScopeMissing(RuntimeError):
    """A scoped entity was queried in a session that names no tenant: a programming error."""


def validate_tenant_id(value: str) -> str:
    if not TENANT_PATTERN.fullmatch(value):
        raise InvalidTenant("A tenant id is 1-64 lowercase letters, digits and inner hyphens")
    return value


class TenantScoped:
    """Mixin for every table row that belongs to a tenant (that is, every row)."""

    tenant_id: Mapped[str] = mapped_column(String(64), index=True)


def _session_tenant(session: Session) -> str:
    tenant = session.info.get(TENANT_KEY)
    if tenant is None:
        raise TenantScopeMissing("this session names no tenant; open it with tenant_id=...")
    return str(tenant)


@event.listens_for(Session, "do_orm_execute")
def _scope_statements(state: ORMExecuteState) -> None:
    tenant = state.session.info.get(TENANT_KEY)
    if state.is_column_load or state.is_relationship_load:
        # The parent load was scoped, and its criterion came along (a selectin load, a refresh):
        # give it the tenant it names.
        if tenant not in (None, UNSCOPED):
            state.parameters = _with_tenant(state.parameters, tenant)
        return
    if state.is_insert:
        # Bulk ORM inserts bypass the flush that stamps and checks rows: add rows with session.add.
        if tenant != UNSCOPED and _touches_scoped(state):
            raise TenantScopeMissing("add tenant rows with session.add(), not an insert() statement")
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if tenant is None:
        # Every query, not only those whose entities are scoped: a count or an EXISTS can name a
        # scoped table without selecting an entity of it, and would see every tenant.
        raise TenantScopeMissing("this session names no tenant; open it with tenant_id=...")
    if tenant == UNSCOPED:
        return
    # Added to every statement, not only those that select an entity: a count or an EXISTS over
    # a scoped table selects no entity but must see one tenant only. It is inert elsewhere.
    state.statement = _scoped(state.statement)
    state.parameters = _with_tenant(state.parameters, tenant)


# The criterion names the tenant as a bound parameter, given with each execution, not as a value
# captured in the lambda: one criterion for every tenant, with no closure for SQLAlchemy to
# re-evaluate per execution (which cost ~0.2 ms of CPU per statement, once per scoped entity in it).
TENANT_PARAMETER = "amazonlite_tenant_scope"
# (The name is spelled in the lambda: SQLAlchemy tracks the variables a criterion's lambda reads.)
_CRITERIA = with_loader_criteria(TenantScoped, lambda cls: cls.tenant_id == bindparam("amazonlite_tenant_scope"),
                                 include_aliases=True)
# The scoped form of a statement, per statement object. A statement a repository builds once (with
# bound parameters) and executes many times is then the same object each time, and so is its
# scoped form: SQLAlchemy computes its cache key once (memoized on the object) instead of on every
# execution. Weak keys: a statement built for one call, and its scoped form, go with it.
_SCOPED: weakref.WeakKeyDictionary[Executable, Executable] = weakref.WeakKeyDictionary()


def _scoped(statement: Any) -> Any:
    try:
        scoped = _SCOPED.get(statement)
    except TypeError:  # not weakly referenceable: scope it afresh
        return statement.options(_CRITERIA)
    if scoped is None:
        scoped = _SCOPED[statement] = statement.options(_CRITERIA)
    return scoped


def _with_tenant(parameters: Any, tenant: str) -> Any:
    if not parameters:
        return {TENANT_PARAMETER: tenant}
    if isinstance(parameters, Mapping):
        return {**parameters, TENANT_PARAMETER: tenant}
    return [{**row, TENANT_PARAMETER: tenant} for row in parameters]  # executemany: each row


_INSERTS: weakref.WeakKeyDictionary[Table, Insert] = weakref.WeakKeyDictionary()


def insert_statement(table: Table) -> Insert:
    """One insert statement per table, built once: its cache key is computed once, not per use."""
    statement = _INSERTS.get(table)
    if statement is None:
        statement = _INSERTS[table] = insert(table)
    return statement


Rows = Sequence[Mapping[str, Any]]


async def insert_together(session: AsyncSession, inserts: Sequence[tuple[type[TenantScoped] | Table, Rows]]) -> None:
    """Insert new rows into one or more tables at once: for write paths where the unit of work's
    flush (objects, identity map, events) costs more than the rows. The rows never enter the session
    (nothing to refresh or flush later); every row of one table names the same columns, and columns
    they leave out take their defaults.

    Rows of a tenant class are stamped with the session's tenant, and a row naming another tenant
    is refused, as a flush refuses it; rows of a plain table (the kernel's outbox) go as given.

    On PostgreSQL it is one statement whatever the tables and row counts: each table's rows go as
    one array per column (`unnest`), the inserts after the first as data-modifying CTEs, so the SQL
    is the same for any number of rows (prepared once) and the whole write is one round trip.
    Elsewhere, one multi-row insert per table."""
    prepared = [(target.__table__ if isinstance(target, type) else target,  # type: ignore[attr-defined]
                 _stamped(session, target, rows)) for target, rows in inserts if rows]
    if not prepared:
        return
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        with_defaults = [(table, _with_defaults(table, rows)) for table, rows in prepared]
        if all(rows is not None for _table, rows in with_defaults):
            statement, parameters = _unnest_insert(session.bind.dialect, with_defaults)  # type: ignore[arg-type]
            await session.execute(statement, parameters)
            return
    for table, rows in prepared:
        await session.execute(insert_statement(table), rows[0] if len(rows) == 1 else list(rows))


def _stamped(session: AsyncSession, target: type[TenantScoped] | Table, rows: Rows) -> Rows:
    if not (isinstance(target, type) and issubclass(target, TenantScoped)):
        return rows
    tenant = _session_tenant(session.sync_session)
    if tenant == UNSCOPED:
        raise TenantScopeMissing("insert tenant rows in a session of their tenant")
    stamped = []
    for row in rows:
        current = row.get(TENANT_KEY)
        if current is not None and current != tenant:
            raise TenantScopeMissing(f"row of tenant {current!r} inserted in a session of {tenant!r}")
        stamped.append({**row, TENANT_KEY: tenant})
    return stamped


def _with_defaults(table: Table, rows: Rows) -> Rows | None:
    """The rows with the Python-side defaults of the columns they leave out (as a Core insert
    would add them); None when one is a SQL expression, which only a Core insert renders."""
    missing = [column for column in table.columns if column.name not in rows[0] and column.default is not None]
    if not missing:
        return rows
    defaults: list[tuple[str, Any]] = []
    for column in missing:
        default: Any = column.default
        if default.is_callable:
            defaults.append((column.name, default.arg))
        elif default.is_scalar:
            defaults.append((column.name, lambda _ctx, value=default.arg: value))
        else:
            return None
    return [{**row, **{name: make(None) for name, make in defaults}} for row in rows]


_UNNEST: dict[tuple[Any, ...], Any] = {}


def _unnest_insert(dialect: Any, inserts: Sequence[tuple[Table, Rows]]) -> tuple[Any, dict[str, Any]]:
    """One statement inserting every table's rows (PostgreSQL), and its parameters."""
    signature = tuple((table, tuple(rows[0])) for table, rows in inserts)
    statement = _UNNEST.get(signature)
    if statement is None:
        quote = dialect.identifier_preparer
        parts: list[str] = []
        binds: list[Any] = []
        for table, columns in signature:
            arrays = []
            for name in columns:
                key = f"u{len(binds)}"
                column_type = table.c[name].type
                # A JSON value goes as its text: an array of JSON lists would read as a deeper array.
                element = Text() if isinstance(column_type, JSON) else column_type
                binds.append(bindparam(key, type_=ARRAY(element)))
                arrays.append(f"CAST(:{key} AS {column_type.compile(dialect=dialect)}[])")
            # Names from the table's own metadata, quoted by the dialect; every value is bound.
            parts.append(f"INSERT INTO {quote.format_table(table)} ({', '.join(quote.quote(n) for n in columns)}) "  # noqa: S608
                         f"SELECT * FROM unnest({', '.join(arrays)})")
        *first, last = parts
        ctes = ", ".join(f"w{number} AS ({part})" for number, part in enumerate(first))
        statement = _UNNEST[signature] = text(f"WITH {ctes} {last}" if ctes else last).bindparams(*binds)
    parameters: dict[str, Any] = {}
    for (table, columns), (_same, rows) in zip(signature, inserts, strict=True):
        for name in columns:
            values = [row[name] for row in rows]
            column_type = table.c[name].type
            if isinstance(column_type, JSON):  # as SQLAlchemy's JSON type stores it
                serialize = dialect._json_serializer or json.dumps
                values = [None if value is None and column_type.none_as_null else serialize(value)
                          for value in values]
            parameters[f"u{len(parameters)}"] = values
    return statement, parameters


def _touches_scoped(state: ORMExecuteState) -> bool:
    return any(issubclass(mapper.class_, TenantScoped) for mapper in state.all_mappers)


# PostgreSQL's row-level security is the second wall: every transaction of a session tells the
# database its tenant, and each tenant table's policy (`enable_row_level_security` in the service's
# migrations) shows and accepts only that tenant's rows, even to a statement that escaped the scope
# above. `*` is the kernel's own cross-tenant work (the outbox relay); unset means no rows at all.
TENANT_SETTING = "app.tenant_id"


@event.listens_for(Session, "after_begin")
def _tell_postgres_the_tenant(session: Session, _transaction: Any, connection: Any) -> None:
    if connection.dialect.name != "postgresql":
        return
    tenant = session.info.get(TENANT_KEY)
    if tenant is None:
        return
    connection.execute(_SET_TENANT, {"name": TENANT_SETTING, "value": "*" if tenant == UNSCOPED else tenant})


_SET_TENANT = text("SELECT set_config(:name, :value, true)")


@event.listens_for(Session, "before_attach")
def _refuse_rows_of_other_tenants(session: Session, instance: object) -> None:
    """A row loaded elsewhere (another session, another tenant) cannot be added, merged into or
    deleted through this session: its flush or refresh would reach past the scope by primary key."""
    if not isinstance(instance, TenantScoped):
        return
    tenant = session.info.get(TENANT_KEY)
    current = instance.__dict__.get("tenant_id")  # not the attribute: no load from here
    if tenant in (None, UNSCOPED) or current is None:
        return  # a new row is stamped at flush; a tenant-less session refuses everything anyway
    if current != tenant:
        raise TenantScopeMissing(f"a row of tenant {current!r} cannot join a session of {tenant!r}")


@event.listens_for(Session, "before_flush")
def _stamp_new_rows(session: Session, _ctx: Any, _instances: Any) -> None:
    scoped_new = [obj for obj in session.new if isinstance(obj, TenantScoped)]
    scoped_dirty = [obj for obj in session.dirty if isinstance(obj, TenantScoped)]
    scoped_deleted = [obj for obj in session.deleted if isinstance(obj, TenantScoped)]
    if not scoped_new and not scoped_dirty and not scoped_deleted:
        return
    tenant = _session_tenant(session)
    for obj in scoped_new:
        current = getattr(obj, "tenant_id", None)
        if tenant == UNSCOPED:
            if not current:
                raise TenantScopeMissing("an unscoped session must set tenant_id on new rows itself")
            continue
        if current and current != tenant:
            raise TenantScopeMissing(f"row of tenant {current!r} added in a session of {tenant!r}")
        obj.tenant_id = tenant
    if tenant == UNSCOPED:
        return
    for obj in scoped_dirty:
        if obj.tenant_id != tenant:
            raise TenantScopeMissing("a row may not move to another tenant")
    for obj in scoped_deleted:
        if obj.tenant_id != tenant:
            raise TenantScopeMissing(f"a row of tenant {obj.tenant_id!r} cannot be deleted in a session of {tenant!r}")
