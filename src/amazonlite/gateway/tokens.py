"""Who is calling: access tokens verified against the auth service's JWKS, and the internal tokens
minted for the upstream that serves the request.

An access token is an EdDSA (Ed25519) JWT with a `kid`; nothing else is accepted (no `none`, no
HS*, so a public key can never be used as an HMAC secret). A verified token is remembered until it
expires, so the signature is checked once per token, not once per request; revocation is checked
on every request, remembered or not: of the token itself (`jti`) and of its session, the refresh-token
family it was issued from (`sid`), in one lookup.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import structlog

from amazonlite.gateway.errors import InvalidAccessToken, SigningKeysUnavailable, TenantMismatch
from amazonlite.platform.errors import BadRequest
from amazonlite.platform.outages import DEPENDENCIES, upstream_dependency
from amazonlite.platform.revocation import RevocationStore
from amazonlite.platform.security import InternalTokens, Principal
from amazonlite.platform.tenancy import DEFAULT_TENANT, validate_tenant_id

log = structlog.get_logger("amazonlite.gateway")

ALGORITHM = "EdDSA"
REQUIRED_CLAIMS = ("iss", "aud", "sub", "tenant", "roles", "jti", "iat", "exp")
# The session (refresh-token family) a token was issued from. Every token auth issues carries it;
# a token without it (issued before auth named sessions) can be revoked only by its `jti`.
SESSION_CLAIM = "sid"
CALLER = "gateway"  # the `caller` of the internal tokens it mints

FetchJwks = Callable[[], Awaitable[Mapping[str, Any]]]


class KeySet:
    """The auth service's signing keys by `kid`, fetched lazily and refetched when a token names a
    key not seen yet (at most once per `min_interval`, so unknown kids cannot hammer auth) or when
    the set is older than `max_age`."""

    def __init__(self, fetch: FetchJwks, *, min_interval: float, max_age: float,
                 on_keys_removed: Callable[[], None] | None = None) -> None:
        self._fetch = fetch
        self._min_interval = min_interval
        self._max_age = max_age
        self._on_keys_removed = on_keys_removed
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded_at: float | None = None
        self._last_attempt = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> jwt.PyJWK | None:
        key = self._keys.get(kid)
        loaded_at = self._loaded_at
        if key is not None and loaded_at is not None and time.monotonic() - loaded_at < self._max_age:
            return key
        await self.refresh()
        return self._keys.get(kid)

    async def refresh(self) -> None:
        """Refetch unless a fetch was attempted within `min_interval`; keep the old keys if it fails."""
        if time.monotonic() - self._last_attempt < self._min_interval:
            self._raise_if_never_loaded()
            return
        async with self._lock:
            if time.monotonic() - self._last_attempt < self._min_interval:  # another request just did
                self._raise_if_never_loaded()
                return
            self._last_attempt = time.monotonic()
            try:
                keys = parse_jwks(await self._fetch())
            except Exception as exc:  # logged once per outage of auth, not per refetch
                DEPENDENCIES.unavailable(upstream_dependency("auth"), operation="signing keys", error=repr(exc))
                self._raise_if_never_loaded()
                return
            DEPENDENCIES.available(upstream_dependency("auth"))
            removed = self._keys.keys() - keys.keys()
            self._keys = keys
            self._loaded_at = time.monotonic()
            log.info("gateway.jwks_fetched", kids=sorted(keys))
            if removed and self._on_keys_removed is not None:
                self._on_keys_removed()

    def _raise_if_never_loaded(self) -> None:
        if self._loaded_at is None:
            raise SigningKeysUnavailable("The signing keys of the auth service could not be fetched")


def parse_jwks(document: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
    """The Ed25519 signature keys of a JWKS document; any other key is ignored."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise ValueError("a JWKS document has a `keys` list")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        if (not isinstance(kid, str) or not kid or entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519"
                or entry.get("use", "sig") != "sig" or entry.get("alg", ALGORITHM) != ALGORITHM):
            continue
        try:
            keys[kid] = jwt.PyJWK(entry, algorithm=ALGORITHM)
        except jwt.PyJWTError:
            log.warning("gateway.jwks_key_ignored", kid=kid)
    return keys


@dataclass(frozen=True)
class VerifiedToken:
    """What a valid signature vouches for: the caller, and the session the token was issued from."""

    principal: Principal
    session_id: str | None


class AccessTokenVerifier:
    def __init__(self, keys: KeySet, revocations: RevocationStore, *, issuer: str, audience: str,
                 leeway: int = 0, cache_size: int = 10_000) -> None:
        self._keys = keys
        self._revocations = revocations
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._cache_size = cache_size
        self._verified: dict[str, VerifiedToken] = {}

    def forget_verified(self) -> None:
        """Drop remembered verifications (the key set lost a key: its tokens must fail now)."""
        self._verified.clear()

    async def verify(self, token: str) -> Principal:
        verified = self._verified.get(token)
        if verified is None or (verified.principal.token_expires_at or 0) + self._leeway <= time.time():
            if verified is not None:
                del self._verified[token]
            verified = await self._verify_signature_and_claims(token)
            self._remember(token, verified)
        # Never remembered: a revocation (of the token or of its session) applies from the next request.
        if await self._revocations.is_revoked(verified.principal.token_id or "", verified.session_id):
            raise InvalidAccessToken("The access token has been revoked")
        return verified.principal

    def _remember(self, token: str, verified: VerifiedToken) -> None:
        if self._cache_size <= 0:
            return
        if len(self._verified) >= self._cache_size:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = verified

    async def _verify_signature_and_claims(self, token: str) -> VerifiedToken:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidAccessToken("The access token is malformed") from exc
        if header.get("alg") != ALGORITHM:
            raise InvalidAccessToken("Access tokens are signed with EdDSA")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidAccessToken("The access token names no signing key")
        key = await self._keys.get(kid)
        if key is None:
            raise InvalidAccessToken("The access token is signed with an unknown key")
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=self._audience, issuer=self._issuer,
                                leeway=self._leeway, options={"require": list(REQUIRED_CLAIMS)})
        except jwt.ExpiredSignatureError as exc:
            raise InvalidAccessToken("The access token has expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidAccessToken("The access token is not valid") from exc
        return VerifiedToken(principal_from_claims(claims), session_from_claims(claims))


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    sub, tenant, roles, jti, exp = (claims.get(k) for k in ("sub", "tenant", "roles", "jti", "exp"))
    if not (isinstance(sub, str) and sub and isinstance(jti, str) and jti and isinstance(tenant, str)
            and isinstance(roles, list) and all(isinstance(r, str) for r in roles)
            and isinstance(exp, int | float) and not isinstance(exp, bool)):
        raise InvalidAccessToken("The access token's claims are not valid")
    try:
        tenant = validate_tenant_id(tenant)
    except BadRequest as exc:
        raise InvalidAccessToken("The access token names an invalid tenant") from exc
    return Principal(tenant_id=tenant, user_id=sub, roles=frozenset(roles), token_id=jti,
                     token_expires_at=int(exp))


def session_from_claims(claims: Mapping[str, Any]) -> str | None:
    """The token's session (`sid`), if it names one."""
    session_id = claims.get(SESSION_CLAIM)
    if session_id is None:
        return None
    if not isinstance(session_id, str) or not session_id:
        raise InvalidAccessToken("The access token's claims are not valid")
    return session_id


class CallerResolver:
    """The principal of a request, from its `Authorization` and `X-Tenant-ID` headers."""

    _MAX_ANONYMOUS = 1024

    def __init__(self, verifier: AccessTokenVerifier) -> None:
        self._verifier = verifier
        self._anonymous: dict[bytes | None, Principal] = {None: Principal(tenant_id=DEFAULT_TENANT)}

    async def resolve(self, authorization: bytes | None, tenant_header: bytes | None) -> Principal:
        if authorization is None:
            return self.anonymous(tenant_header)
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise InvalidAccessToken("Send the access token as `Authorization: Bearer <token>`")
        principal = await self._verifier.verify(token)
        if tenant_header is not None and tenant_header.decode("latin-1") != principal.tenant_id:
            raise TenantMismatch("An authenticated request acts in its token's tenant; drop X-Tenant-ID or match it")
        return principal

    def anonymous(self, tenant_header: bytes | None) -> Principal:
        principal = self._anonymous.get(tenant_header)
        if principal is None:
            tenant = validate_tenant_id(tenant_header.decode("latin-1") if tenant_header else "")
            principal = Principal(tenant_id=tenant)
            if len(self._anonymous) < self._MAX_ANONYMOUS:
                self._anonymous[tenant_header] = principal
        return principal


class InternalTokenMinter:
    """Internal tokens per (principal, service), reused for a fraction of their lifetime."""

    def __init__(self, tokens: InternalTokens, *, ttl_seconds: int, reuse_fraction: float,
                 cache_size: int) -> None:
        self._tokens = tokens
        self._reuse_for = ttl_seconds * reuse_fraction
        self._cache_size = cache_size if self._reuse_for > 0 else 0
        self._cache: dict[tuple[Principal, str], tuple[str, float]] = {}

    def token(self, principal: Principal, audience: str) -> str:
        key = (principal, audience)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        token = self._tokens.mint(principal, audience=audience, caller=CALLER)
        if self._cache_size > 0:
            if hit is None and len(self._cache) >= self._cache_size:
                del self._cache[next(iter(self._cache))]
            self._cache[key] = (token, now + self._reuse_for)
        return token
