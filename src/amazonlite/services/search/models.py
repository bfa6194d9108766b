"""The search service's tables: only the kernel's messaging tables. The index itself belongs to the
engine (`engine/`): tantivy's directory, or the PostgreSQL engine's own tables (`create_schema`),
a read model rebuilt from the catalog rather than migrated."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from amazonlite.platform.db import service_metadata
from amazonlite.platform.messaging import add_messaging_tables


class Base(DeclarativeBase):
    metadata = service_metadata("search")


MESSAGING = add_messaging_tables(Base.metadata)
