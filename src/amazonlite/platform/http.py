"""HTTP edge of every service: middleware (pure ASGI), problem responses, ops endpoints.

Middleware is plain ASGI (no `BaseHTTPMiddleware`): it runs on every request of every service and
of the gateway, so it must cost microseconds.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request, routing
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from amazonlite.platform.context import (
    CORRELATION_HEADER,
    accept_or_mint_correlation_id,
    bind_correlation_id,
)
from amazonlite.platform.db import TransientConflict, is_database_outage, is_transient_conflict
from amazonlite.platform.errors import PROBLEM_BASE, PROBLEM_JSON, AppError, BadRequest, PayloadTooLarge
from amazonlite.platform.outages import DEPENDENCIES, database_dependency
from amazonlite.platform.tracing import extract_context, tracer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = structlog.get_logger("amazonlite.http")

REQUESTS = Counter("amazonlite_http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
LATENCY = Histogram("amazonlite_http_request_duration_seconds", "HTTP request latency",
                    ["service", "method", "route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
OPS_PATHS = frozenset({"/health/live", "/health/ready", "/metrics"})


def new_app(**kwargs: Any) -> FastAPI:
    """A FastAPI app for a service or the gateway. FastAPI's own OpenTelemetry spans, metrics and
    logs are off: `EdgeMiddleware` owns them (one server span per request, Prometheus metrics with
    the route template, the correlation id), and two layers would double every span."""
    return FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
                   **kwargs)


def problem_body(status: int, type_: str, title: str, detail: str, correlation_id: str | None,
                 **extra: Any) -> bytes:
    return orjson.dumps({
        "type": type_ if "://" in type_ else PROBLEM_BASE + type_,
        "title": title, "status": status, "detail": detail, "correlation_id": correlation_id, **extra,
    })


def _correlation(scope: Scope) -> str | None:
    state = scope.get("state") or {}
    return state.get("correlation_id")


# A JSON `\u0000` escape (not itself escaped): PostgreSQL cannot store NUL in text, the other stores
# would keep it and hand it to every reader. Refused at the edge, the same on every backend.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_OUTAGE_STATUSES = frozenset({502, 503, 504})  # a dependency failed; logged per outage, not per request
SERVICE_STATE = "amazonlite.service"  # in the request's state: the service whose edge admitted it


class EdgeMiddleware:
    """Correlation id, a server span, input limits (body size, NUL characters), request metrics, and
    an error log line for every 5xx but an expected outage's 503 or 504 (those are logged once per
    outage, where the failing dependency is known: `platform/outages.py`)."""

    def __init__(self, app: ASGIApp, *, service: str, max_body_bytes: int) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes
        self._tracer = tracer("amazonlite.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        incoming = None
        content_length = None
        for key, value in headers:
            if key == b"x-correlation-id":
                incoming = value.decode("latin-1")
            elif key == b"content-length":
                content_length = value
        correlation_id = accept_or_mint_correlation_id(incoming)
        state = scope.setdefault("state", {})
        state["correlation_id"] = correlation_id
        state[SERVICE_STATE] = self.service
        bind_correlation_id(correlation_id)
        structlog.contextvars.bind_contextvars(service=self.service)
        method = scope["method"]
        path = scope["path"]
        status_holder = [500]
        cid_header = (CORRELATION_HEADER.encode(), correlation_id.encode())

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                message["headers"] = [*message.get("headers", ()), cid_header]
            await send(message)

        if content_length is not None and (not content_length.isdigit()
                                           or int(content_length) > self.max_body_bytes):
            await self._reject(scope, send_wrapper, PayloadTooLarge(
                f"The body is larger than {self.max_body_bytes} bytes"))
            return
        if b"%00" in scope.get("query_string", b"") or "\x00" in path:
            await self._reject(scope, send_wrapper, NulCharacter("The URL holds a NUL character"))
            return
        if method in _BODY_METHODS:
            # Bodies are small (bounded above): read them whole, check them, replay them to the app.
            try:
                body = await self._read_body(receive)
            except _ClientGone:
                return  # went away mid-body (or the server cut it off as too slow): nobody to answer
            if body is None:
                await self._reject(scope, send_wrapper, PayloadTooLarge(
                    f"The body is larger than {self.max_body_bytes} bytes"))
                return
            if _JSON_NUL.search(body):
                await self._reject(scope, send_wrapper, NulCharacter("A text field holds a NUL character"))
                return
            receive = _replay(body, receive)

        start = time.perf_counter()
        with self._tracer.start_as_current_span(
            f"{method} {path}", context=extract_context(_str_headers(headers)), kind=trace.SpanKind.SERVER,
        ) as span:
            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                elapsed = time.perf_counter() - start
                route = _route_template(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.response.status_code", status_holder[0])
                status = str(status_holder[0])
                REQUESTS.labels(self.service, method, route, status).inc()
                LATENCY.labels(self.service, method, route).observe(elapsed)
                if status_holder[0] >= 500 and status_holder[0] not in _OUTAGE_STATUSES:
                    log.error("http.request_failed", method=method, path=path, status=status_holder[0],
                              duration_ms=round(elapsed * 1000, 2))

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it exceeds the limit (chunked bodies declare no length)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _reject(self, scope: Scope, send: Send, err: AppError) -> None:
        body = problem_body(err.status, err.type, err.title, err.detail, _correlation(scope))
        headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
        if isinstance(err, PayloadTooLarge):
            # The body is left unread: the server drains what follows and ends the connection, and
            # says so, so that a client does not send its next request on it.
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": err.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _ClientGone(Exception):
    pass


class NulCharacter(BadRequest):
    type = "nul-character"
    title = "NUL characters are not accepted"


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = [False]

    async def replay() -> Message:
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # http.disconnect, when the client goes away

    return replay


def _str_headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in headers if k in (b"traceparent", b"tracestate")}


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return str(path)
    return scope.get("amazonlite.route", "unmatched")


def problem_response(request: Request, status: int, type_: str, title: str, detail: str,
                     headers: dict[str, str] | None = None, **extra: Any) -> Response:
    body = problem_body(status, type_, title, detail, _correlation(request.scope), **extra)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    async def app_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AppError)
        return problem_response(request, exc.status, exc.type, exc.title, exc.detail, exc.headers, **exc.extra)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        if any(e["type"] == "json_invalid" for e in errors):
            return problem_response(request, 400, "malformed-json", "The body is not valid JSON",
                                    "The request body could not be parsed as JSON", errors=errors)
        return problem_response(request, 422, "validation-error", "The request is not valid",
                                "One or more fields are missing or not valid", errors=errors)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        headers = dict(exc.headers or {})
        if status == 400 and exc.detail == _UNPARSABLE_BODY:
            # FastAPI's answer to a body its JSON parser gave up on: not UTF-8, nested too deep,
            # or a number too long to convert.
            return problem_response(request, 400, "malformed-json", "The body is not valid JSON",
                                    "The request body could not be parsed as JSON (it is not UTF-8, it is nested "
                                    "too deep, or it holds a number too long)", headers)
        if status == 405:
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
        phrase = HTTPStatus(status).phrase if status in _STATUSES else "Error"
        slug = _SLUGS.get(status) or phrase.lower().replace(" ", "-").replace("'", "")
        return problem_response(request, status, slug, phrase, str(exc.detail), headers)

    async def database_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DBAPIError)
        if isinstance(exc, IntegrityError):
            # A uniqueness or reference race that the service did not turn into its own error first.
            log.warning("http.integrity_error", path=request.url.path, error=type(exc.orig).__name__)
            return problem_response(request, 409, "conflict", "Conflict",
                                    "The request conflicts with the current state (it may have raced another "
                                    "request); read the resource again and retry")
        if is_transient_conflict(exc):
            return await lost_a_race(request, exc)
        if is_database_outage(exc):
            return await database_unavailable(request, exc)
        if _is_data_error(exc):
            # The store refused a value (out of range, too long, not representable): the input's
            # fault, not the server's. No value is echoed.
            log.warning("http.data_error", path=request.url.path, error=type(exc.orig).__name__)
            return problem_response(request, 422, "invalid-value", "A value cannot be stored",
                                    "A field holds a value the store cannot accept (a number out of range, a "
                                    "text too long, or a character it cannot represent)")
        return await unexpected(request, exc)

    async def lost_a_race(request: Request, exc: Exception) -> Response:
        # A deadlock victim, a serialization failure, a lock wait timed out, or a unit of work that
        # found a concurrent change (`TransientConflict`): the request was undone; retrying it is safe.
        error = type(exc.orig).__name__ if isinstance(exc, DBAPIError) else type(exc).__name__
        log.warning("http.lock_conflict", path=request.url.path, error=error)
        return problem_response(request, 409, "concurrent-update", "Another change got there first",
                                "The request collided with a concurrent change and was undone; retry it",
                                headers={"Retry-After": "1"})

    async def database_unavailable(request: Request, exc: Exception) -> Response:
        # An outage, not a bug: no stack trace, one warning per outage rather than per request
        # (`db.py` reports the next commit), and the caller may come back shortly (the gateway's
        # breaker counts these and stops sending while it lasts). Also registered for the socket
        # errors that drivers raise unwrapped when they cannot connect (asyncpg:
        # ConnectionRefusedError, or socket.gaierror when the database's host name no longer resolves).
        service = request.scope.get("state", {}).get(SERVICE_STATE, "unknown")
        DEPENDENCIES.unavailable(database_dependency(service), path=request.url.path, error=repr(exc)[:300])
        return problem_response(request, 503, "database-unavailable", "The service's database is unavailable",
                                "The service cannot reach its database right now; retry shortly",
                                headers={"Retry-After": "1"})

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("http.unhandled_error", path=request.url.path)
        return problem_response(request, 500, "internal-error", "Internal error",
                                "An unexpected error occurred; quote the correlation id when reporting it")

    app.add_exception_handler(AppError, app_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(DBAPIError, database_error)
    app.add_exception_handler(TransientConflict, lost_a_race)
    app.add_exception_handler(ConnectionRefusedError, database_unavailable)
    app.add_exception_handler(socket.gaierror, database_unavailable)
    app.add_exception_handler(Exception, unexpected)


_UNPARSABLE_BODY = "There was an error parsing the body"
_STATUSES = frozenset(HTTPStatus)
_SLUGS = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized"}


def _allowed_methods(request: Request) -> str:
    """Every method of every route at the request's path (Starlette names only the first route's)."""
    methods: set[str] = set()
    # Every route, those of included routers too (FastAPI nests them: not in `router.routes`).
    for route in routing.iter_route_contexts(request.app.router.routes):
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route_methods
    return ", ".join(sorted(methods))


def _is_data_error(exc: DBAPIError) -> bool:
    """SQLSTATE class 22 ("data exception") on any driver; asyncpg's surface as plain DBAPIErrors."""
    if isinstance(exc, DataError):
        return True
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        sqlstate = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate.startswith("22"):
            return True
    return False


PROBLEM_SCHEMA = {
    "type": "object",
    "title": "Problem",
    "description": "An RFC 9457 problem document.",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "correlation_id": {"type": "string"},
    },
    "required": ["type", "title", "status"],
}


def metrics_response() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
