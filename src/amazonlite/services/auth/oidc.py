"""Sign-in with an OpenID Connect provider (Google): start a sign-in, complete it at the callback,
link the provider's identity (its `sub`) to one of our users, and open a session.

A started sign-in is kept server-side, in the tenant that started it: the `state` (as its
SHA-256), the `nonce` the ID token must carry and the PKCE verifier. It is single use and short-lived;
once the callback has spent it, it stays spent even if the exchange or the ID token then fails.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.platform.db import utcnow
from amazonlite.platform.text import as_one_line, normalise_email
from amazonlite.services.auth import keys, service
from amazonlite.services.auth.errors import (
    InvalidIdToken,
    InvalidOAuthState,
    OAuthAccountNotLinkable,
    OAuthProviderDisabled,
)
from amazonlite.services.auth.models import OAuthIdentity, OAuthRequest, User
from amazonlite.services.auth.oidc_client import OpenIdProvider
from amazonlite.services.auth.recovery import token_digest
from amazonlite.services.auth.repository import OAuthRepository, UserRepository
from amazonlite.services.auth.schemas import TokenPair
from amazonlite.services.auth.settings import AuthSettings

log = structlog.get_logger("amazonlite.auth")


def google_provider(settings: AuthSettings) -> OpenIdProvider:
    return OpenIdProvider("google", issuer=settings.google_issuer, client_id=settings.google_client_id,
                          client_secret=settings.google_client_secret, redirect_uri=settings.google_redirect_uri)


def _enabled(provider: OpenIdProvider) -> OpenIdProvider:
    if not provider.enabled:
        raise OAuthProviderDisabled(f"Sign-in with {provider.name} is not configured")
    return provider


async def begin(session: AsyncSession, settings: AuthSettings, provider: OpenIdProvider) -> str:
    """Record a new sign-in attempt and return the provider's authorization URL to send the browser to."""
    _enabled(provider)
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)
    now = utcnow()
    url = await provider.authorization_url(state=state, nonce=nonce, code_verifier=verifier)
    await OAuthRepository(session).add_request(OAuthRequest(
        provider=provider.name, state_hash=token_digest(state), nonce=nonce, code_verifier=verifier,
        created_at=now, expires_at=now + dt.timedelta(seconds=settings.oauth_request_ttl_seconds)))
    return url


async def complete(session: AsyncSession, keyring: keys.KeyRing, settings: AuthSettings,
                   provider: OpenIdProvider, *, code: str, state: str) -> TokenPair:
    """Spend the sign-in attempt of `state`, exchange `code`, validate the ID token, find or create
    the user it names, and open a session for them."""
    _enabled(provider)
    repository = OAuthRepository(session)
    attempt = await repository.request_by_state(provider.name, token_digest(state))
    now = utcnow()
    if attempt is None or attempt.used_at is not None or not await repository.spend_request(attempt.id, now):
        raise InvalidOAuthState
    id_token = await provider.exchange(code=code, code_verifier=attempt.code_verifier)
    claims = await provider.validate_id_token(id_token, nonce=attempt.nonce)
    user = await _user_for(session, provider.name, claims)
    log.info("auth.oidc_signed_in", provider=provider.name, user_id=str(user.id))
    return await service.start_session(session, keyring, settings, user)


def _verified_by_provider(claims: dict[str, Any]) -> bool:
    return claims.get("email_verified") in (True, "true")


async def _user_for(session: AsyncSession, provider: str, claims: dict[str, Any]) -> User:
    """The user linked to the identity; else the local account of the same email, linked only if
    both the provider and we have verified that email; else a new customer."""
    repository, users = OAuthRepository(session), UserRepository(session)
    subject = str(claims["sub"])
    identity = await repository.identity(provider, subject)
    if identity is not None:
        linked = await users.get(identity.user_id)
        if linked is None:
            raise InvalidIdToken("The linked account no longer exists")
        return linked
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise InvalidIdToken("The ID token carries no email address")
    email = normalise_email(email)
    user = await users.by_email(email)
    if user is not None:
        if not (_verified_by_provider(claims) and user.email_verified):
            raise OAuthAccountNotLinkable
        if await repository.identity_of_user(provider, user.id) is not None:
            # Another identity of this provider is linked already: never re-link by email.
            raise OAuthAccountNotLinkable
    else:
        name = as_one_line(str(claims.get("name") or ""))[:200] or email.split("@", 1)[0][:200]
        user = await service.create_external_user(session, email=email, name=name,
                                                   email_verified=_verified_by_provider(claims))
    try:
        async with session.begin_nested():
            await repository.add_identity(OAuthIdentity(provider=provider, subject=subject, user_id=user.id))
    except IntegrityError as exc:  # a concurrent callback linked this identity first
        raise InvalidOAuthState("This sign-in was completed concurrently; start again") from exc
    log.info("auth.oidc_identity_linked", provider=provider, user_id=str(user.id))
    return user


async def prune_expired(session: AsyncSession, before: dt.datetime) -> None:
    await OAuthRepository(session).prune_requests(before)
