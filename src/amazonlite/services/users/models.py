from __future__ import annotations

import uuid

from sqlalchemy import String, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from amazonlite.platform.db import Timestamps, service_metadata
from amazonlite.platform.messaging import add_messaging_tables
from amazonlite.platform.tenancy import TenantScoped


class Base(DeclarativeBase):
    metadata = service_metadata("users")


MESSAGING = add_messaging_tables(Base.metadata)


class Profile(TenantScoped, Timestamps, Base):
    __tablename__ = "profiles"

    # The user's id as the auth service issued it.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    locale: Mapped[str | None] = mapped_column(String(35), default=None)
