"""The gateway's response cache for public reads (the catalog's `GET`s), invalidated by events.

What is cached: a `GET` to one of the policy's route prefixes, by a caller without an admin role
(anonymous callers and customers see the same public documents; admins see drafts and always go
to the service), answered `200` by the upstream with no `Set-Cookie` and no `Cache-Control:
private`/`no-store`. The key is the tenant, the path and the query (its parameters sorted).

How an entry stops being served:
- its time to live ends (`response_cache_ttl_seconds`, short: it bounds staleness if an
  invalidation is ever late);
- an event of one of the policy's topics (`product.updated.v1`, ...) arrives for its tenant;
- a write (any other method) to one of the policy's routes succeeds through this gateway, so an
  admin reads what they just wrote without waiting for the event.

Invalidation drops *every* entry of the tenant at once by bumping the tenant's generation; each
entry records the generation it was fetched under and is served only while that is current. A
read that started before an invalidation stores its (maybe stale) answer under the old
generation, so it is never served: a late write of an old answer cannot resurrect it.

Stores: this process's memory (embedded) or Redis (distributed: every gateway replica shares the
entries, and one replica applying an event invalidates for all). The cache is an optimisation:
when Redis fails, requests go to the service, and the failure is logged.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode

import orjson
import structlog
from prometheus_client import Counter

from amazonlite.platform.bus import Message
from amazonlite.platform.events import Envelope
from amazonlite.platform.http import Message as AsgiMessage
from amazonlite.platform.http import Send
from amazonlite.platform.outages import DEPENDENCIES, redis_dependency
from amazonlite.platform.security import ADMIN_ROLES, Principal

log = structlog.get_logger("amazonlite.gateway")
_REDIS = redis_dependency("gateway")  # its outages are logged once, when they begin and end

LOOKUPS = Counter("amazonlite_gateway_cache_lookups_total", "Response cache lookups by outcome",
                  ["outcome"])  # hit, miss, error
INVALIDATIONS = Counter("amazonlite_gateway_cache_invalidations_total", "Tenant invalidations by cause",
                        ["cause"])  # event, write

Headers = list[tuple[bytes, bytes]]
CACHE_HEADER = b"x-cache"
CONSUMER_GROUP = "gateway"
# Upstream headers an entry keeps (the rest is per request: correlation id, rate limits, dates).
_KEPT = frozenset({b"content-type", b"content-length", b"content-language", b"etag", b"last-modified",
                   b"link", b"vary"})
_UNCACHEABLE_DIRECTIVES = (b"private", b"no-store", b"no-cache")
_ENTRY_OVERHEAD = 512


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """Which routes are cached and which event topics invalidate them (given by the topology)."""

    routes: frozenset[str]
    invalidated_by: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Entry:
    status: int
    headers: Headers
    body: bytes
    stored_at: float

    @property
    def footprint(self) -> int:
        """Bytes this entry holds in a process: its body and headers, plus the objects around them
        (the entry, its key, the store's bookkeeping): within ~15 % of what tracemalloc measures for
        small entries in CPython 3.11, where counting bodies alone was off by 15 times."""
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers) + _ENTRY_OVERHEAD

    def encode(self, generation: int) -> bytes:
        meta = orjson.dumps({"g": generation, "s": self.status, "t": self.stored_at,
                             "h": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in self.headers]})
        return meta + b"\n" + self.body

    @classmethod
    def decode(cls, raw: bytes) -> tuple[int, Entry]:
        meta_raw, _, body = raw.partition(b"\n")
        meta = orjson.loads(meta_raw)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in meta["h"]]
        return int(meta["g"]), cls(int(meta["s"]), headers, body, float(meta["t"]))


class ResponseStore(Protocol):
    async def lookup(self, tenant: str, key: str) -> tuple[Entry | None, int]:
        """The entry if it is current, and the tenant's generation now (to `store` under)."""

    async def store(self, tenant: str, key: str, generation: int, entry: Entry, ttl: float) -> None:
        """Keep `entry`, fetched under `generation`: it is served only while that is the tenant's."""

    async def invalidate(self, tenant: str) -> None: ...


class MemoryResponseStore:
    """Entries in this process; past `max_bytes`, the least recently used are evicted. An entry's
    size is its body, its headers and an estimate of what holding it costs (`Entry.footprint`)."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._generations: dict[str, int] = {}
        self._entries: OrderedDict[tuple[str, str], tuple[int, float, Entry]] = OrderedDict()

    async def lookup(self, tenant: str, key: str) -> tuple[Entry | None, int]:
        generation = self._generations.get(tenant, 0)
        found = self._entries.get((tenant, key))
        if found is None:
            return None, generation
        entry_generation, expires, entry = found
        if entry_generation != generation or expires <= time.monotonic():
            self._drop((tenant, key))
            return None, generation
        self._entries.move_to_end((tenant, key))
        return entry, generation

    async def store(self, tenant: str, key: str, generation: int, entry: Entry, ttl: float) -> None:
        self._drop((tenant, key))
        self._entries[(tenant, key)] = (generation, time.monotonic() + ttl, entry)
        self._bytes += entry.footprint
        while self._bytes > self._max_bytes and self._entries:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: tuple[str, str]) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self._bytes -= found[2].footprint

    async def invalidate(self, tenant: str) -> None:
        self._generations[tenant] = self._generations.get(tenant, 0) + 1


class RedisResponseStore:
    """Entries shared by every gateway replica: one key per entry, one generation key per tenant.

    Both keys of a tenant share the hash tag `{tenant}`, so a Redis Cluster keeps them on one node.
    A lookup is one `MGET` (generation and entry), a store one `SET` with an expiry, an
    invalidation one `INCR`. Old generations' entries are never served and simply expire.
    """

    def __init__(self, redis: Any, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}:gateway-cache"

    def _keys(self, tenant: str, key: str) -> tuple[str, str]:
        return f"{self._prefix}:{{{tenant}}}:generation", f"{self._prefix}:{{{tenant}}}:entry:{key}"

    async def lookup(self, tenant: str, key: str) -> tuple[Entry | None, int]:
        generation_raw, entry_raw = await self._redis.mget(self._keys(tenant, key))
        generation = int(generation_raw or 0)
        if entry_raw is None:
            return None, generation
        entry_generation, entry = Entry.decode(entry_raw)
        return (entry if entry_generation == generation else None), generation

    async def store(self, tenant: str, key: str, generation: int, entry: Entry, ttl: float) -> None:
        await self._redis.set(self._keys(tenant, key)[1], entry.encode(generation), px=max(1, int(ttl * 1000)))

    async def invalidate(self, tenant: str) -> None:
        await self._redis.incr(self._keys(tenant, "")[0])


class ResponseCache:
    def __init__(self, policy: CachePolicy, store: ResponseStore, *, ttl_seconds: float, max_body_bytes: int) -> None:
        self.policy = policy
        self.store = store
        self._ttl = ttl_seconds
        self._max_body = max_body_bytes

    def covers(self, route: str) -> bool:
        return route in self.policy.routes

    @staticmethod
    def cacheable(method: str, principal: Principal) -> bool:
        return method == "GET" and not principal.has_any(ADMIN_ROLES)

    @staticmethod
    def key(path: str, query: bytes) -> str:
        # Parameters sorted by name; the values of a repeated one keep their order (it may matter).
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        canonical = urlencode(sorted(pairs, key=lambda pair: pair[0]))
        return hashlib.blake2b(f"{path}?{canonical}".encode(), digest_size=16).hexdigest()

    async def lookup(self, tenant: str, key: str) -> tuple[Entry | None, int | None]:
        """The current entry (or None) and the generation to store under (None: the store failed)."""
        try:
            entry, generation = await self.store.lookup(tenant, key)
        except Exception as exc:
            self._store_failed("lookup", exc)
            LOOKUPS.labels("error").inc()
            return None, None
        DEPENDENCIES.available(_REDIS)
        LOOKUPS.labels("hit" if entry is not None else "miss").inc()
        return entry, generation

    async def send_entry(self, entry: Entry, send: Send) -> None:
        age = max(0, int(time.time() - entry.stored_at))
        await send({"type": "http.response.start", "status": entry.status,
                    "headers": [*entry.headers, (CACHE_HEADER, b"hit"), (b"age", str(age).encode())]})
        await send({"type": "http.response.body", "body": entry.body})

    def recording(self, send: Send, tenant: str, key: str, generation: int) -> tuple[Send, _Recorder]:
        """A `send` that passes the upstream's answer on (marked a miss) and records it for `keep`."""
        recorder = _Recorder(self._max_body, tenant, key, generation)

        async def send_recorded(message: AsgiMessage) -> None:
            if message["type"] == "http.response.start":
                recorder.start(message)
                message["headers"] = [*message.get("headers", ()), (CACHE_HEADER, b"miss")]
            elif message["type"] == "http.response.body":
                recorder.body(message)
            await send(message)

        return send_recorded, recorder

    async def keep(self, recorder: _Recorder) -> None:
        entry = recorder.entry()
        if entry is None:
            return
        try:
            await self.store.store(recorder.tenant, recorder.key, recorder.generation, entry, self._ttl)
        except Exception as exc:
            self._store_failed("store", exc)

    async def invalidate(self, tenant: str, cause: str) -> None:
        """Drop every entry of the tenant. Raises if the store failed (an event is then redelivered)."""
        await self.store.invalidate(tenant)
        INVALIDATIONS.labels(cause).inc()
        log.debug("gateway.cache_invalidated", tenant_id=tenant, cause=cause)

    async def invalidate_after_write(self, tenant: str) -> None:
        try:
            await self.invalidate(tenant, "write")
        except Exception as exc:  # the event that the write records invalidates later
            self._store_failed("invalidate", exc)

    async def apply_events(self, messages: Sequence[Message]) -> None:
        """The bus delivery of invalidating events: drop the cached reads of their tenants, each once."""
        tenants: dict[str, None] = {}
        for message in messages:
            try:
                tenants[Envelope.from_json(message.value).tenant_id] = None
            except ValueError:
                log.warning("gateway.cache_event_unreadable", topic=message.topic)
        for tenant in tenants:
            await self.invalidate(tenant, "event")

    def _store_failed(self, operation: str, exc: Exception) -> None:
        DEPENDENCIES.unavailable(_REDIS, operation=f"response cache {operation}", error=repr(exc))


class _Recorder:
    """The upstream's answer to one cacheable read, as it passes, and where it is to be kept."""

    def __init__(self, max_body: int, tenant: str, key: str, generation: int) -> None:
        self._max_body = max_body
        self.tenant, self.key, self.generation = tenant, key, generation
        self._status = 0
        self._headers: Headers = []
        self._chunks: list[bytes] = []
        self._size = 0
        self._complete = False
        self._cacheable = False

    def start(self, message: AsgiMessage) -> None:
        self._status = message["status"]
        headers: Sequence[tuple[bytes, bytes]] = message.get("headers", ())
        self._cacheable = self._status == 200 and _cacheable_headers(headers)
        self._headers = [(k, v) for k, v in headers if k in _KEPT]

    def body(self, message: AsgiMessage) -> None:
        if not self._cacheable:
            return
        chunk = message.get("body", b"")
        self._size += len(chunk)
        if self._size > self._max_body:
            self._cacheable = False
            self._chunks.clear()
            return
        self._chunks.append(chunk)
        self._complete = not message.get("more_body", False)

    def entry(self) -> Entry | None:
        if not (self._cacheable and self._complete):
            return None
        return Entry(self._status, self._headers, b"".join(self._chunks), time.time())


def _cacheable_headers(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"set-cookie":
            return False
        if name == b"cache-control" and any(d in value.lower() for d in _UNCACHEABLE_DIRECTIVES):
            return False
    return True
