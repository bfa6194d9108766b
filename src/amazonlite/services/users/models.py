from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, Boolean, Index, String, UniqueConstraint, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from amazonlite.platform.addresses import LINE_MAX, NAME_MAX, PHONE_MAX
from amazonlite.platform.crypto import max_token_length
from amazonlite.platform.db import IdPrimaryKey, Timestamps, service_metadata
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


class Address(TenantScoped, IdPrimaryKey, Timestamps, Base):
    """A shipping address of a user. The PII columns hold only `platform.crypto` tokens, bound to
    this row (tenant, table, column, id); the service encrypts and decrypts them."""

    __tablename__ = "addresses"
    __table_args__ = (
        # `is_default` is TRUE or NULL, never FALSE: NULLs are distinct in a unique constraint on every
        # supported database, so this allows many addresses but one default per user.
        UniqueConstraint("tenant_id", "user_id", "is_default"),
        Index("ix_addresses_user", "tenant_id", "user_id", "id"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # Sized for the longest plaintext the API accepts (a character takes up to 4 bytes in UTF-8).
    name_encrypted: Mapped[str] = mapped_column(String(max_token_length(4 * NAME_MAX)))
    line1_encrypted: Mapped[str] = mapped_column(String(max_token_length(4 * LINE_MAX)))
    line2_encrypted: Mapped[str | None] = mapped_column(String(max_token_length(4 * LINE_MAX)), default=None)
    city: Mapped[str] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(100), default=None)
    postal_code: Mapped[str] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    phone_encrypted: Mapped[str | None] = mapped_column(String(max_token_length(PHONE_MAX)), default=None)
    is_default: Mapped[bool | None] = mapped_column(Boolean, default=None)


class Preferences(TenantScoped, Timestamps, Base):
    __tablename__ = "preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # notification type -> {"email": bool, "sms": bool}
    notifications: Mapped[dict[str, Any]] = mapped_column(JSON)

# Address fields stored encrypted: API field -> column (the column names the value in its associated data).
ENCRYPTED_ADDRESS_FIELDS: dict[str, str] = {
    "name": "name_encrypted",
    "line1": "line1_encrypted",
    "line2": "line2_encrypted",
    "phone": "phone_encrypted",
}
