"""What an operator reads: rows straight from a service's database, with plain SQL (no tenant
scope, no service in between), as someone holding the database's credentials or a backup would."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool


async def _query(database_url: str, sql: str, params: Mapping[str, Any] | None) -> list[Row[Any]]:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql), dict(params or {}))).all())
    finally:
        await engine.dispose()


def query(database_url: str, sql: str, params: Mapping[str, Any] | None = None) -> list[Row[Any]]:
    """The rows of `sql` on a service's database."""
    return asyncio.run(_query(database_url, sql, params))
