from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from amazonlite.platform.config import ServiceSettings


class CatalogSettings(ServiceSettings):
    """`AMAZONLITE_CATALOG_*`."""

    service_name: ClassVar[str] = "catalog"

    # Active products' documents are kept (Redis, or memory without one) this long; 0 turns it off.
    product_cache_ttl_seconds: int = Field(default=300, ge=0, le=86_400)
    # Without Redis: at most this many products kept in the process (the least recently read go).
    product_cache_max_entries: int = Field(default=10_000, ge=1, le=10_000_000)
    # A Redis call slower than this is abandoned and the database answers instead.
    product_cache_timeout_ms: int = Field(default=250, ge=10, le=5_000)
