from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from amazonlite.platform.config import PiiKeySettings


class UsersSettings(PiiKeySettings):
    """`AMAZONLITE_USERS_*` (the address PII keys: `PiiKeySettings`)."""

    service_name: ClassVar[str] = "users"

    # Profiles read through Redis (distributed topology) for this long; 0 turns the cache off.
    profile_cache_ttl_seconds: int = Field(default=300, ge=0, le=86_400)
    # A Redis call slower than this is abandoned and the database answers instead.
    profile_cache_timeout_ms: int = Field(default=250, ge=10, le=5_000)
