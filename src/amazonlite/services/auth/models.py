from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, UniqueConstraint, Uuid, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from amazonlite.platform.db import UTC, IdPrimaryKey, Timestamps, service_metadata, utcnow
from amazonlite.platform.messaging import add_messaging_tables
from amazonlite.platform.tenancy import TenantScoped


class Base(DeclarativeBase):
    metadata = service_metadata("auth")


MESSAGING = add_messaging_tables(Base.metadata)

# Tables that belong to the platform, not to a tenant: they have no `tenant_id` and the tenant
# scope does not apply to them. Everything else in this service is `TenantScoped`.
PLATFORM_TABLES = frozenset({"signing_keys"})


class User(TenantScoped, IdPrimaryKey, Timestamps, Base):
    """Credentials of one account. An email is unique within its tenant, not across tenants."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "email"),)

    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(JSON)
    # Proven by a verification link (or by a password reset through the mailbox); accounts an
    # operator creates (create-admin, demo data) start verified.
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class RefreshTokenFamily(TenantScoped, IdPrimaryKey, Base):
    """Every refresh token descended from one login, and the session its access tokens name (their
    `sid` claim). Reuse of a spent token revokes the family, and with it those access tokens."""

    __tablename__ = "refresh_token_families"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTC, default=utcnow)
    # When its newest token expires: past that, the family is dead and may be pruned.
    expires_at: Mapped[dt.datetime] = mapped_column(UTC, index=True)
    # Set once (reuse of a spent token, logout, password reset). Indexed: the start-up reload of
    # recent revocations into the revocation store reads by it.
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTC, default=None, index=True)


class RefreshToken(TenantScoped, IdPrimaryKey, Base):
    """One opaque refresh token, stored only as its SHA-256; spent (`used_at`) once exchanged."""

    __tablename__ = "refresh_tokens"
    # Looked up by (tenant, hash): one unique index serves the lookup, so `FOR UPDATE` locks just
    # that row (MariaDB otherwise may walk the tenant index and lock its neighbours: deadlocks).
    __table_args__ = (UniqueConstraint("tenant_id", "token_hash"),)

    token_hash: Mapped[str] = mapped_column(String(64))
    family_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("refresh_token_families.id"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[dt.datetime] = mapped_column(UTC, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTC, index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTC, default=None)


class RevokedAccessToken(TenantScoped, Base):
    """An access token revoked before its expiry (logout); reloaded into the revocation store at start."""

    __tablename__ = "revoked_access_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTC, index=True)
    revoked_at: Mapped[dt.datetime] = mapped_column(UTC, default=utcnow)


class EmailToken(TenantScoped, IdPrimaryKey, Base):
    """A single-use token mailed to a user (verify the email, reset the password), stored only as
    its SHA-256; spent (`used_at`) once presented, dead past `expires_at`."""

    __tablename__ = "email_tokens"
    __table_args__ = (UniqueConstraint("tenant_id", "token_hash"),)

    token_hash: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTC, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTC, index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTC, default=None)


class OAuthRequest(TenantScoped, IdPrimaryKey, Base):
    """One sign-in started with an identity provider: what its callback must match (`state`, kept
    as its SHA-256), the ID token's expected `nonce` and the PKCE verifier. Single use, short-lived."""

    __tablename__ = "oauth_requests"
    __table_args__ = (UniqueConstraint("tenant_id", "state_hash"),)

    provider: Mapped[str] = mapped_column(String(32))
    state_hash: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTC, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTC, index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTC, default=None)


class OAuthIdentity(TenantScoped, IdPrimaryKey, Base):
    """An account at an identity provider (its stable `sub`) linked to one of our users. Linked by
    subject only, never by email alone."""

    __tablename__ = "oauth_identities"
    __table_args__ = (UniqueConstraint("tenant_id", "provider", "subject"),)

    provider: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTC, default=utcnow)


class SigningKey(Base):
    """PLATFORM-WIDE (see `PLATFORM_TABLES`): not tenant scoped. Access tokens of every tenant are
    signed by the same keys, published at the JWKS endpoint. The private half is stored encrypted
    (AES-GCM, the key id as associated data) under the key-encryption secret."""

    __tablename__ = "signing_keys"
    __table_args__ = (Index("ix_signing_keys_active", "retired_at", "created_at"),)

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Raw Ed25519 public key, base64url (the JWK `x`).
    public_key: Mapped[str] = mapped_column(String(64))
    # base64url(nonce || ciphertext || tag) of the raw private key.
    private_key_encrypted: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTC, default=utcnow)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTC, default=None)
