from __future__ import annotations

import socket
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from amazonlite.platform.config import PlatformSettings, ServiceSettings


class SearchSettings(ServiceSettings):
    """`AMAZONLITE_SEARCH_*`."""

    service_name: ClassVar[str] = "search"

    # tantivy: an index on disk per replica, each following the events itself (its own consumer
    # group); postgres: one index in the service's PostgreSQL database, shared by every replica.
    backend: Literal["tantivy", "postgres"] = "tantivy"
    # Where this replica keeps its tantivy index; default: <data dir>/search-index/<replica>.
    index_dir: Path | None = None
    # This replica's name (its index directory and its consumer group with tantivy).
    replica: str = Field(default_factory=socket.gethostname, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
    # Products read per page of the catalog's listing when an index is rebuilt.
    rebuild_page_size: int = Field(default=100, ge=1, le=100)

    def consumer_group(self) -> str | None:
        return f"search-{self.replica}" if self.backend == "tantivy" else "search"

    def index_path(self, platform: PlatformSettings) -> Path:
        return (self.index_dir or platform.data_dir / "search-index" / self.replica).resolve()
