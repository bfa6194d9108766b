from __future__ import annotations

from typing import ClassVar

from amazonlite.platform.config import ServiceSettings


class CatalogSettings(ServiceSettings):
    service_name: ClassVar[str] = "catalog"
