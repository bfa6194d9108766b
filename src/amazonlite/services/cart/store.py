"""Where carts live, and the one way they change: compare-and-set on their version.

Embedded (no Redis): every cart is a row of `carts`; a guest's has an `expires_at`, pushed back by
each read and change, and is gone after it (expired rows are not read, and `cart.expire_guest_carts`
purges them).

Distributed (Redis): a guest's cart is a Redis hash `<prefix>:cart:<tenant>:guest:<id>` (fields
`version` and `doc`) with the idle TTL, changed by a Lua compare-and-set. A customer's cart is a row
of `carts` (the truth: it survives losing Redis), changed by a conditional update in the request's
transaction, and copied after commit into `<prefix>:cart:<tenant>:user:<id>` by a Lua
set-if-newer, from where reads are served; a copy lives `copy_ttl_seconds` (minutes), one that
cannot be written is dropped, and a missing one is read from SQL and put back.

A Redis write is never followed by anything in the request's unit of work that could fail: a guest
change's SQL writes (the SKU replica) are committed in a unit of work of their own before it, and a
merge deletes the guest cart last, inside the savepoint of the customer's save.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import orjson
import structlog
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.platform.db import after_commit, utcnow
from amazonlite.platform.tenancy import TENANT_KEY
from amazonlite.services.cart.errors import CartStoreUnavailable
from amazonlite.services.cart.models import Cart
from amazonlite.services.cart.repository import CartRepository

log = structlog.get_logger("amazonlite.cart")

T = TypeVar("T")
OwnerKind = Literal["guest", "user"]
TOUCH_EVERY_SECONDS = 3600  # SQL guest carts: how stale the pushed-back expiry may get (of a 30-day TTL)
MERGED_KEPT = 20  # guest carts a customer's cart remembers having merged (a second merge changes nothing)

# KEYS[1] the cart; ARGV: expected version (0: absent), new document ('' deletes), new version, TTL seconds.
_COMPARE_AND_SET = """
local current = redis.call('HGET', KEYS[1], 'version')
local expected = tonumber(ARGV[1])
if (not current and expected == 0) or (current and tonumber(current) == expected) then
  if ARGV[2] == '' then
    redis.call('DEL', KEYS[1])
  else
    redis.call('HSET', KEYS[1], 'version', ARGV[3], 'doc', ARGV[2])
    redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
  end
  return 1
end
return 0
"""

# KEYS[1] the copy; ARGV: version, document, TTL seconds. Only a newer version replaces the copy, so
# copies written after commit in another order than their commits never go back in time.
_SET_IF_NEWER = """
local current = redis.call('HGET', KEYS[1], 'version')
if (not current) or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'version', ARGV[1], 'doc', ARGV[2])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
  return 1
end
return 0
"""


@dataclass(frozen=True)
class Owner:
    kind: OwnerKind
    key: str

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.key}"


@dataclass
class StoredCart:
    """A cart as stored: its lines (each with the price the customer last saw), its coupon code and
    the guest carts merged into it. `version` 0 is a cart not stored yet."""

    owner: Owner
    version: int = 0
    lines: list[dict[str, Any]] = field(default_factory=list)
    coupon: str | None = None
    merged: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {"lines": self.lines, "coupon": self.coupon, "merged": self.merged[-MERGED_KEPT:]}

    @classmethod
    def from_document(cls, owner: Owner, version: int, doc: dict[str, Any]) -> StoredCart:
        return cls(owner=owner, version=version, lines=list(doc.get("lines") or []), coupon=doc.get("coupon"),
                   merged=list(doc.get("merged") or []))


class CartStore:
    def __init__(self, redis: Any, *, prefix: str, ttl_seconds: int, copy_ttl_seconds: int = 300,
                 timeout_seconds: float = 1.0) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        # A customer's copy is a cache: short-lived, so one left stale (its write and its deletion
        # both failed during a Redis blip) is served for minutes at most, not for the idle TTL.
        self.copy_ttl_seconds = copy_ttl_seconds
        self.timeout_seconds = timeout_seconds
        self._cas: Any = redis.register_script(_COMPARE_AND_SET) if redis is not None else None
        self._set_if_newer: Any = redis.register_script(_SET_IF_NEWER) if redis is not None else None

    def key(self, tenant_id: str, owner: Owner) -> str:
        return f"{self.prefix}:cart:{tenant_id}:{owner.kind}:{owner.key}"

    def in_redis(self, owner: Owner) -> bool:
        """Whether the owner's cart lives in Redis (a write there cannot be undone by a rollback)."""
        return self.redis is not None and owner.kind == "guest"

    def _expiry(self, owner: Owner, now: dt.datetime) -> dt.datetime | None:
        return now + dt.timedelta(seconds=self.ttl_seconds) if owner.kind == "guest" else None

    # Reads -------------------------------------------------------------------------------------

    async def load(self, session: AsyncSession, owner: Owner, *, for_change: bool = False) -> StoredCart | None:
        """The cart, or None. A read pushes a guest cart's expiry back. `for_change` reads a
        customer's cart from SQL (the truth the change is compared with), not from its Redis copy."""
        tenant = _tenant(session)
        if self.in_redis(owner):
            key = self.key(tenant, owner)

            async def read() -> Any:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.hgetall(key)
                    pipe.expire(key, self.ttl_seconds)
                    return (await pipe.execute())[0]

            return _decoded(owner, await self._required("read", read))
        if self.redis is not None and not for_change:
            cached = _decoded(owner, await self._optional("read_copy", lambda: self.redis.hgetall(
                self.key(tenant, owner))))
            if cached is not None:
                return cached
        now = utcnow()
        repository = CartRepository(session)
        row = await repository.get(owner.name, now=now)
        if row is None:
            return None
        cart = StoredCart.from_document(owner, row.version, row.document)
        if owner.kind == "guest" and row.expires_at is not None and \
                row.expires_at < now + dt.timedelta(seconds=self.ttl_seconds - TOUCH_EVERY_SECONDS):
            # Pushed back at most once per TOUCH_EVERY_SECONDS: a read is not a write every time.
            await repository.touch(owner.name, expires_at=now + dt.timedelta(seconds=self.ttl_seconds))
        elif self.redis is not None and not for_change:
            await self._copy(tenant, cart)
        return cart

    # Writes ------------------------------------------------------------------------------------

    async def save(self, session: AsyncSession, cart: StoredCart, *,
                   then: Callable[[], Awaitable[bool]] | None = None) -> bool:
        """Store `cart` as version `cart.version + 1` if the stored one is still `cart.version`
        (0: not stored yet); on success `cart.version` is the new one. False: another change won.

        `then` (a SQL cart only) runs right after the write, in a savepoint with it: when it answers
        False the write is undone and so is the save (False), as if another change had won."""
        tenant = _tenant(session)
        document = cart.document()
        if self.in_redis(cart.owner):
            assert then is None, "a Redis write cannot be undone"
            payload = orjson.dumps(document).decode()
            key = self.key(tenant, cart.owner)
            done = await self._required("write", lambda: self._cas(
                keys=[key], args=[cart.version, payload, cart.version + 1, self.ttl_seconds]))
            if not done:
                return False
            cart.version += 1
            return True
        now = utcnow()
        repository = CartRepository(session)
        expires_at = self._expiry(cart.owner, now)
        try:
            async with session.begin_nested():
                if cart.version == 0:  # a new cart: a customer's first, or a guest's of a new id
                    done = await repository.add(Cart(owner=cart.owner.name, version=1, document=document,
                                                     updated_at=now, expires_at=expires_at))
                else:
                    done = await repository.replace(cart.owner.name, cart.version, document, now=now,
                                                    expires_at=expires_at)
                if not done or (then is not None and not await then()):
                    raise _Undone()
        except _Undone:
            return False
        cart.version += 1
        if self.redis is not None:
            snapshot = StoredCart.from_document(cart.owner, cart.version, document)

            async def copy() -> None:
                await self._copy(tenant, snapshot)

            after_commit(session, copy)
        return True

    async def remove(self, session: AsyncSession, cart: StoredCart) -> bool:
        """Delete a (merged) guest cart with the change that merged it, if it is still the version
        merged; False when it is gone (merged by a concurrent request) or changed meanwhile (the
        caller undoes its change and merges again from the newer one). In SQL this is part of the
        transaction; in Redis it happens before the commit, so a commit that then fails loses the
        guest cart rather than letting two customers merge it."""
        if not self.in_redis(cart.owner):
            return await CartRepository(session).delete(cart.owner.name, cart.version)
        key = self.key(_tenant(session), cart.owner)
        return bool(await self._required("delete", lambda: self._cas(
            keys=[key], args=[cart.version, "", 0, self.ttl_seconds])))

    async def _copy(self, tenant: str, cart: StoredCart) -> None:
        """Put a customer's cart into its Redis copy (newer versions only, for `copy_ttl_seconds`); a
        copy that cannot be written is dropped, so that no read is served an older one (and when the
        drop fails too, the old copy expires within `copy_ttl_seconds`)."""
        key = self.key(tenant, cart.owner)
        payload = orjson.dumps(cart.document()).decode()
        written = await self._optional("write_copy", lambda: self._set_if_newer(
            keys=[key], args=[cart.version, payload, self.copy_ttl_seconds]))
        if written is None:
            await self._optional("drop_copy", lambda: self.redis.delete(key))

    # Redis calls -------------------------------------------------------------------------------

    async def _required(self, operation: str, command: Callable[[], Awaitable[T]]) -> T:
        """A call the answer depends on (guest carts live in Redis): a failure is a 503 problem."""
        try:
            async with asyncio.timeout(self.timeout_seconds):
                return await command()
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("cart.store_failed", operation=operation, error=type(exc).__name__, detail=str(exc)[:200])
            raise CartStoreUnavailable("Guest carts cannot be read or changed right now; retry shortly",
                                       headers={"Retry-After": "1"}) from exc

    async def _optional(self, operation: str, command: Callable[[], Awaitable[T]]) -> T | None:
        """A call SQL can stand in for (customers' copies): a failure is logged and ignored."""
        try:
            async with asyncio.timeout(self.timeout_seconds):
                return await command()
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("cart.copy_failed", operation=operation, error=type(exc).__name__, detail=str(exc)[:200])
            return None


class _Undone(Exception):
    """Rolls a save's savepoint back (its compare-and-set or its `then` lost)."""


def _tenant(session: AsyncSession) -> str:
    return str(session.info[TENANT_KEY])


def _decoded(owner: Owner, fields: dict[bytes, bytes] | None) -> StoredCart | None:
    if not fields or b"version" not in fields or b"doc" not in fields:
        return None
    try:
        return StoredCart.from_document(owner, int(fields[b"version"]), orjson.loads(fields[b"doc"]))
    except (ValueError, TypeError, orjson.JSONDecodeError):
        return None  # written by another version of the service: treated as absent
