"""`Idempotency-Key` on unsafe endpoints: a retried request gets the first one's answer.

A router opts in with its route class; its POST, PUT, PATCH and DELETE routes then honour the header
(GET, HEAD and OPTIONS are left alone):

    router = APIRouter(prefix="/api/v1/cart", route_class=IdempotentRoute)            # header optional
    router = APIRouter(prefix="/api/v1/orders", route_class=IdempotencyRequiredRoute)  # header required

and the service keeps the keys in its own database: `add_idempotency_table(Base.metadata)` in its
`models.py`, the table in its Alembic history, and on PostgreSQL in its row-level security.

A request that carries `Idempotency-Key` (1-255 printable ASCII characters, no space first or last) is
fingerprinted (method, path, query, body; a JSON body canonically, so key order and spacing do not
matter) and claimed under (tenant, caller, key), the caller being the signed-in user, else the guest
cart (a well-formed `X-Cart-Id`), else the tenant's anonymous callers from the client's address. The claim is its
own short transaction, committed before the endpoint runs, so a concurrent duplicate sees it:

- same key, same request, answered before: that answer again (status, body, and the headers that
  matter: content type, `Location`, `ETag`, `X-Cart-Id`), with `Idempotent-Replayed: true`; a 4xx the
  endpoint raised is an answer too;
- same key, another request: 409 `idempotency-key-reused`;
- same key while the first request still runs: 409 `request-in-progress`, `Retry-After: 1`;
- a 5xx, an unexpected exception, an error the database raised (a lost race, an outage; the request
  may succeed when retried), a 401, 408 or 429, or any answer with `Retry-After` is not kept: the key
  is released and a retry runs again;
- a claim never completed (its process died) can be taken over, by the same request, after the lease
  (`AMAZONLITE_IDEMPOTENCY_LEASE_SECONDS`, 60 s); a key is forgotten after
  `AMAZONLITE_IDEMPOTENCY_TTL_SECONDS` (24 h), and expired rows are deleted by the claims themselves,
  at most once per `AMAZONLITE_IDEMPOTENCY_PURGE_INTERVAL_SECONDS` per process.

The answer is stored once the endpoint's unit of work has committed (an exit callback on FastAPI's
function-scoped dependency stack, which unwinds after the session dependency's commit: a session
dependency of an idempotent route must be function-scoped, as `SessionDep` is). That is a
second transaction: if the process dies between the two, the claim outlives the lease unanswered and
a retry runs the endpoint again. An endpoint whose effect must never repeat (checkout) also records
the key with its own rows.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Annotated, Any, ClassVar
from urllib.parse import parse_qsl

import orjson
import structlog
from fastapi import Depends, Header, Request, Response, routing
from fastapi.exceptions import RequestValidationError
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    Uuid,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from amazonlite.platform.db import UTC, Database, utcnow
from amazonlite.platform.errors import AppError, BadRequest, Conflict, document_problem
from amazonlite.platform.openapi import RETRY_AFTER
from amazonlite.platform.resilience import IDEMPOTENCY_KEY_HEADER
from amazonlite.platform.security import Principal, get_principal, requires_user
from amazonlite.platform.tenancy import UNSCOPED

log = structlog.get_logger("amazonlite.idempotency")

IDEMPOTENCY_TABLE = "idempotency_keys"
HEADER = IDEMPOTENCY_KEY_HEADER.title()  # as documented: "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_MAX = 255
# Printable ASCII, no space first or last (an HTTP server strips those: the key would change on the way).
KEY_PATTERN = "^[!-~](?:[ -~]*[!-~])?$"
_KEY = re.compile(KEY_PATTERN)
# The headers of an answer that are replayed with it (lower case), besides a route's guest header;
# the rest are the request's own.
KEPT_HEADERS = frozenset({"content-type", "location", "etag"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The answer's body, base64: one text type on every store (aiomysql cannot bind bytes), and MySQL's
# TEXT holds only 64 kB.
BODY = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


class IdempotencySettings(BaseSettings):
    """`AMAZONLITE_IDEMPOTENCY_*`, shared by every service."""

    model_config = SettingsConfigDict(env_prefix="AMAZONLITE_IDEMPOTENCY_", extra="ignore")

    ttl_seconds: float = Field(default=86_400, gt=0)
    lease_seconds: float = Field(default=60, gt=0)
    purge_interval_seconds: float = Field(default=300, gt=0)


class InvalidIdempotencyKey(BadRequest):
    type = "invalid-idempotency-key"
    title = "The Idempotency-Key header is not valid"


class IdempotencyKeyRequired(BadRequest):
    type = "idempotency-key-required"
    title = "This request needs an Idempotency-Key header"


class IdempotencyKeyReused(Conflict):
    type = "idempotency-key-reused"
    title = "The Idempotency-Key was used for another request"


class RequestInProgress(Conflict):
    type = "request-in-progress"
    title = "A request with this Idempotency-Key is still running"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})


def add_idempotency_table(metadata: MetaData) -> Table:
    """The keys of a service that has idempotent routes, in its own database (call it in models.py)."""
    return Table(
        IDEMPOTENCY_TABLE, metadata,
        Column("tenant_id", String(64), nullable=False),
        # SHA-256 (hex) of the caller and the key: fixed length, and exact on a case-insensitive collation.
        Column("key_hash", String(64), nullable=False),
        Column("fingerprint", String(64), nullable=False),
        # Who holds the claim: only they complete or release it; a takeover gives it a new one.
        Column("claim_id", Uuid, nullable=False),
        Column("claimed_at", UTC, nullable=False),
        Column("expires_at", UTC, nullable=False),
        # The answer, once there is one (status null: the first request is still running).
        Column("status", Integer, nullable=True),
        Column("headers", Text, nullable=True),
        Column("body", BODY, nullable=True),
        PrimaryKeyConstraint("tenant_id", "key_hash"),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    """The request runs; its answer is stored (`complete`) or the key released (`release`)."""

    claim_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Replay:
    """The first request's answer."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def response(self) -> Response:
        response = Response(self.body, status_code=self.status)
        for name, value in self.headers:
            response.headers[name] = value
        response.headers[REPLAYED_HEADER] = "true"
        return response


class IdempotencyStore:
    """Claims, answers and releases of keys in one service's table. Each call is its own transaction."""

    def __init__(self, db: Database, table: Table, settings: IdempotencySettings | None = None, *,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.db = db
        self.table = table
        self.settings = settings or IdempotencySettings()
        self.clock = clock
        self._next_purge = 0.0

    def _key(self, tenant_id: str, key_hash: str) -> Any:
        return (self.table.c.tenant_id == tenant_id) & (self.table.c.key_hash == key_hash)

    async def claim(self, tenant_id: str, key_hash: str, fingerprint: str) -> Claimed | Replay:
        """Claim the key for a request, or the first answer to it. Raises `IdempotencyKeyReused` or
        `RequestInProgress`."""
        t = self.table
        for _ in range(3):  # a row released or taken over between two statements: look again
            now = self.clock()
            claim_id = uuid.uuid4()
            claim = {"fingerprint": fingerprint, "claim_id": claim_id, "claimed_at": now,
                     "expires_at": now + dt.timedelta(seconds=self.settings.ttl_seconds)}
            try:
                async with self.db.session(tenant_id=tenant_id) as session:
                    await session.execute(insert(t).values(tenant_id=tenant_id, key_hash=key_hash, **claim))
            except IntegrityError:
                pass  # the key is known: below
            else:
                await self._purge_now_and_then()
                return Claimed(claim_id)
            async with self.db.session(tenant_id=tenant_id) as session:
                row = (await session.execute(select(t).where(self._key(tenant_id, key_hash)))).first()
                if row is None:
                    continue
                expired = row.expires_at <= now
                abandoned = (row.status is None and row.fingerprint == fingerprint
                             and row.claimed_at <= now - dt.timedelta(seconds=self.settings.lease_seconds))
                if expired or abandoned:
                    taken = await session.execute(
                        update(t).where(self._key(tenant_id, key_hash), t.c.claim_id == row.claim_id)
                        .values(status=None, headers=None, body=None, **claim))
                    if taken.rowcount == 1:  # type: ignore[attr-defined]
                        log.info("idempotency.claim_taken_over", tenant=tenant_id, expired=expired)
                        return Claimed(claim_id)
                    continue
                if row.fingerprint != fingerprint:
                    raise IdempotencyKeyReused("This Idempotency-Key was first sent with another request "
                                               "(method, path, query or body); use a new key for a new request")
                if row.status is None:
                    raise RequestInProgress("The first request with this Idempotency-Key is still running; "
                                            "retry shortly")
                return Replay(row.status, [(str(n), str(v)) for n, v in orjson.loads(row.headers or "[]")],
                              base64.b64decode(row.body or ""))
        raise RequestInProgress("Requests with this Idempotency-Key are racing; retry shortly")

    async def complete(self, tenant_id: str, key_hash: str, claim: Claimed, status: int,
                       headers: Sequence[tuple[str, str]], body: bytes) -> bool:
        """Store the answer of the request holding `claim`; False if the claim was lost (taken over)."""
        async with self.db.session(tenant_id=tenant_id) as session:
            result = await session.execute(
                update(self.table)
                .where(self._key(tenant_id, key_hash), self.table.c.claim_id == claim.claim_id)
                .values(status=status, headers=orjson.dumps([list(h) for h in headers]).decode(),
                        body=base64.b64encode(body).decode()))
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def release(self, tenant_id: str, key_hash: str, claim: Claimed) -> None:
        """Forget the claim: a retry with the key runs the request again."""
        async with self.db.session(tenant_id=tenant_id) as session:
            await session.execute(delete(self.table).where(self._key(tenant_id, key_hash),
                                                           self.table.c.claim_id == claim.claim_id))

    async def purge_expired(self) -> int:
        """Delete every tenant's expired keys; how many."""
        async with self.db.session(tenant_id=UNSCOPED) as session:
            result = await session.execute(delete(self.table).where(self.table.c.expires_at <= self.clock()))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def _purge_now_and_then(self) -> None:
        if time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + self.settings.purge_interval_seconds
        try:
            purged = await self.purge_expired()
        except Exception:
            log.warning("idempotency.purge_failed", exc_info=True)
            return
        if purged:
            log.info("idempotency.keys_purged", count=purged)


def store_of(runtime: Any) -> IdempotencyStore:
    """The runtime's store (made at first use; a test may put its own in `runtime.state.idempotency`)."""
    store: IdempotencyStore | None = getattr(runtime.state, "idempotency", None)
    if store is None:
        table = runtime.module.metadata.tables.get(IDEMPOTENCY_TABLE)
        if table is None:
            raise RuntimeError(f"the {runtime.name} service has idempotent routes but no {IDEMPOTENCY_TABLE} "
                               "table: call add_idempotency_table(Base.metadata) in its models.py")
        store = IdempotencyStore(runtime.db, table)
        runtime.state.idempotency = store
    return store


def validate_key(value: str) -> str:
    if len(value) > KEY_MAX or not _KEY.fullmatch(value):
        raise InvalidIdempotencyKey(f"An Idempotency-Key is 1-{KEY_MAX} printable ASCII characters, "
                                    "neither first nor last a space")
    return value


@dataclass(frozen=True)
class GuestScope:
    """How a service's anonymous callers name what is theirs (the cart: a guest cart's id in
    `X-Cart-Id`): their keys are scoped by it, and an answer's value of it is replayed."""

    header: str
    id_pattern: re.Pattern[str]


def caller_of(request: Request, principal: Principal, guest: GuestScope | None = None) -> str:
    """Whose key it is: the signed-in user, else what the anonymous caller names by the route's guest
    header when it is well formed, else the tenant's anonymous callers from the client's address
    (when the gateway gave it): a guest who picked the same key as another guest does not get their
    answer (a new cart's id) from afar."""
    if principal.user_id is not None:
        return f"user:{principal.user_id}"
    named = request.headers.get(guest.header) if guest is not None else None
    if guest is not None and named and guest.id_pattern.fullmatch(named):
        return f"guest:{named}"
    # No guest header, or one that names nothing (`null`, `undefined`: a client's bug many share).
    return f"anonymous:{principal.client_address or ''}"


def key_hash(caller: str, key: str) -> str:
    return hashlib.sha256(f"{caller}\x00{key}".encode()).hexdigest()


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """SHA-256 of the request: the query's pairs sorted, a JSON body in canonical form (else as sent)."""
    pairs = sorted(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), orjson.dumps(pairs), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


# The header as the document states it (the route class checks it before FastAPI does, with its own problem).
_KEY_DOC = {"alias": HEADER, "min_length": 1, "max_length": KEY_MAX, "pattern": KEY_PATTERN,
            "description": "Makes the request safe to retry: the same key with the same request answers as "
                           "the first one did (`Idempotent-Replayed: true`), for 24 hours."}


async def _optional_key(key: Annotated[str, Header(**_KEY_DOC)] = None) -> None:  # type: ignore[assignment]  # noqa: RUF013
    """Documents the optional header (a string when present: not `anyOf` string or null)."""


async def _required_key(key: Annotated[str, Header(**_KEY_DOC)]) -> None:
    """Documents the required header."""


_Problems = tuple[type[AppError], ...]
_PROBLEMS: _Problems = (InvalidIdempotencyKey, IdempotencyKeyReused, RequestInProgress)


class IdempotentRoute(routing.APIRoute):
    """A route whose unsafe methods honour an optional `Idempotency-Key` (see the module's text)."""

    key_required: ClassVar[bool] = False
    # Set by a service whose anonymous callers name what is theirs by a header (see GuestScope).
    guest_scope: ClassVar[GuestScope | None] = None

    def __init__(self, path: str, endpoint: Callable[..., Any], *, methods: Any = None,
                 responses: dict[int | str, dict[str, Any]] | None = None,
                 dependencies: Sequence[Any] | None = None, **kwargs: Any) -> None:
        self.idempotent = not set(m.upper() for m in methods or ("GET",)) <= SAFE_METHODS
        if self.idempotent:
            responses = dict(responses or {})
            problems: _Problems = (*_PROBLEMS, IdempotencyKeyRequired) if self.key_required else _PROBLEMS
            for error in problems:
                document_problem(responses, error.status, error.type, error.title)
            responses["409"].setdefault("headers", {}).update(RETRY_AFTER)
            marker = _required_key if self.key_required else _optional_key
            dependencies = [*(dependencies or ()), Depends(marker)]
        super().__init__(path, endpoint, methods=methods, responses=responses, dependencies=dependencies,
                         **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not self.idempotent:
            return handler
        required = self.key_required
        user_only = requires_user(self.dependant)
        guest = self.guest_scope
        kept = KEPT_HEADERS | {guest.header.lower()} if guest is not None else KEPT_HEADERS

        async def idempotent_handler(request: Request) -> Response:
            raw_key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
            if raw_key is None and not required:
                return await handler(request)
            principal = await get_principal(request)
            if user_only and not principal.authenticated:
                return await handler(request)  # its 401 comes first: a key means nothing from nobody
            if raw_key is None:
                raise IdempotencyKeyRequired(f"Send an {HEADER} header (a new one per new request)")
            key = validate_key(raw_key)
            store = store_of(request.app.state.runtime)
            scope_key = key_hash(caller_of(request, principal, guest), key)
            claim = await store.claim(principal.tenant_id, scope_key, fingerprint(
                request.method, request.url.path, request.scope.get("query_string", b""), await request.body()))
            if isinstance(claim, Replay):
                return claim.response()
            outcome = _Outcome(request, store, principal.tenant_id, scope_key, claim, kept)
            # Unwinds after the function-scoped dependencies (the session's commit): the answer is
            # stored only once the endpoint's work is committed, and a failed commit is seen.
            request.scope["fastapi_function_astack"].push_async_exit(outcome.finish)
            outcome.response = await handler(request)
            return outcome.response

        return idempotent_handler


class IdempotencyRequiredRoute(IdempotentRoute):
    """As `IdempotentRoute`, and a request without `Idempotency-Key` is refused (400)."""

    key_required = True


class _Outcome:
    """What became of one claimed request: stored, or released."""

    def __init__(self, request: Request, store: IdempotencyStore, tenant_id: str, key_hash: str,
                 claim: Claimed, kept: frozenset[str]) -> None:
        self.kept = kept
        self.request = request
        self.store = store
        self.tenant_id = tenant_id
        self.key_hash = key_hash
        self.claim = claim
        self.response: Response | None = None

    async def finish(self, _type: type[BaseException] | None, exc: BaseException | None,
                     _tb: TracebackType | None) -> bool:
        try:
            answer = await self._answer(exc)
            if answer is None or not _keeps(answer, exc):
                await self.store.release(self.tenant_id, self.key_hash, self.claim)
            elif not await self.store.complete(self.tenant_id, self.key_hash, self.claim, answer.status_code,
                                               _kept_headers(answer, self.kept), bytes(answer.body)):
                log.warning("idempotency.claim_lost", tenant=self.tenant_id)
        except Exception:
            # The endpoint's answer stands; the claim stays until its lease ends, then a retry runs again.
            log.warning("idempotency.store_failed", tenant=self.tenant_id, exc_info=True)
        return False  # an exception goes on to be rendered as it would have been

    async def _answer(self, exc: BaseException | None) -> Response | None:
        """The response the client gets: the endpoint's, or the rendering of an error it raised."""
        if exc is None:
            response = self.response
            return response if response is not None and hasattr(response, "body") else None
        if not isinstance(exc, (AppError, RequestValidationError, StarletteHTTPException)):
            return None  # unexpected, a database error, a cancellation: not an answer to keep
        handler = _handler_for(self.request, exc)
        if handler is None:
            return None
        rendered = await handler(self.request, exc)
        return rendered if isinstance(rendered, Response) else None


def _handler_for(request: Request, exc: Exception) -> Any:
    exception_handlers, status_handlers = request.scope.get("starlette.exception_handlers", ({}, {}))
    if isinstance(exc, StarletteHTTPException) and exc.status_code in status_handlers:
        return status_handlers[exc.status_code]
    for cls in type(exc).__mro__:
        if cls in exception_handlers:
            return exception_handlers[cls]
    return None


# Answers about the attempt rather than the request: not signed in, too slow, too many.
_NOT_KEPT = frozenset({401, 408, 429})


def _keeps(response: Response, exc: BaseException | None) -> bool:
    """Whether the answer is final: not a server error, not a "try again later", not "sign in"."""
    status = response.status_code
    if status >= 500 or status in _NOT_KEPT or "retry-after" in response.headers:
        return False
    return exc is None or 400 <= status < 500


def _kept_headers(response: Response, kept: frozenset[str]) -> list[tuple[str, str]]:
    return [(name, value) for name, value in response.headers.items() if name in kept]
