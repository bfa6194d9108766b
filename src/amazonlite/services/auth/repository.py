from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.services.auth.models import (
    EmailToken,
    OAuthIdentity,
    OAuthRequest,
    RefreshToken,
    RefreshTokenFamily,
    RevokedAccessToken,
    SigningKey,
    User,
)


class UserRepository:
    """Users of the session's tenant (the tenant scope applies to every query)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.scalar(select(User).where(User.id == user_id))

    async def by_email(self, email: str) -> User | None:
        return await self.session.scalar(select(User).where(User.email == email))

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user


class RefreshTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_hash(self, token_hash: str) -> RefreshToken | None:
        return await self.session.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash))

    async def by_hash_for_update(self, token_hash: str) -> RefreshToken | None:
        """The token, its row locked until the transaction ends: two requests exchanging one token
        serialise here. Found first, then locked by primary key: on MariaDB a lock taken through
        the secondary index is a next-key lock, and the holder's insert of the next token into
        that index's gap deadlocks with the waiter. (SQLite has no row locks; there the
        conditional update in `spend` decides.)"""
        token_id = await self.session.scalar(select(RefreshToken.id).where(RefreshToken.token_hash == token_hash))
        if token_id is None:
            return None
        return await self.session.scalar(
            select(RefreshToken).where(RefreshToken.id == token_id).with_for_update()
            .execution_options(populate_existing=True))

    async def family(self, family_id: uuid.UUID) -> RefreshTokenFamily | None:
        return await self.session.scalar(select(RefreshTokenFamily).where(RefreshTokenFamily.id == family_id))

    async def add_family(self, family: RefreshTokenFamily) -> RefreshTokenFamily:
        self.session.add(family)
        await self.session.flush()
        return family

    async def add(self, token: RefreshToken) -> RefreshToken:
        self.session.add(token)
        await self.session.flush()
        return token

    async def spend(self, token_id: uuid.UUID, at: dt.datetime) -> bool:
        """Mark the token used if nobody has; False if another request spent it first."""
        result = await self.session.execute(
            update(RefreshToken).where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None))
            .values(used_at=at).execution_options(synchronize_session=False))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def revoke_family(self, family_id: uuid.UUID, at: dt.datetime) -> bool:
        """Revoke the family unless it is revoked already; True if this call revoked it."""
        result = await self.session.execute(
            update(RefreshTokenFamily)
            .where(RefreshTokenFamily.id == family_id, RefreshTokenFamily.revoked_at.is_(None))
            .values(revoked_at=at).execution_options(synchronize_session=False))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def revoke_user_families(self, user_id: uuid.UUID, at: dt.datetime) -> list[uuid.UUID]:
        """Revoke every family of the user not revoked yet (all their sessions); their ids."""
        family_ids = list(await self.session.scalars(
            select(RefreshTokenFamily.id)
            .where(RefreshTokenFamily.user_id == user_id, RefreshTokenFamily.revoked_at.is_(None))))
        if family_ids:
            await self.session.execute(
                update(RefreshTokenFamily)
                .where(RefreshTokenFamily.id.in_(family_ids), RefreshTokenFamily.revoked_at.is_(None))
                .values(revoked_at=at).execution_options(synchronize_session=False))
        return family_ids

    async def revoked_since(self, since: dt.datetime) -> Sequence[tuple[uuid.UUID, dt.datetime]]:
        """(id, revoked_at) of every family revoked after `since`."""
        rows = await self.session.execute(
            select(RefreshTokenFamily.id, RefreshTokenFamily.revoked_at).where(RefreshTokenFamily.revoked_at > since))
        return [(family_id, revoked_at) for family_id, revoked_at in rows if revoked_at is not None]

    async def prune_expired(self, before: dt.datetime) -> None:
        await self.session.execute(delete(RefreshToken).where(RefreshToken.expires_at < before)
                                   .execution_options(synchronize_session=False))
        await self.session.execute(delete(RefreshTokenFamily).where(RefreshTokenFamily.expires_at < before)
                                   .execution_options(synchronize_session=False))


class EmailTokenRepository:
    """Single-use mailed tokens of the session's tenant."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, token: EmailToken) -> EmailToken:
        self.session.add(token)
        await self.session.flush()
        return token

    async def by_hash(self, token_hash: str, purpose: str) -> EmailToken | None:
        return await self.session.scalar(
            select(EmailToken).where(EmailToken.token_hash == token_hash, EmailToken.purpose == purpose))

    async def spend(self, token_id: uuid.UUID, at: dt.datetime) -> bool:
        """Mark the token used if nobody has and it has not expired; False otherwise (a concurrent
        request spent it first: this conditional update is what makes the token single-use)."""
        result = await self.session.execute(
            update(EmailToken)
            .where(EmailToken.id == token_id, EmailToken.used_at.is_(None), EmailToken.expires_at > at)
            .values(used_at=at).execution_options(synchronize_session=False))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def spend_all(self, user_id: uuid.UUID, purpose: str, at: dt.datetime) -> None:
        """Spend every outstanding token of the user for `purpose` (after a reset, older links die)."""
        await self.session.execute(
            update(EmailToken)
            .where(EmailToken.user_id == user_id, EmailToken.purpose == purpose, EmailToken.used_at.is_(None))
            .values(used_at=at).execution_options(synchronize_session=False))

    async def prune_expired(self, before: dt.datetime) -> None:
        await self.session.execute(delete(EmailToken).where(EmailToken.expires_at < before)
                                   .execution_options(synchronize_session=False))


class OAuthRepository:
    """Started sign-ins with identity providers, and the identities linked to users."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_request(self, request: OAuthRequest) -> None:
        self.session.add(request)
        await self.session.flush()

    async def request_by_state(self, provider: str, state_hash: str) -> OAuthRequest | None:
        return await self.session.scalar(
            select(OAuthRequest).where(OAuthRequest.provider == provider, OAuthRequest.state_hash == state_hash))

    async def spend_request(self, request_id: uuid.UUID, at: dt.datetime) -> bool:
        """Mark the sign-in used if nobody has and it has not expired; False otherwise."""
        result = await self.session.execute(
            update(OAuthRequest)
            .where(OAuthRequest.id == request_id, OAuthRequest.used_at.is_(None), OAuthRequest.expires_at > at)
            .values(used_at=at).execution_options(synchronize_session=False))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def identity(self, provider: str, subject: str) -> OAuthIdentity | None:
        return await self.session.scalar(
            select(OAuthIdentity).where(OAuthIdentity.provider == provider, OAuthIdentity.subject == subject))

    async def identity_of_user(self, provider: str, user_id: uuid.UUID) -> OAuthIdentity | None:
        return await self.session.scalar(
            select(OAuthIdentity).where(OAuthIdentity.provider == provider, OAuthIdentity.user_id == user_id))

    async def add_identity(self, identity: OAuthIdentity) -> None:
        self.session.add(identity)
        await self.session.flush()

    async def prune_requests(self, before: dt.datetime) -> None:
        await self.session.execute(delete(OAuthRequest).where(OAuthRequest.expires_at < before)
                                   .execution_options(synchronize_session=False))


class RevokedAccessTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, jti: str) -> RevokedAccessToken | None:
        return await self.session.scalar(select(RevokedAccessToken).where(RevokedAccessToken.jti == jti))

    async def add_if_absent(self, revoked: RevokedAccessToken) -> None:
        """Record the revocation unless it is already recorded; a concurrent logout of the same token
        that wins the insert makes this one a no-op (a savepoint keeps the transaction usable)."""
        if await self.get(revoked.jti) is not None:
            return
        try:
            async with self.session.begin_nested():
                self.session.add(revoked)
        except IntegrityError:
            pass

    async def unexpired(self, now: dt.datetime) -> Sequence[RevokedAccessToken]:
        return (await self.session.scalars(
            select(RevokedAccessToken).where(RevokedAccessToken.expires_at > now))).all()

    async def prune_expired(self, now: dt.datetime) -> None:
        await self.session.execute(delete(RevokedAccessToken).where(RevokedAccessToken.expires_at <= now)
                                   .execution_options(synchronize_session=False))


class SigningKeyRepository:
    """The platform-wide signing keys (not tenant scoped: read them in an unscoped session)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def active(self) -> Sequence[SigningKey]:
        """Keys not retired, oldest first."""
        return (await self.session.scalars(
            select(SigningKey).where(SigningKey.retired_at.is_(None))
            .order_by(SigningKey.created_at, SigningKey.kid))).all()

    async def add(self, key: SigningKey) -> None:
        self.session.add(key)
        await self.session.flush()
