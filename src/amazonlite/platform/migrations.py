"""Alembic, one history per service, each with its own version table.

A service's `migrations/env.py` is two lines: import its `Base`, call `run_env(Base.metadata)`.
`upgrade()` runs a service's history to head on any supported database; it is synchronous
(Alembic is) and opens its own event loop, so async callers run it in a thread.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

from alembic import command, context, op
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import async_engine_from_config, create_async_engine

from amazonlite.platform.db import UTC, ensure_sqlite_directory
from amazonlite.platform.tenancy import TENANT_SETTING


def version_table(service: str) -> str:
    return f"alembic_version_{service}"


def alembic_config(service: str, migrations: Path, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    cfg.attributes["service"] = service
    return cfg


def upgrade(service: str, migrations: Path, url: str, revision: str = "head") -> None:
    """Raises `MissingDatabase` when the server has no such database (`create_database` makes it)."""
    ensure_sqlite_directory(url)
    try:
        command.upgrade(alembic_config(service, migrations, url), revision)
    except (DBAPIError, OSError) as exc:
        if _is_missing_database(exc):
            raise MissingDatabase(service, url) from exc
        raise


class MissingDatabase(RuntimeError):
    """The server is reachable but the service's database does not exist on it."""

    def __init__(self, service: str, url: str) -> None:
        parsed = make_url(url)
        self.service = service
        self.database = parsed.database or ""
        self.server = f"{parsed.get_backend_name()} at {parsed.host or 'localhost'}:{parsed.port or 'default port'}"
        super().__init__(f"the database {self.database!r} of the {service} service does not exist ({self.server})")


def _is_missing_database(exc: BaseException) -> bool:
    """PostgreSQL SQLSTATE 3D000 (asyncpg raises it unwrapped when connecting); MySQL error 1049."""
    for candidate in (exc, getattr(exc, "orig", None), getattr(getattr(exc, "orig", None), "__cause__", None)):
        if getattr(candidate, "sqlstate", None) == "3D000":
            return True
        args = getattr(candidate, "args", ())
        if args and args[0] == 1049:
            return True
    return False


def create_database(url: str) -> bool:
    """Create the database of a PostgreSQL or MySQL/MariaDB URL when it does not exist yet (the URL's
    role needs the right to create databases); True if it was created. SQLite files are created by
    `upgrade` itself. Synchronous, like `upgrade`."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    name = parsed.database or ""
    if backend == "sqlite" or not name:
        return False

    async def create() -> bool:
        if backend == "postgresql":
            engine = create_async_engine(parsed.set(database="postgres"), poolclass=pool.NullPool,
                                         isolation_level="AUTOCOMMIT")
            exists_sql = text("SELECT 1 FROM pg_database WHERE datname = :name")
            create_sql = 'CREATE DATABASE "{}"'.format(name.replace('"', '""'))
        elif backend in ("mysql", "mariadb"):
            engine = create_async_engine(parsed.set(database=""), poolclass=pool.NullPool,
                                         isolation_level="AUTOCOMMIT")
            exists_sql = text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :name")
            create_sql = "CREATE DATABASE `{}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci".format(
                name.replace("`", "``"))
        else:
            raise ValueError(f"cannot create a database on {backend}")
        try:
            async with engine.connect() as connection:
                if await connection.scalar(exists_sql, {"name": name}):
                    return False
                await connection.execute(text(create_sql))
                return True
        finally:
            await engine.dispose()

    return asyncio.run(create())


def heads(service: str, migrations: Path) -> list[str]:
    return list(ScriptDirectory.from_config(alembic_config(service, migrations, "sqlite://")).get_heads())


def enable_row_level_security(*tables: str) -> None:
    """In a migration's `upgrade()`: on PostgreSQL, let each table show and accept only the rows of
    the transaction's tenant (see `tenancy.TENANT_SETTING`). FORCE applies it to the table's owner
    too; a superuser or a BYPASSRLS role still bypasses it, so run services as a plain role."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
        op.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
        op.execute(f'CREATE POLICY tenant_isolation ON "{table}" USING ({_RLS_CHECK}) WITH CHECK ({_RLS_CHECK})')


def see_every_tenant() -> None:
    """In a migration that rewrites rows (a backfill): let it see and write every tenant's rows, as
    the kernel's own cross-tenant work does, for the rest of the migration's transaction."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(text(f"SELECT set_config('{TENANT_SETTING}', '*', true)"))


def disable_row_level_security(*tables: str) -> None:
    """The `downgrade()` of `enable_row_level_security`."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        op.execute(f'DROP POLICY IF EXISTS tenant_isolation ON "{table}"')
        op.execute(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
        op.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')


_RLS_CHECK = (f"tenant_id = current_setting('{TENANT_SETTING}', true) "
              f"OR current_setting('{TENANT_SETTING}', true) = '*'")


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    if type_ == "type" and isinstance(obj, UTC):
        autogen_context.imports.add("import amazonlite.platform.db")
        return "amazonlite.platform.db.UTC()"
    return False


def run_env(metadata: MetaData) -> None:
    """The body of every service's `env.py`."""
    config = context.config
    service = config.attributes.get("service") or metadata.info["service"]

    def configure(connection: Connection | None = None, url: str | None = None) -> None:
        context.configure(
            connection=connection, url=url, target_metadata=metadata,
            version_table=version_table(service), render_as_batch=True,
            compare_type=True, literal_binds=connection is None, render_item=_render_item,
        )

    if context.is_offline_mode():
        configure(url=config.get_main_option("sqlalchemy.url"))
        with context.begin_transaction():
            context.run_migrations()
        return

    def do_run(connection: Connection) -> None:
        configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = async_engine_from_config(config.get_section(config.config_ini_section, {}),
                                          prefix="sqlalchemy.", poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run_async())
