"""Mailed single-use tokens: verifying an account's email and resetting a forgotten password.

A token is 256 random bits, mailed once (in `notification.email.requested.v1`, recorded in the
transaction that creates it) and stored only as its SHA-256. An unknown, spent or expired token
gets one answer (`InvalidToken`), so a caller learns nothing about which it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from enum import StrEnum

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.contracts.notifications import EmailRequestedV1
from amazonlite.platform.db import utcnow
from amazonlite.platform.outbox import record_event
from amazonlite.platform.revocation import RevocationStore
from amazonlite.services.auth import passwords, revocations
from amazonlite.services.auth.errors import InvalidToken, WeakPassword
from amazonlite.services.auth.models import EmailToken, User
from amazonlite.services.auth.repository import EmailTokenRepository, UserRepository
from amazonlite.services.auth.settings import AuthSettings

log = structlog.get_logger("amazonlite.auth")


class Purpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    PASSWORD_RESET = "password_reset"


def token_digest(token: str) -> str:
    """How an opaque token is stored: its SHA-256 (it carries 256 random bits; a fast hash suffices)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _ttl(settings: AuthSettings, purpose: Purpose) -> dt.timedelta:
    seconds = (settings.email_verification_ttl_seconds if purpose is Purpose.VERIFY_EMAIL
               else settings.password_reset_ttl_seconds)
    return dt.timedelta(seconds=seconds)


async def mail_token(session: AsyncSession, settings: AuthSettings, user: User, purpose: Purpose) -> None:
    """Create a token for `purpose` and record the email that carries it, in the session's
    transaction. The raw token exists only in that event (never logged, never stored)."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    await EmailTokenRepository(session).add(EmailToken(
        token_hash=token_digest(raw), purpose=purpose.value, user_id=user.id, created_at=now,
        expires_at=now + _ttl(settings, purpose)))
    await record_event(session, EmailRequestedV1(
        user_id=user.id, to=user.email, template=purpose.value, variables={"token": raw, "name": user.name},
    ), aggregate_id=user.id)
    log.info("auth.email_token_issued", user_id=str(user.id), purpose=purpose.value)


async def _live_token(session: AsyncSession, raw: str, purpose: Purpose) -> EmailToken:
    token = await EmailTokenRepository(session).by_hash(token_digest(raw), purpose.value)
    if token is None or token.used_at is not None or token.expires_at <= utcnow():
        raise InvalidToken
    return token


async def _spend(session: AsyncSession, token: EmailToken) -> User:
    """Spend the token (once: a concurrent request presenting it too loses here) and return its user."""
    if not await EmailTokenRepository(session).spend(token.id, utcnow()):
        raise InvalidToken
    user = await UserRepository(session).get(token.user_id)
    if user is None:
        raise InvalidToken
    return user


async def verify_email(session: AsyncSession, *, token: str) -> None:
    user = await _spend(session, await _live_token(session, token, Purpose.VERIFY_EMAIL))
    user.email_verified = True
    await session.flush()
    log.info("auth.email_verified", user_id=str(user.id))


async def forgot_password(session: AsyncSession, settings: AuthSettings, *, email: str) -> None:
    """Mail a reset link if an account has `email`; otherwise do nothing. The caller answers the
    same either way, so the endpoint does not reveal which emails have accounts."""
    user = await UserRepository(session).by_email(email)
    if user is None:
        return
    await mail_token(session, settings, user, Purpose.PASSWORD_RESET)


async def reset_password(session: AsyncSession, settings: AuthSettings, store: RevocationStore, *, token: str,
                         password: str) -> None:
    """Set a new password with a reset token, and end every session of the account: whoever knew
    the old password (or held a refresh or access token) is signed out. Other outstanding reset
    links die."""
    live = await _live_token(session, token, Purpose.PASSWORD_RESET)
    user = await UserRepository(session).get(live.user_id)
    if user is None:
        raise InvalidToken
    problem = passwords.policy_violation(password, user.email)
    if problem is not None:  # checked before spending: a weak choice does not burn the link
        raise WeakPassword(problem)
    await _spend(session, live)
    now = utcnow()
    user.password_hash = await passwords.hash_password(password)
    # The link reached the mailbox, so whoever used it controls the address.
    user.email_verified = True
    await session.flush()
    await revocations.revoke_user_families(session, store, settings, user.id, now)
    await EmailTokenRepository(session).spend_all(user.id, Purpose.PASSWORD_RESET.value, now)
    log.info("auth.password_reset", user_id=str(user.id))


async def prune_expired(session: AsyncSession, before: dt.datetime) -> None:
    await EmailTokenRepository(session).prune_expired(before)
