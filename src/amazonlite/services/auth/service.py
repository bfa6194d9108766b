"""The auth use cases: accounts, logins, refresh-token families, logout, signing keys."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
import uuid
from collections.abc import Sequence

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.contracts import UserRegisteredV1
from amazonlite.platform.db import utcnow
from amazonlite.platform.outbox import record_event
from amazonlite.platform.revocation import RevocationStore
from amazonlite.platform.security import Principal, Role
from amazonlite.services.auth import keys, passwords, recovery, revocations
from amazonlite.services.auth.errors import (
    EmailTaken,
    InvalidCredentials,
    InvalidRefreshToken,
    RefreshTokenReused,
    WeakPassword,
)
from amazonlite.services.auth.models import RefreshToken, RefreshTokenFamily, SigningKey, User
from amazonlite.services.auth.recovery import token_digest
from amazonlite.services.auth.repository import (
    RefreshTokenRepository,
    RevokedAccessTokenRepository,
    SigningKeyRepository,
    UserRepository,
)
from amazonlite.services.auth.schemas import Me, TokenPair, UserCreate
from amazonlite.services.auth.settings import AuthSettings
from amazonlite.services.auth.throttle import LoginAttempt, LoginThrottle

log = structlog.get_logger("amazonlite.auth")

ADMIN_ROLES = (Role.PLATFORM_ADMIN.value, Role.TENANT_ADMIN.value)


def check_password_policy(password: str, email: str) -> None:
    problem = passwords.policy_violation(password, email)
    if problem is not None:
        raise WeakPassword(problem)


# Accounts ------------------------------------------------------------------------------------

async def _create_user(session: AsyncSession, *, email: str, password: str | None, name: str,
                       roles: Sequence[str], email_verified: bool) -> User:
    """Insert a user and record `user.registered.v1` in the same transaction. Without a password
    (an account made by an identity provider), no password matches until one is set by a reset."""
    users = UserRepository(session)
    if await users.by_email(email) is not None:
        raise EmailTaken(f"An account with the email {email} already exists")
    password_hash = passwords.UNUSABLE_HASH if password is None else await passwords.hash_password(password)
    user = User(email=email, name=name, password_hash=password_hash, roles=list(roles),
                email_verified=email_verified)
    try:
        await users.add(user)
    except IntegrityError as exc:  # a concurrent signup with the same email won the race
        raise EmailTaken(f"An account with the email {email} already exists") from exc
    await record_event(session, UserRegisteredV1(user_id=user.id, email=user.email, name=user.name,
                                                 roles=list(user.roles)), aggregate_id=user.id)
    log.info("auth.user_registered", user_id=str(user.id))
    return user


async def signup(session: AsyncSession, settings: AuthSettings, body: UserCreate) -> User:
    """Create a customer and, in the same transaction, the email with its verification link."""
    check_password_policy(body.password, body.email)
    user = await _create_user(session, email=body.email, password=body.password, name=body.name,
                              roles=[Role.CUSTOMER.value], email_verified=False)
    await recovery.mail_token(session, settings, user, recovery.Purpose.VERIFY_EMAIL)
    return user


async def create_external_user(session: AsyncSession, *, email: str, name: str, email_verified: bool) -> User:
    """A customer whose identity an external provider vouches for; no password, no verification mail."""
    return await _create_user(session, email=email, password=None, name=name, roles=[Role.CUSTOMER.value],
                              email_verified=email_verified)


async def create_or_promote_admin(session: AsyncSession, *, email: str, password: str, name: str,
                                  roles: Sequence[str] = ADMIN_ROLES) -> uuid.UUID:
    """Create an administrator with `roles` (platform and tenant admin by default), or give an
    existing account those roles and set its password."""
    check_password_policy(password, email)
    user = await UserRepository(session).by_email(email)
    if user is None:
        user = await _create_user(session, email=email, password=password, name=name, roles=roles,
                                  email_verified=True)
        return user.id
    user.password_hash = await passwords.hash_password(password)
    user.email_verified = True
    user.roles = [*user.roles, *(role for role in roles if role not in user.roles)]
    await session.flush()
    log.info("auth.admin_promoted", user_id=str(user.id))
    return user.id


async def ensure_user(session: AsyncSession, *, email: str, password: str, name: str,
                      roles: Sequence[str]) -> bool:
    """Create the account unless its email exists (demo data: no password policy). True if created."""
    if await UserRepository(session).by_email(email) is not None:
        return False
    await _create_user(session, email=email, password=password, name=name, roles=roles, email_verified=True)
    return True


async def me(session: AsyncSession, principal: Principal) -> Me:
    """The signed-in principal, with whether its account's email is verified (false if the account is gone)."""
    user = None
    with contextlib.suppress(ValueError, TypeError):
        user = await UserRepository(session).get(uuid.UUID(str(principal.user_id)))
    return Me(user_id=str(principal.user_id), tenant_id=principal.tenant_id, roles=sorted(principal.roles),
              email_verified=bool(user and user.email_verified))


# Tokens --------------------------------------------------------------------------------------

async def _issue_pair(session: AsyncSession, keyring: keys.KeyRing, settings: AuthSettings, user: User,
                      family: RefreshTokenFamily) -> TokenPair:
    now = utcnow()
    raw = secrets.token_urlsafe(32)
    expires_at = now + dt.timedelta(days=settings.refresh_ttl_days)
    family.expires_at = expires_at
    await RefreshTokenRepository(session).add(RefreshToken(
        token_hash=token_digest(raw), family_id=family.id, user_id=user.id, created_at=now, expires_at=expires_at))
    access = keyring.issue_access_token(user_id=user.id, tenant_id=user.tenant_id, roles=list(user.roles),
                                        session_id=family.id, ttl_seconds=settings.access_ttl_seconds)
    return TokenPair(access_token=access.token, refresh_token=raw, expires_in=settings.access_ttl_seconds)


async def login(session: AsyncSession, keyring: keys.KeyRing, settings: AuthSettings, throttle: LoginThrottle,
                attempt: LoginAttempt, *, password: str) -> TokenPair:
    """A token pair for the right password. A throttled attempt is refused before any password
    work; a failed one is charged to the attempt's counters (unknown emails too, alike)."""
    await throttle.check(attempt)
    user = await UserRepository(session).by_email(attempt.email)
    if user is None:
        await passwords.verify_against_dummy(password)
        await throttle.record_failure(attempt)
        raise InvalidCredentials
    if not await passwords.verify_password(user.password_hash, password):
        await throttle.record_failure(attempt)
        raise InvalidCredentials
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = await passwords.hash_password(password)
    return await start_session(session, keyring, settings, user)


async def start_session(session: AsyncSession, keyring: keys.KeyRing, settings: AuthSettings,
                        user: User) -> TokenPair:
    """A new refresh-token family for a user who has just proven who they are, and its first pair."""
    family = await RefreshTokenRepository(session).add_family(RefreshTokenFamily(
        user_id=user.id, expires_at=utcnow() + dt.timedelta(days=settings.refresh_ttl_days)))
    log.info("auth.user_logged_in", user_id=str(user.id), family_id=str(family.id))
    return await _issue_pair(session, keyring, settings, user, family)


async def refresh(session: AsyncSession, keyring: keys.KeyRing, settings: AuthSettings, store: RevocationStore, *,
                  refresh_token: str) -> TokenPair:
    """Exchange a refresh token for a new pair; the old one is spent. Presenting a spent token (or
    one of a revoked family) revokes the family, and the access tokens it issued: a thief and the
    owner cannot both go on. The database decides here (`revoked_at`), not the revocation store."""
    tokens = RefreshTokenRepository(session)
    now = utcnow()
    token = await tokens.by_hash_for_update(token_digest(refresh_token))
    if token is None or token.expires_at <= now:
        raise InvalidRefreshToken
    family = await tokens.family(token.family_id)
    if family is None:
        raise InvalidRefreshToken
    if token.used_at is not None or family.revoked_at is not None or not await tokens.spend(token.id, now):
        await revocations.revoke_family(session, store, settings, family.id, now)
        log.warning("auth.refresh_token_reused", user_id=str(token.user_id), family_id=str(family.id))
        raise RefreshTokenReused
    user = await UserRepository(session).get(token.user_id)
    if user is None:
        raise InvalidRefreshToken
    return await _issue_pair(session, keyring, settings, user, family)


async def logout(session: AsyncSession, settings: AuthSettings, store: RevocationStore, principal: Principal, *,
                 refresh_token: str) -> None:
    """Revoke the refresh token's family (if it is the caller's), with every access token it issued,
    and the caller's own access token. Answers the same whatever the refresh token was."""
    token = await RefreshTokenRepository(session).by_hash(token_digest(refresh_token))
    if token is not None and str(token.user_id) == principal.user_id:
        await revocations.revoke_family(session, store, settings, token.family_id, utcnow())
        log.info("auth.user_logged_out", user_id=principal.user_id, family_id=str(token.family_id))
    if principal.token_id is not None and principal.token_expires_at is not None:
        await revocations.revoke_access_token(session, store, token_id=principal.token_id,
                                              expires_at=principal.token_expires_at)


async def prune_expired(session: AsyncSession) -> None:
    """Delete revocations of expired access tokens and refresh tokens long expired (an unscoped session)."""
    now = utcnow()
    await RevokedAccessTokenRepository(session).prune_expired(now)
    await RefreshTokenRepository(session).prune_expired(now - dt.timedelta(days=1))
    await recovery.prune_expired(session, now - dt.timedelta(days=1))


# Signing keys --------------------------------------------------------------------------------

async def public_jwks(session: AsyncSession) -> list[dict[str, str]]:
    """The public JWKs of every key not retired (a verifier may meet a token of any of them)."""
    return [keys.public_jwk(key.kid, key.public_key) for key in await SigningKeyRepository(session).active()]


async def ensure_signing_key(session: AsyncSession, settings: AuthSettings) -> bool:
    """Store a new signing key if none is active; True if one was added. Several replicas starting
    at once may each add one: all are published, and every replica signs with the oldest."""
    repository = SigningKeyRepository(session)
    if await repository.active():
        return False
    kek = keys.key_encryption_key(settings.key_encryption_secret)
    new = await asyncio.to_thread(keys.generate_key, kek)
    await repository.add(SigningKey(kid=new.kid, public_key=new.public_key,
                                    private_key_encrypted=new.private_key_encrypted))
    log.info("auth.signing_key_created", kid=new.kid)
    return True


async def load_keyring(session: AsyncSession, settings: AuthSettings) -> keys.KeyRing:
    active = await SigningKeyRepository(session).active()
    if not active:
        raise RuntimeError("no active signing key; ensure_signing_key first")
    oldest = active[0]
    kek = keys.key_encryption_key(settings.key_encryption_secret)
    return keys.KeyRing(oldest.kid, keys.decrypt_private_key(kek, oldest.kid, oldest.public_key,
                                                             oldest.private_key_encrypted))
