"""Unique and foreign-key violations that a concurrent request slipped past our checks, named by the
constraint the database enforced and answered as 409 problems, never 500s."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.platform.errors import AppError
from amazonlite.services.catalog.errors import CatalogConflict, DuplicateSku, DuplicateSlug

# The unique constraints by the names the metadata's naming convention gives them (as created by
# the migration), each with the problem a concurrent request that took the value first is told.
_UNIQUE_CONFLICTS: dict[str, Callable[[], AppError]] = {
    "uq_variants_tenant_id_sku": lambda: DuplicateSku("A SKU of this product was taken by a concurrent change"),
    **dict.fromkeys(
        ("uq_products_tenant_id_slug", "uq_categories_tenant_id_slug", "uq_brands_tenant_id_slug"),
        lambda: DuplicateSlug("The slug was taken by a concurrent change"),
    ),
}

_MYSQL_KEY = re.compile(r"for key '(?:[^']*\.)?([^'.]+)'$")  # the key's name ends MariaDB's message
_SQLITE_UNIQUE = "UNIQUE constraint failed: "  # then "table.column, table.column": no values


def violated_constraint(exc: IntegrityError) -> str | None:
    """The name of the constraint the database enforced, read from where each driver puts it and
    never from the values its message quotes (a slug may well contain "sku")."""
    error = exc.orig
    if error is None:
        return None
    name = getattr(error.__cause__, "constraint_name", None)  # asyncpg, under SQLAlchemy's adapter
    if isinstance(name, str):
        return name
    message = str(error.args[-1]) if error.args else ""
    if found := _MYSQL_KEY.search(message):
        return found.group(1)
    if message.startswith(_SQLITE_UNIQUE):  # SQLite names the columns: the convention gives the name
        columns = [part.partition(".") for part in message.removeprefix(_SQLITE_UNIQUE).split(", ")]
        tables = {table for table, _, _ in columns}
        if len(tables) == 1:
            return f"uq_{tables.pop()}_{'_'.join(column for _, _, column in columns)}"
    return None


async def flush(session: AsyncSession, otherwise: AppError | None = None) -> None:
    """Flush; a unique or foreign-key violation that a concurrent request slipped past our checks
    becomes a 409 problem, never a 500."""
    try:
        await session.flush()
    except IntegrityError as exc:
        conflict = _UNIQUE_CONFLICTS.get(violated_constraint(exc) or "")
        raise (conflict() if conflict else otherwise or CatalogConflict()) from exc
