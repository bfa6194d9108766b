"""Every service's migrations: one head, upgrade from empty on SQLite, PostgreSQL and MariaDB, and
the migrated schema is exactly what the models declare. (That every table but the allowlisted ones
has a non-null tenant_id is walked in test_tenant_scope_walk.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from amazonlite.platform.db import create_engine
from amazonlite.platform.migrations import heads, upgrade, version_table
from amazonlite.topology import SERVICE_NAMES, load_service


def schema_differences(url: str, service: str, metadata: MetaData) -> list[Any]:
    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={
            "version_table": version_table(service), "compare_type": True, "compare_server_default": False,
        })
        return list(compare_metadata(context, metadata))

    async def run() -> list[Any]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(compare)
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.mark.parametrize("service", SERVICE_NAMES)
class TestMigrations:
    def test_the_history_has_exactly_one_head(self, service: str) -> None:
        assert len(heads(service, load_service(service).migrations)) == 1

    def test_upgrade_from_empty_gives_exactly_the_models_schema(self, service: str, any_database_url: str) -> None:
        module = load_service(service)
        upgrade(service, module.migrations, any_database_url)
        assert schema_differences(any_database_url, service, module.metadata) == []
