"""Who is calling: roles, the principal, and the internal tokens services accept.

The gateway verifies a user's access token once, then calls the owning service with a
short-lived internal token (HS256, audience = that service) carrying the principal: tenant,
subject, roles and the access token's id and expiry. A service accepts nothing else: a direct
call with a user's access token, or none, is refused with 401.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

import jwt
from cachetools import TLRUCache, TTLCache
from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant

from amazonlite.platform.errors import Forbidden, Unauthorized
from amazonlite.platform.tenancy import validate_tenant_id

INTERNAL_TOKEN_HEADER = "x-internal-token"
INTERNAL_ISSUER = "amazonlite-internal"
ALGORITHM = "HS256"


class Role(StrEnum):
    CUSTOMER = "customer"
    TENANT_ADMIN = "tenant_admin"
    PLATFORM_ADMIN = "platform_admin"


ADMIN_ROLES = frozenset({Role.TENANT_ADMIN, Role.PLATFORM_ADMIN})


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request: always a tenant; a user when `user_id` is set."""

    tenant_id: str
    user_id: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    token_id: str | None = None
    token_expires_at: int | None = None
    caller: str = "gateway"
    # The end client's address as the gateway saw it (for throttling and audit), if known.
    client_address: str | None = None

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None

    def has_any(self, roles: frozenset[str] | set[str]) -> bool:
        return bool(self.roles & roles)


# How many principals' minted tokens, and how many verified tokens, a process keeps.
TOKEN_CACHE_ENTRIES = 4096


class InternalTokens:
    """Mints and verifies internal tokens. Both are memoised: signing and checking an HS256 token
    cost more than the rest of a cached read (a tenth of an uncached one), and every hop does one.
    A minted token is handed out again for the first half of its life, so it always reaches its
    service with at least half left; a verified token is remembered, by its exact text, until its
    `exp` (an identical string has an identical, already checked, signature)."""

    def __init__(self, secret: str, *, ttl_seconds: int = 60) -> None:
        self._secret = secret
        self._ttl = ttl_seconds
        self._minted: TTLCache[tuple[Principal, str, str], str] = TTLCache(
            TOKEN_CACHE_ENTRIES, ttl=ttl_seconds / 2, timer=time.time)
        self._verified: TLRUCache[tuple[str, str], tuple[Principal, float]] = TLRUCache(
            TOKEN_CACHE_ENTRIES, ttu=lambda _key, value, _now: value[1], timer=time.time)

    def mint(self, principal: Principal, *, audience: str, caller: str) -> str:
        key = (principal, audience, caller)
        token = self._minted.get(key)
        if token is None:
            token = self._minted[key] = self._sign(principal, audience=audience, caller=caller)
        return token

    def _sign(self, principal: Principal, *, audience: str, caller: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": INTERNAL_ISSUER, "aud": audience, "iat": now, "exp": now + self._ttl,
            "tenant": principal.tenant_id, "caller": caller,
        }
        if principal.client_address:
            claims["cip"] = principal.client_address
        if principal.user_id is not None:
            claims.update(sub=principal.user_id, roles=sorted(principal.roles))
            # The access token's id and expiry, when the principal came from one (logout revokes it).
            if principal.token_id is not None:
                claims["jti"] = principal.token_id
            if principal.token_expires_at is not None:
                claims["axp"] = principal.token_expires_at
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str, *, audience: str) -> Principal:
        known = self._verified.get((token, audience))
        if known is not None:
            return known[0]
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM], audience=audience,
                                issuer=INTERNAL_ISSUER, options={"require": ["exp", "iat", "aud", "iss"]})
            tenant = validate_tenant_id(str(claims["tenant"]))
        except (jwt.PyJWTError, KeyError, ValueError) as exc:
            raise Unauthorized("The internal token is missing or not valid") from exc
        principal = Principal(
            tenant_id=tenant, user_id=claims.get("sub"), roles=frozenset(claims.get("roles") or ()),
            token_id=claims.get("jti"), token_expires_at=claims.get("axp"),
            caller=str(claims.get("caller", "")), client_address=claims.get("cip"),
        )
        self._verified[(token, audience)] = (principal, float(claims["exp"]))
        return principal


# The dependencies below are `async def` although they never await: FastAPI runs a plain `def`
# dependency in a worker thread, one thread hand-off per dependency per request.


async def get_principal(request: Request) -> Principal:
    """The verified principal of this request (verified once, then kept on the request)."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    token = request.headers.get(INTERNAL_TOKEN_HEADER)
    if not token:
        raise Unauthorized("Services accept only calls through the gateway or from another service")
    runtime = request.app.state.runtime
    principal = runtime.internal_tokens.verify(token, audience=runtime.name)
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def authenticated(principal: CurrentPrincipal) -> Principal:
    if not principal.authenticated:
        raise Unauthorized("Sign in to do this")
    return principal


def requires_user(dependant: Dependant) -> bool:
    """Whether a route's dependencies (at any depth) include `authenticated`: it answers 401 to an
    anonymous caller before its endpoint runs."""
    pending = [dependant]
    while pending:
        current = pending.pop()
        if current.call is authenticated:
            return True
        pending.extend(current.dependencies)
    return False


def require(*roles: Role) -> Any:
    """A dependency that admits an authenticated principal holding any of `roles`."""
    wanted = frozenset(roles)

    async def check(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        if not principal.has_any(wanted):
            raise Forbidden("Your role does not allow this")
        return principal

    return Depends(check)


CurrentUser = Annotated[Principal, Depends(authenticated)]
AdminUser = Annotated[Principal, require(Role.TENANT_ADMIN, Role.PLATFORM_ADMIN)]
