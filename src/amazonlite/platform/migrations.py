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
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config

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
    ensure_sqlite_directory(url)
    command.upgrade(alembic_config(service, migrations, url), revision)


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
