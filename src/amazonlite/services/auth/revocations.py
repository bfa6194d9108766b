"""Ending sessions: revoking a refresh-token family, every family of a user, or one access token.

The database is the record: the refresh endpoint checks a family's `revoked_at`, and the service
copies what is still in force into the revocation store at start and every half minute after
(`mirror`), so a store write that failed after the commit (Redis unreachable for a moment) is made
good within that time rather than never. The revocation store is what
the gateway checks on every request: it refuses an access token whose `jti` is revoked there, or
whose session (`sid`, the family it was issued from) is. The store is written once the transaction
has committed, never ahead of the data.

A revoked family issues no more access tokens, so its entry in the store needs to live only until
the last token it issued expires: one access-token lifetime after the revocation (the store adds
its grace period for clock leeway, and a refresh that raced the revocation).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.platform.db import Database, after_commit, utcnow
from amazonlite.platform.revocation import RevocationStore
from amazonlite.platform.tenancy import UNSCOPED
from amazonlite.services.auth.models import RevokedAccessToken
from amazonlite.services.auth.repository import RefreshTokenRepository, RevokedAccessTokenRepository
from amazonlite.services.auth.settings import AuthSettings


def _tokens_expire_by(revoked_at: dt.datetime, settings: AuthSettings) -> int:
    """When the last access token of a family revoked at `revoked_at` expires (epoch seconds)."""
    return int(revoked_at.timestamp()) + settings.access_ttl_seconds


def _store_after_commit(session: AsyncSession, store: RevocationStore, settings: AuthSettings,
                        family_ids: Sequence[uuid.UUID], at: dt.datetime) -> None:
    if not family_ids:
        return
    expires_at = _tokens_expire_by(at, settings)

    async def revoke_in_store() -> None:
        for family_id in family_ids:
            await store.revoke_family(str(family_id), expires_at)

    after_commit(session, revoke_in_store)


async def revoke_family(session: AsyncSession, store: RevocationStore, settings: AuthSettings,
                        family_id: uuid.UUID, at: dt.datetime) -> None:
    """Revoke the family: its refresh tokens and, once committed, the access tokens it issued."""
    if await RefreshTokenRepository(session).revoke_family(family_id, at):
        _store_after_commit(session, store, settings, [family_id], at)


async def revoke_user_families(session: AsyncSession, store: RevocationStore, settings: AuthSettings,
                               user_id: uuid.UUID, at: dt.datetime) -> None:
    """Revoke every family of the user: all their sessions, refresh and access tokens alike."""
    family_ids = await RefreshTokenRepository(session).revoke_user_families(user_id, at)
    _store_after_commit(session, store, settings, family_ids, at)


async def revoke_access_token(session: AsyncSession, store: RevocationStore, *, token_id: str,
                              expires_at: int) -> None:
    """Revoke one access token until it expires (`expires_at`, epoch seconds)."""
    await RevokedAccessTokenRepository(session).add_if_absent(RevokedAccessToken(
        jti=token_id, expires_at=dt.datetime.fromtimestamp(expires_at, dt.UTC)))
    after_commit(session, lambda: store.revoke(token_id, expires_at))


@dataclass(frozen=True)
class InForce:
    """Revocations whose access tokens may still be alive, each with when they all have expired
    (epoch seconds)."""

    tokens: list[tuple[str, int]]
    families: list[tuple[str, int]]


async def in_force(session: AsyncSession, settings: AuthSettings) -> InForce:
    """Every revoked access token not expired yet, and every family revoked recently enough that an
    access token it issued may still be alive (read in an unscoped session: every tenant's)."""
    now = utcnow()
    tokens = await RevokedAccessTokenRepository(session).unexpired(now)
    families = await RefreshTokenRepository(session).revoked_since(
        now - dt.timedelta(seconds=settings.access_ttl_seconds))
    return InForce(tokens=[(row.jti, int(row.expires_at.timestamp())) for row in tokens],
                   families=[(str(family_id), _tokens_expire_by(revoked_at, settings))
                             for family_id, revoked_at in families])


async def mirror(db: Database, store: RevocationStore, settings: AuthSettings) -> InForce:
    """Copy every revocation still in force, of every tenant, from the database into the store."""
    async with db.session(tenant_id=UNSCOPED) as session:
        revocations = await in_force(session, settings)
    await load_into(store, revocations)
    return revocations


async def load_into(store: RevocationStore, revocations: InForce) -> None:
    for token_id, expires_at in revocations.tokens:
        await store.revoke(token_id, expires_at)
    for family_id, expires_at in revocations.families:
        await store.revoke_family(family_id, expires_at)
