from __future__ import annotations

from typing import ClassVar

from amazonlite.platform.config import ServiceSettings


class UsersSettings(ServiceSettings):
    service_name: ClassVar[str] = "users"
