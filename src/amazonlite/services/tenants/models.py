from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from amazonlite.platform.db import Timestamps, service_metadata
from amazonlite.platform.messaging import add_messaging_tables
from amazonlite.platform.tenancy import TenantScoped
from amazonlite.services.tenants.schemas import NAME_MAX


class Base(DeclarativeBase):
    metadata = service_metadata("tenants")


MESSAGING = add_messaging_tables(Base.metadata)


class TenantRow(TenantScoped, Timestamps, Base):
    """A tenant and its settings. The row belongs to the tenant it describes (`tenant_id` is the
    tenant's own id, and the key), so the kernel's tenant scope shows a tenant's session its own row
    only; platform admins read and write every row through an explicitly unscoped session."""

    __tablename__ = "tenants"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    currency: Mapped[str] = mapped_column(String(3))
    tax_rate_bp: Mapped[int] = mapped_column(Integer)
    # {"tenant_per_minute": int, "client_per_minute": int}
    rate_limits: Mapped[dict[str, Any]] = mapped_column(JSON)
    feature_flags: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    # How long inventory holds stock for an unpaid order, and how long the customer has to pay.
    reservation_minutes: Mapped[int] = mapped_column(Integer, server_default="15")
    payment_minutes: Mapped[int] = mapped_column(Integer, server_default="15")
