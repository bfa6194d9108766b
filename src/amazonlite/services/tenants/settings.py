from __future__ import annotations

from typing import ClassVar

from amazonlite.platform.config import ServiceSettings


class TenantsSettings(ServiceSettings):
    """`AMAZONLITE_TENANTS_*`."""

    service_name: ClassVar[str] = "tenants"
