"""Every table of every service carries `tenant_id` and is scoped by the kernel, and every method of
every repository keeps to its session's tenant: walked over the tables and methods themselves, with
real rows of several tenants in a real database (SQLite and PostgreSQL), so that a new table or a
new repository method cannot escape the walk.

Tenants: A and B own one row of every table each, with equal natural keys (emails, slugs, SKUs,
token hashes, user ids) and their own ids; C owns nothing, so anything a session of C sees came from
another tenant. A static check keeps service code from going around the scope (raw SQL, engines,
connections, unscoped sessions) except where an allowlist says why.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import importlib
import inspect
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, exists, func, select, text, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import InvalidRequestError

import amazonlite.services
from amazonlite.platform.db import create_engine
from amazonlite.platform.tenancy import UNSCOPED, TenantScoped, TenantScopeMissing
from amazonlite.services.catalog.repository import ProductQuery
from amazonlite.services.users.models import ENCRYPTED_ADDRESS_FIELDS
from amazonlite.topology import SERVICE_NAMES
from tests.platform import tenant_walk_cart, tenant_walk_inventory, tenant_walk_orders, tenant_walk_payments
from tests.platform.tenant_walk import (
    KERNEL_TABLES,
    OPTIONAL_KERNEL_TABLES,
    TENANTLESS,
    Add,
    Call,
    Delete,
    Flush,
    Insert,
    MigratedDatabases,
    Plan,
    PlatformAdd,
    PlatformRead,
    Read,
    Rows,
    ServiceTables,
    Statement,
    World,
    Write,
    attribute,
    build,
    captured,
    column_value,
    every_scoped_table,
    every_table,
    foreign,
    is_empty,
    later,
    new_tenant,
    service_tables,
    tenant_tables_named,
    unscoped,
)

BACKENDS = [pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MigratedDatabases]:
    with ExitStack() as stack:
        yield MigratedDatabases(stack, tmp_path_factory.mktemp("walk"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(migrated: MigratedDatabases, backend: str, service: str) -> str:
    return migrated.url(backend, service)


@pytest.fixture
async def world(database_url: str, service: str) -> AsyncIterator[World]:
    opened = await World.open(service, database_url)
    try:
        yield opened
    finally:
        await opened.close()


# The tables -------------------------------------------------------------------------------------

class TestEveryTableHasATenant:
    def test_the_tenantless_allowlist_is_exactly_the_tables_without_tenant_id(self) -> None:
        without = {(s, t.name) for s in SERVICE_NAMES for t in service_tables(s).without_tenant()}
        assert without == set(TENANTLESS)

    @pytest.mark.parametrize("service", SERVICE_NAMES)
    def test_the_allowlist_agrees_with_the_platform_tables_the_service_declares(self, service: str) -> None:
        models = importlib.import_module(f"amazonlite.services.{service}.models")
        declared = set(getattr(models, "PLATFORM_TABLES", ()))
        assert declared == {t for s, t in TENANTLESS if s == service}

    @pytest.mark.parametrize("service", SERVICE_NAMES)
    def test_every_tenant_table_is_a_tenant_scoped_class_or_a_kernel_messaging_table(self, service: str) -> None:
        tables = service_tables(service)
        for table in tables.tables:
            if table.name in tables.mappers:
                scoped = issubclass(tables.cls(table.name), TenantScoped)
                assert scoped == ("tenant_id" in table.c), f"{table.name}: TenantScoped iff it has tenant_id"
        unmapped = {t.name for t in tables.tables if t.name not in tables.mappers}
        assert KERNEL_TABLES <= unmapped <= KERNEL_TABLES | OPTIONAL_KERNEL_TABLES, \
            "only the kernel's tables go without an ORM class"

    @pytest.mark.parametrize(("service", "table"), [st for st in every_table() if st not in TENANTLESS])
    async def test_the_migrated_table_has_a_non_null_tenant_id(self, database_url: str, service: str,
                                                               table: str) -> None:
        declared = service_tables(service).table(table)
        assert "tenant_id" in declared.c
        assert declared.c.tenant_id.nullable is False
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                columns = await conn.run_sync(lambda sync: sa_inspect(sync).get_columns(table))
        finally:
            await engine.dispose()
        assert {c["name"]: c["nullable"] for c in columns}["tenant_id"] is False


# The kernel's scope, table by table ---------------------------------------------------------------

def _pk(tables: ServiceTables, table: str) -> Any:
    [column] = tables.table(table).primary_key.columns
    return getattr(tables.cls(table), attribute(tables.mappers[table], column))


def _plain_column(tables: ServiceTables, table: str) -> Any:
    """The first column that is no key and no tenant: the one the walk changes."""
    for column in tables.table(table).columns:
        if not column.primary_key and not column.foreign_keys and column.name != "tenant_id":
            return column
    raise AssertionError(f"{table} has no plain column to change")


async def _load(world: World, table: str, rows: Rows) -> Any:
    """A row of `rows`' tenant, loaded in its own session (so detached from it afterwards)."""
    async with world.db.session(tenant_id=rows.tenant) as session:
        obj = await session.get(world.tables.cls(table), rows.identity(world.tables, table))
    assert obj is not None
    return obj


@pytest.mark.parametrize(("service", "table"), every_scoped_table())
class TestTheKernelScopesEveryTable:
    async def test_a_session_of_a_reads_only_the_rows_of_a(self, world: World, table: str) -> None:
        tables, cls = world.tables, world.tables.cls(table)
        async with world.db.session(tenant_id=world.a.tenant) as session:
            found = (await session.scalars(select(cls))).all()
            assert [sa_inspect(o).identity for o in found] == [world.a.identity(tables, table)]
            assert await session.scalar(select(func.count()).select_from(cls)) == 1
            assert await session.get(cls, world.b.identity(tables, table)) is None
            [b_id] = world.b.identity(tables, table)
            assert await session.scalar(select(cls).where(_pk(tables, table) == b_id)) is None
        async with world.db.session(tenant_id=world.c) as session:
            assert (await session.scalars(select(cls))).all() == []

    async def test_updates_in_a_session_of_a_leave_the_rows_of_b(self, world: World, table: str) -> None:
        tables, cls = world.tables, world.tables.cls(table)
        column = _plain_column(tables, table)
        key = attribute(tables.mappers[table], column)
        changed = column_value(column, seed="changed", now=world.now + dt.timedelta(days=7))
        [b_id] = world.b.identity(tables, table)
        before = await world.snapshot(world.b.tenant)
        async with world.db.session(tenant_id=world.a.tenant) as session:
            targeted = await session.execute(update(cls).where(_pk(tables, table) == b_id).values({key: changed}))
            everything = await session.execute(update(cls).values({key: changed}))
        assert (targeted.rowcount, everything.rowcount) == (0, 1)
        assert await world.snapshot(world.b.tenant) == before
        async with world.db.session(tenant_id=world.a.tenant) as session:
            assert await session.scalar(select(getattr(cls, key))) == changed

    async def test_deletes_in_a_session_of_a_leave_the_rows_of_b(self, world: World, table: str) -> None:
        tables, cls = world.tables, world.tables.cls(table)
        [b_id] = world.b.identity(tables, table)
        before = await world.snapshot(world.b.tenant)
        async with world.db.session(tenant_id=world.a.tenant) as session:
            for dependent in tables.dependents(table):
                await session.execute(delete(tables.cls(dependent.name)))
            targeted = await session.execute(delete(cls).where(_pk(tables, table) == b_id))
            everything = await session.execute(delete(cls))
        assert (targeted.rowcount, everything.rowcount) == (0, 1)
        assert await world.snapshot(world.b.tenant) == before
        assert (await world.snapshot(world.a.tenant))[table] == []

    async def test_a_session_that_names_no_tenant_refuses_the_table(self, world: World, table: str) -> None:
        tables, cls = world.tables, world.tables.cls(table)
        key = attribute(tables.mappers[table], _plain_column(tables, table))
        [a_id] = world.a.identity(tables, table)
        statements: dict[str, Any] = {
            "select": select(cls),
            "select a column": select(getattr(cls, key)),
            "count": select(func.count()).select_from(cls),
            "exists": select(exists().where(_pk(tables, table) == a_id)),
            "update": update(cls).values({key: getattr(cls, key)}),
            "delete": delete(cls).where(_pk(tables, table) == a_id),
        }
        ran = []
        async with world.db.sessionmaker() as session:
            for name, statement in statements.items():
                try:
                    await session.execute(statement)
                except TenantScopeMissing:
                    continue
                ran.append(f"{name}: {statement}")
            with pytest.raises(TenantScopeMissing):
                await session.get(cls, world.a.identity(tables, table))
            session.add(cls(**build(tables, table, parents=world.a.by_table, seed="1", now=world.now)))
            with pytest.raises(TenantScopeMissing):
                await session.flush()
        assert ran == [], "a session that names no tenant ran these across every tenant"

    async def test_a_row_of_b_changed_in_a_session_of_a_is_refused(self, world: World, table: str) -> None:
        column = _plain_column(world.tables, table)
        key = attribute(world.tables.mappers[table], column)
        row_of_b = await _load(world, table, world.b)
        before = await world.snapshot(world.b.tenant)

        async def change() -> None:
            async with world.db.session(tenant_id=world.a.tenant) as session:
                session.add(row_of_b)
                setattr(row_of_b, key, column_value(column, seed="changed", now=world.now + dt.timedelta(days=7)))

        with pytest.raises(TenantScopeMissing):
            await change()
        assert await world.snapshot(world.b.tenant) == before

    async def test_a_row_of_another_tenant_deleted_in_a_session_of_a_stays(self, world: World, table: str) -> None:
        """A row of another tenant that reached a session of A (a detached object: from a cache, from
        another unit of work) must not be deleted by A's unit of work. (The row is a leaf of a
        tenant of its own, so that no foreign key stops the delete in the row's stead.)"""
        other = new_tenant("e")
        spare = await world.seed(other, only=world.tables.ancestors(table) | {table})
        row = await _load(world, table, spare)
        before = await world.snapshot(other)
        with contextlib.suppress(TenantScopeMissing):
            async with world.db.session(tenant_id=world.a.tenant) as session:
                await session.delete(row)
        assert await world.snapshot(other) == before, f"a session of A deleted another tenant's row of {table}"

    async def test_a_row_of_b_is_not_reloaded_in_a_session_of_a(self, world: World, table: str) -> None:
        """A row of B that reached a session of A must not be refreshed from B's current data."""
        tables, cls = world.tables, world.tables.cls(table)
        column = _plain_column(tables, table)
        key = attribute(tables.mappers[table], column)
        row_of_b = await _load(world, table, world.b)
        secret = column_value(column, seed="secret", now=world.now + dt.timedelta(days=9))
        async with world.db.session(tenant_id=world.b.tenant) as session:
            await session.execute(update(cls).values({key: secret}))
        with contextlib.suppress(TenantScopeMissing, InvalidRequestError):
            async with world.db.session(tenant_id=world.a.tenant) as session:
                session.add(row_of_b)
                await session.refresh(row_of_b)
        assert row_of_b.__dict__.get(key) != secret, f"a session of A read B's current {table}.{column.name}"


POSTGRES_ONLY = [pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("backend", POSTGRES_ONLY)
@pytest.mark.parametrize(("service", "table"), every_table())
async def test_postgres_forces_row_level_security_on_exactly_the_tenant_tables(world: World, service: str,
                                                                               table: str) -> None:
    async with world.db.engine.connect() as conn:
        flags = (await conn.execute(text(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = to_regclass(:name)"),
            {"name": f'public."{table}"'})).one()
        policies = await conn.scalar(text("SELECT count(*) FROM pg_policies WHERE tablename = :name"), {"name": table})
    tenant_table = (service, table) not in TENANTLESS
    assert (flags.relrowsecurity, flags.relforcerowsecurity, policies > 0) == (tenant_table,) * 3


@pytest.mark.parametrize("backend", POSTGRES_ONLY)
@pytest.mark.parametrize(("service", "table"), [st for st in every_table() if st not in TENANTLESS])
async def test_postgres_shows_raw_sql_of_a_plain_role_only_the_session_tenant(world: World, migrated: MigratedDatabases,
                                                                             table: str) -> None:
    """The second wall, table by table: SQL that escaped the ORM scope, run as a role that is bound by
    row-level security (the service's own role in production), sees and changes one tenant."""
    if table in KERNEL_TABLES | OPTIONAL_KERNEL_TABLES:
        await world.seed_kernel(table)
    role = text(f'SET LOCAL ROLE "{migrated.plain_role}"')
    async with world.db.session(tenant_id=world.a.tenant) as session:
        await session.execute(role)
        seen = set((await session.scalars(text(f'SELECT tenant_id FROM "{table}"'))).all())
        changed = (await session.execute(text(f'UPDATE "{table}" SET tenant_id = tenant_id'))).rowcount
    assert seen == {world.a.tenant}
    assert changed == len((await world.snapshot(world.a.tenant))[table]) > 0
    async with world.db.session(tenant_id=world.c) as session:
        await session.execute(role)
        assert await session.scalar(text(f'SELECT count(*) FROM "{table}"')) == 0
    async with world.db.engine.begin() as conn:  # names no tenant
        await conn.execute(role)
        assert await conn.scalar(text(f'SELECT count(*) FROM "{table}"')) == 0


# Every repository method -----------------------------------------------------------------------

def _catalog_page(r: Any, t: Rows, w: World) -> Any:
    return r.page(ProductQuery(sort="newest", limit=10, status=t.products.status, category_ids=[t.categories.id],
                               brand_id=t.brands.id, min_price=0, max_price=t.products.min_price))


def _encrypted(t: Rows) -> dict[str, Any]:
    return {column: t["addresses"][column] for column in ENCRYPTED_ADDRESS_FIELDS.values()}


# How to call each public method of each repository class, by service, class and method. A method
# missing here fails `test_every_repository_method_has_a_plan`, and so does a plan for a method gone.
PLANS: dict[str, dict[str, dict[str, Plan]]] = {
    "tenants": {
        "TenantRepository": {
            "get": Read(lambda r, t, w: r.get(t.tenants.tenant_id)),
            "page": Read(lambda r, t, w: r.page(limit=10, after=None)),
            "add_if_absent": Add("tenants"),
            "flush": Flush(),
        },
    },
    "auth": {
        "UserRepository": {
            "get": Read(lambda r, t, w: r.get(t.users.id)),
            "by_email": Read(lambda r, t, w: r.by_email(t.users.email)),
            "add": Add("users"),
        },
        "RefreshTokenRepository": {
            "by_hash": Read(lambda r, t, w: r.by_hash(t.refresh_tokens.token_hash)),
            "by_hash_for_update": Read(lambda r, t, w: r.by_hash_for_update(t.refresh_tokens.token_hash)),
            "family": Read(lambda r, t, w: r.family(t.refresh_token_families.id)),
            "add_family": Add("refresh_token_families"),
            "add": Add("refresh_tokens"),
            "spend": Write(lambda r, t, w: r.spend(t.refresh_tokens.id, w.now)),
            "revoke_family": Write(lambda r, t, w: r.revoke_family(t.refresh_token_families.id, w.now)),
            "revoke_user_families": Write(lambda r, t, w: r.revoke_user_families(t.users.id, w.now)),
            "revoked_since": Read(lambda r, t, w: r.revoked_since(w.now - dt.timedelta(days=1)),
                                  prepare=lambda r, t, w: r.revoke_family(t.refresh_token_families.id, w.now)),
            "prune_expired": Write(lambda r, t, w: r.prune_expired(later(w))),
        },
        "EmailTokenRepository": {
            "add": Add("email_tokens"),
            "by_hash": Read(lambda r, t, w: r.by_hash(t.email_tokens.token_hash, t.email_tokens.purpose)),
            "spend": Write(lambda r, t, w: r.spend(t.email_tokens.id, w.now)),
            "spend_all": Write(lambda r, t, w: r.spend_all(t.users.id, t.email_tokens.purpose, w.now)),
            "prune_expired": Write(lambda r, t, w: r.prune_expired(later(w))),
        },
        "OAuthRepository": {
            "add_request": Add("oauth_requests"),
            "request_by_state": Read(lambda r, t, w: r.request_by_state(t.oauth_requests.provider,
                                                                        t.oauth_requests.state_hash)),
            "spend_request": Write(lambda r, t, w: r.spend_request(t.oauth_requests.id, w.now)),
            "identity": Read(lambda r, t, w: r.identity(t.oauth_identities.provider, t.oauth_identities.subject)),
            "identity_of_user": Read(lambda r, t, w: r.identity_of_user(t.oauth_identities.provider, t.users.id)),
            "add_identity": Add("oauth_identities"),
            "prune_requests": Write(lambda r, t, w: r.prune_requests(later(w))),
        },
        "RevokedAccessTokenRepository": {
            "get": Read(lambda r, t, w: r.get(t.revoked_access_tokens.jti)),
            "add_if_absent": Add("revoked_access_tokens"),
            "unexpired": Read(lambda r, t, w: r.unexpired(w.now)),
            "prune_expired": Write(lambda r, t, w: r.prune_expired(later(w))),
        },
        "SigningKeyRepository": {
            "active": PlatformRead(lambda r, t, w: r.active()),
            "add": PlatformAdd("signing_keys"),
        },
    },
    "users": {
        "ProfileRepository": {
            "get": Read(lambda r, t, w: r.get(t.profiles.id)),
            "lock": Read(lambda r, t, w: r.lock(t.profiles.id)),
            "add": Add("profiles"),
        },
        "AddressRepository": {
            "all_of": Read(lambda r, t, w: r.all_of(t.addresses.user_id)),
            "get": Read(lambda r, t, w: r.get(t.addresses.user_id, t.addresses.id)),
            "count": Read(lambda r, t, w: r.count(t.addresses.user_id)),
            "default": Read(lambda r, t, w: r.default(t.addresses.user_id)),
            "newest": Read(lambda r, t, w: r.newest(t.addresses.user_id)),
            "add": Add("addresses"),
            "delete": Delete("addresses"),
            "encrypted_batch": Read(lambda r, t, w: r.encrypted_batch(after=None, limit=10)),
            "replace_encrypted": Write(lambda r, t, w: r.replace_encrypted(
                t.addresses.id, old=_encrypted(t), new={"name_encrypted": "rewritten"}, updated_at=w.now)),
        },
        "PreferencesRepository": {
            "get": Read(lambda r, t, w: r.get(t.preferences.user_id)),
            "add": Add("preferences"),
        },
    },
    "catalog": {
        "CategoryRepository": {
            "get": Read(lambda r, t, w: r.get(t.categories.id)),
            "lock": Read(lambda r, t, w: r.lock(t.categories.id)),
            "share": Read(lambda r, t, w: r.share(t.categories.id)),
            "slugs_like": Read(lambda r, t, w: r.slugs_like(t.categories.slug)),
            "slug_taken": Read(lambda r, t, w: r.slug_taken(t.categories.slug)),
            "page": Read(lambda r, t, w: r.page(limit=10, after=None)),
            "parents": Read(lambda r, t, w: r.parents()),
            "lock_many": Read(lambda r, t, w: r.lock_many([t.categories.id])),
            "all": Read(lambda r, t, w: r.all()),
            "definitions": Read(lambda r, t, w: r.definitions([t.categories.id])),
            "in_use": Read(lambda r, t, w: r.in_use(t.categories.id)),
            "add": Add("categories"),
            "delete": Delete("categories"),
        },
        "BrandRepository": {
            "get": Read(lambda r, t, w: r.get(t.brands.id)),
            "lock": Read(lambda r, t, w: r.lock(t.brands.id)),
            "share": Read(lambda r, t, w: r.share(t.brands.id)),
            "slugs_like": Read(lambda r, t, w: r.slugs_like(t.brands.slug)),
            "slug_taken": Read(lambda r, t, w: r.slug_taken(t.brands.slug)),
            "page": Read(lambda r, t, w: r.page(limit=10, after=None)),
            "in_use": Read(lambda r, t, w: r.in_use(t.brands.id)),
            "named": Read(lambda r, t, w: r.named([t.brands.name])),
            "add": Add("brands"),
            "delete": Delete("brands"),
        },
        "ProductRepository": {
            "document": Read(lambda r, t, w: r.document(t.products.id)),
            "documents": Read(lambda r, t, w: r.documents([t.products.id])),
            "rate": Write(lambda r, t, w: r.rate(t.products.id, average=4.5, count=2, as_of=later(w))),
            "page": Read(_catalog_page),
            "lock": Read(lambda r, t, w: r.lock(t.products.id)),
            "lock_in_categories": Read(lambda r, t, w: r.lock_in_categories([t.categories.id])),
            "index_attributes": Write(lambda r, t, w: r.index_attributes(
                t.products.id, [("walk", "rewritten")], replace=True)),
            "lock_of_brand": Read(lambda r, t, w: r.lock_of_brand(t.brands.id)),
            "slugs_like": Read(lambda r, t, w: r.slugs_like(t.products.slug)),
            "slug_taken": Read(lambda r, t, w: r.slug_taken(t.products.slug)),
            "skus_taken": Read(lambda r, t, w: r.skus_taken([t.variants.sku])),
            "slugs_taken": Read(lambda r, t, w: r.slugs_taken([t.products.slug])),
            "slugs_like_any": Read(lambda r, t, w: r.slugs_like_any([t.products.slug])),
            "owners_of_skus": Read(lambda r, t, w: r.owners_of_skus([t.variants.sku])),
            "any": Read(lambda r, t, w: r.any()),
            "skus": Read(lambda r, t, w: r.skus([t.variants.sku], active_only=False)),
            "add": Add("products"),
            "delete": Delete("products"),
        },
    },
    "inventory": tenant_walk_inventory.PLANS,
    "cart": tenant_walk_cart.PLANS,
    "orders": tenant_walk_orders.PLANS,
    "payments": tenant_walk_payments.PLANS,
}


def repository_classes(service: str) -> dict[str, type]:
    """The classes `services/<service>/repository.py` defines (none if it has no such module)."""
    try:
        module = importlib.import_module(f"amazonlite.services.{service}.repository")
    except ModuleNotFoundError:
        return {}
    return {name: value for name, value in vars(module).items()
            if inspect.isclass(value) and value.__module__ == module.__name__ and name.endswith("Repository")}


def public_methods(cls: type) -> set[str]:
    return {name for name, value in vars(cls).items() if not name.startswith("_") and callable(value)}


def every_repository_method() -> list[tuple[str, str, str]]:
    return [(service, name, method) for service in SERVICE_NAMES
            for name, cls in sorted(repository_classes(service).items()) for method in sorted(public_methods(cls))]


def test_every_repository_method_has_a_plan() -> None:
    methods = {(s, c, m) for s, c, m in every_repository_method()}
    planned = {(s, c, m) for s, classes in PLANS.items() for c, plans in classes.items() for m in plans}
    assert methods - planned == set(), "teach the walk to call these (PLANS in test_tenant_scope_walk.py)"
    assert planned - methods == set(), "plans for methods that are gone"


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_every_service_with_tables_keeps_its_queries_in_repository_classes(service: str) -> None:
    if service_tables(service).mappers:
        assert repository_classes(service), f"{service} maps tables but has no repository class"


async def _call(world: World, tenant: str, repository: str, method: str, run: Callable[[Any], Any]
                ) -> tuple[Any, list[Statement]]:
    """`run(repository)` in a session of `tenant`, committed: what it returned, and every statement
    it sent."""
    cls = repository_classes(world.tables.service)[repository]
    with captured(world.db.engine) as statements:
        async with world.db.session(tenant_id=tenant) as session:
            result = run(cls(session))
            if inspect.isawaitable(result):
                result = await result
    return result, statements


def _naming_tenant_tables(statements: list[Statement], tables: ServiceTables) -> list[str]:
    return [s.sql for s in statements if tenant_tables_named(s, tables)]


@pytest.mark.parametrize(("service", "repository", "method"), every_repository_method())
async def test_the_repository_method_keeps_to_its_tenant(world: World, service: str, repository: str,
                                                         method: str) -> None:
    plan = PLANS.get(service, {}).get(repository, {}).get(method)
    assert plan is not None, f"no plan for {repository}.{method}: teach the walk how to call it"
    tables, a, b, c = world.tables, world.a, world.b, world.c
    b_before = await world.snapshot(b.tenant)
    b_values = b.identifying_values(tables)

    def invoke(call: Call, target: Rows) -> Callable[[Any], Any]:
        return lambda repo: call(repo, target, world)

    match plan:
        case Read(call, prepare):
            if prepare is not None:
                for rows in (a, b):
                    await _call(world, rows.tenant, repository, method, invoke(prepare, rows))
                b_before = await world.snapshot(b.tenant)
            result, sent = await _call(world, c, repository, method, invoke(call, b))
            assert is_empty(result), f"a session of C (which owns nothing) got {result!r}"
            assert unscoped(sent, tables=tables, tenant=c) == []
            result, sent = await _call(world, a.tenant, repository, method, invoke(call, b))
            assert foreign(result, tenant=a.tenant, foreign_values=b_values) == []
            assert unscoped(sent, tables=tables, tenant=a.tenant) == []
            result, sent = await _call(world, a.tenant, repository, method, invoke(call, a))
            assert not is_empty(result), "aimed at A's rows in A's session, it found nothing"
            assert foreign(result, tenant=a.tenant, foreign_values=b_values) == []
            assert unscoped(sent, tables=tables, tenant=a.tenant) == []
        case Write(call):
            result, sent = await _call(world, c, repository, method, invoke(call, b))
            assert is_empty(result), f"a session of C (which owns nothing) got {result!r}"
            assert unscoped(sent, tables=tables, tenant=c) == []
            assert await world.snapshot(b.tenant) == b_before
            a_before = await world.snapshot(a.tenant)
            _, sent = await _call(world, a.tenant, repository, method, invoke(call, a))
            assert await world.snapshot(a.tenant) != a_before, "aimed at A's rows in A's session, it changed nothing"
            assert unscoped(sent, tables=tables, tenant=a.tenant) == []
            assert await world.snapshot(b.tenant) == b_before
            result, sent = await _call(world, a.tenant, repository, method, invoke(call, b))
            assert foreign(result, tenant=a.tenant, foreign_values=b_values) == []
            assert unscoped(sent, tables=tables, tenant=a.tenant) == []
        case Add(table):
            d = new_tenant("d")
            parents = await world.seed(d, only=tables.ancestors(table))
            row = tables.cls(table)(**build(tables, table, parents=parents.by_table, seed="0", now=world.now))
            _, sent = await _call(world, d, repository, method, lambda repo: getattr(repo, method)(row))
            assert row.tenant_id == d
            assert len((await world.snapshot(d))[table]) == 1
            assert unscoped(sent, tables=tables, tenant=d) == []
            foreign_row = tables.cls(table)(**build(tables, table, parents=parents.by_table, seed="1", now=world.now),
                                            tenant_id=b.tenant)
            with pytest.raises(TenantScopeMissing):
                await _call(world, d, repository, method, lambda repo: getattr(repo, method)(foreign_row))
        case Insert(table, insert):
            d = new_tenant("d")
            parents = await world.seed(d, only=tables.ancestors(table))
            values = build(tables, table, parents=parents.by_table, seed="0", now=world.now)
            _, sent = await _call(world, d, repository, method, lambda repo: insert(repo, values))
            inserted = (await world.snapshot(d))[table]
            assert len(inserted) == 1
            assert unscoped(sent, tables=tables, tenant=d) == []
            foreign_values = {**build(tables, table, parents=parents.by_table, seed="1", now=world.now),
                              "tenant_id": b.tenant}
            with pytest.raises(TenantScopeMissing):
                await _call(world, d, repository, method, lambda repo: insert(repo, foreign_values))
            assert (await world.snapshot(d))[table] == inserted
        case Delete(table):
            async with world.db.session(tenant_id=a.tenant) as session:
                assert await session.get(tables.cls(table), b.identity(tables, table)) is None
            leaf = await world.seed(a.tenant, only={table}, seed="leaf", parents=a)

            async def delete_leaf(repo: Any) -> Any:
                loaded = await repo.session.get(tables.cls(table), leaf.identity(tables, table))
                assert loaded is not None
                return await getattr(repo, method)(loaded)

            _, sent = await _call(world, a.tenant, repository, method, delete_leaf)
            assert await _count(world, a.tenant, table) == 1, "A's leaf row is gone, A's first stays"
            assert unscoped(sent, tables=tables, tenant=a.tenant) == []
        case Flush():
            _, sent = await _call(world, a.tenant, repository, method, lambda repo: getattr(repo, method)())
            assert unscoped(sent, tables=tables, tenant=a.tenant) == []
        case PlatformRead(call):
            for tenant in (a.tenant, c):
                result, sent = await _call(world, tenant, repository, method, invoke(call, a))
                assert not is_empty(result)
                assert _naming_tenant_tables(sent, tables) == []
        case PlatformAdd(table):
            row = world.platform_row(table, seed="1")
            _, sent = await _call(world, a.tenant, repository, method, lambda repo: getattr(repo, method)(row))
            assert _naming_tenant_tables(sent, tables) == []
    assert await world.snapshot(b.tenant) == b_before


async def _count(world: World, tenant: str, table: str) -> int:
    return len((await world.snapshot(tenant))[table])


# Nothing goes around the scope ------------------------------------------------------------------

SERVICES_ROOT = Path(amazonlite.services.__file__).parent

# Names that reach the database around the ORM's tenant scope: raw SQL, Core tables, the engine, a
# connection, a session without a tenant. Imported from SQLAlchemy, used as an attribute, or named.
RAW_SQL_IMPORTS = frozenset({"text", "literal_column", "TextClause", "Table", "table", "column", "exec_driver_sql"})
RAW_ATTRIBUTES = frozenset({
    "exec_driver_sql", "connection", "connect", "get_bind", "bind", "engine", "sync_engine", "sync_session",
    "sync_connection", "raw_connection", "driver_connection", "dbapi_connection", "sessionmaker", "__table__",
    "tables", "outbox", "inbox", "dead_letters", "text", "literal_column",
})

SEARCH_INDEX_SQL = ("the PostgreSQL search engine's own index tables, outside the ORM (a read model it creates and "
                   "rebuilds): every statement names the tenant, and tests/services/search/test_engines.py checks "
                   "that searches, facets, suggestions and counts keep to it")

# Where service code may use one of them, how many times, and why. Exact: a new use fails until it is
# listed here with its reason, and a listed use that is gone fails too.
ALLOWED_BYPASSES: dict[tuple[str, str], tuple[int, str]] = {
    ("auth/commands.py", "UNSCOPED"): (2, "start-up: signing keys are platform-wide (a tenantless table), "
                                          "created then loaded"),
    ("auth/revocations.py", "UNSCOPED"): (1, "the revocations in force of every tenant are mirrored into the "
                                             "revocation store (at start and every 30 s)"),
    ("auth/tasks.py", "UNSCOPED"): (1, "the hourly prune drops expired tokens and sign-ins of every tenant"),
    ("catalog/repository.py", ".get_bind"): (1, "reads the dialect's name (SQLite has no row locks); "
                                                "no SQL goes through the bind"),
    ("catalog/importing.py", ".__table__"): (1, "reads the column names a bulk insert's rows carry; the rows "
                                                 "go through insert_together, which stamps the session's tenant"),
    ("search/commands.py", ".engine"): (1, "hands the service's database engine to the PostgreSQL search "
                                           "engine, which keeps its index there (see postgres_engine.py)"),
    **{("search/engine/postgres_engine.py", name): (count, SEARCH_INDEX_SQL) for name, count in (
        (".connect", 3), (".text", 13), ("import Table", 1), ("import column", 1), ("import literal_column", 1),
        ("import text", 1))},
    **{(f"search/engine/{module}.py", ".text"): (count, "the text of a word or suggestion (a field of the "
                                                        "engine's own data classes), not SQL")
       for module, count in (("analysis", 2), ("base", 2), ("tantivy_engine", 3))},
    ("tenants/auth.py", "UNSCOPED"): (2, "platform admins (of the default tenant, checked before the session "
                                         "opens) manage every tenant's row"),
    ("tenants/commands.py", "UNSCOPED"): (3, "ensure_tenant creates a tenant's row before any session of that "
                                             "tenant can exist; the operator's `tenants list/activate/suspend` "
                                             "work across tenants, as a platform admin does"),
    ("users/commands.py", "UNSCOPED"): (1, "PII key rotation re-encrypts the addresses of every tenant"),
    ("cart/tasks.py", "UNSCOPED"): (1, "the guest-cart sweeper (cart.expire_guest_carts) deletes guest carts "
                                       "past their idle time in every tenant"),
    ("inventory/tasks.py", "UNSCOPED"): (1, "the expiry sweeper lists the expired reservations of every tenant, "
                                            "then releases each in a unit of work of its own tenant"),
    ("orders/tasks.py", "UNSCOPED"): (1, "the deadline sweeper lists the overdue orders of every tenant, then "
                                         "cancels each in a unit of work of its own tenant"),
    ("payments/tasks.py", "UNSCOPED"): (2, "the capture job and the sandbox's redelivery list the payments due "
                                           "in every tenant, then act on each in a unit of work of its own tenant"),
}


def scope_bypasses(root: Path = SERVICES_ROOT) -> Counter[tuple[str, str]]:
    """Each use of a name that goes around the scope, by module (relative to `root`) and name."""
    found: Counter[tuple[str, str]] = Counter()
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if "/migrations/" in f"/{relative}":
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                found.update((relative, f"import {a.name}") for a in node.names if a.name in RAW_SQL_IMPORTS)
            elif isinstance(node, ast.Attribute) and node.attr in RAW_ATTRIBUTES:
                found[relative, f".{node.attr}"] += 1
            elif isinstance(node, ast.Name) and node.id == "UNSCOPED":
                found[relative, "UNSCOPED"] += 1
            elif isinstance(node, ast.Constant) and node.value == UNSCOPED:
                found[relative, repr(UNSCOPED)] += 1
    return found


def test_no_service_code_goes_around_the_tenant_scope() -> None:
    assert dict(scope_bypasses()) == {key: count for key, (count, _reason) in ALLOWED_BYPASSES.items()}


def test_the_bypass_check_finds_each_way_around_the_scope(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "repository.py").write_text(
        "from sqlalchemy import text\n"
        "from amazonlite.platform.tenancy import UNSCOPED\n"
        "async def everything(session, db, Order):\n"
        "    await session.execute(text('SELECT * FROM orders'))\n"
        "    await (await session.connection()).exec_driver_sql('DELETE FROM orders')\n"
        "    await session.execute(Order.__table__.select())\n"
        "    async with db.session(tenant_id=UNSCOPED):\n"
        "        pass\n"
        "    async with db.session(tenant_id='*unscoped*'):\n"
        "        pass\n")
    (tmp_path / "shop" / "migrations").mkdir()
    (tmp_path / "shop" / "migrations" / "v1.py").write_text("from sqlalchemy import text\n")
    assert set(scope_bypasses(tmp_path)) == {
        ("shop/repository.py", "import text"), ("shop/repository.py", ".connection"),
        ("shop/repository.py", ".exec_driver_sql"), ("shop/repository.py", ".__table__"),
        ("shop/repository.py", "UNSCOPED"), ("shop/repository.py", "'*unscoped*'"),
    }
