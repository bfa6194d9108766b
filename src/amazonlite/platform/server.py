"""The HTTP server of every process (`amazonlite up`, `serve`, `gateway`): uvicorn with httptools,
with the limits a server facing hostile clients needs and that uvicorn does not have.

- A request's head (request line and headers) must arrive within `header_timeout_seconds` of its
  first byte, and its body within `body_timeout_seconds` of its head: a slow client gets a 408
  problem and the connection is closed. A connection that sends nothing is closed after
  `header_timeout_seconds` (or `keep_alive_seconds`, if shorter); an idle kept-alive one after
  `keep_alive_seconds`, which is longer than the idle timeout of the clients and load balancers in
  front (httpx 5 s, AWS ALB 60 s): the client closes an idle connection first, so the server never
  closes one just as a request is sent on it, which the client would see as a disconnection.
- A URL longer than `max_url_bytes` is refused with 414, a head larger than `max_header_bytes` or
  with more than `max_headers` headers with 431; the server stops reading at the limit.
- Malformed HTTP (a NUL in a header, `Content-Length: abc`, both `Content-Length` and
  `Transfer-Encoding`, …) is a 400 problem.
- A request whose body was not read to its end when its answer was sent (the edge refused it as
  too large, or an upstream answered before the body was through) is not cut off with unread data
  in the socket, which resets the connection before the client has read the answer: the answer
  says `Connection: close`, and the server shuts down its side, reads and discards at most
  `drain_max_bytes` more during at most `drain_seconds`, then closes.
- A client may send its next request on the connection as soon as it has an answer's last byte,
  before the server's cycle has ended that answer (a proxy relaying a streamed upstream answer ends
  it with an empty message, after an await): the request is queued and served. Each cycle's end and
  close act on that cycle's request only; acting on the connection's latest request instead drained
  and closed that request unanswered, which clients saw as "server disconnected" under load.
- No forwarding header is believed: uvicorn's `proxy_headers` is off, so `scope["client"]` is the
  peer of the connection; only the gateway reads `X-Forwarded-For`, from trusted proxies.
- With several workers, a worker ends when its supervisor does, even if that was killed with
  SIGKILL, so no orphan keeps the port.

Each of these answers is an RFC 9457 problem with its correlation id (also in `X-Correlation-ID`,
and in the `server.request_refused` log line). What no answer can be given to: a connection idle
before its first byte is closed silently (there is no request to answer); a client that sends more
than `drain_max_bytes` after its answer may see a reset before it reads the answer; TLS and HTTP/2
are not served here (a proxy in front terminates them, with its own error pages).

The deadlines are checked by one sweep per process every half second over the open connections,
so a request costs the server two float assignments rather than two timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import multiprocessing
import os
import signal
import sys
import time
from functools import cache
from typing import Any
from weakref import WeakSet

import httptools
import structlog
import uvicorn
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState
from uvicorn.supervisors import Multiprocess

from amazonlite.platform.context import CORRELATION_HEADER, accept_or_mint_correlation_id
from amazonlite.platform.errors import (
    PROBLEM_JSON,
    AppError,
    HeadersTooLarge,
    MalformedRequest,
    RequestTimeout,
    UriTooLong,
)
from amazonlite.platform.http import problem_body

log = structlog.get_logger("amazonlite.server")


class ServerSettings(BaseSettings):
    """`AMAZONLITE_SERVER_*`: limits of the HTTP server, read by every server process at start."""

    model_config = SettingsConfigDict(env_prefix="AMAZONLITE_SERVER_", extra="ignore")

    header_timeout_seconds: float = Field(default=10.0, gt=0)
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    keep_alive_seconds: int = Field(default=75, ge=1)
    max_url_bytes: int = Field(default=8 * 1024, ge=256)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    max_headers: int = Field(default=100, ge=8)
    drain_max_bytes: int = Field(default=8 * 1024 * 1024, ge=0)
    drain_seconds: float = Field(default=5.0, ge=0)
    graceful_shutdown_seconds: int = Field(default=5, ge=0)


@cache
def server_settings() -> ServerSettings:
    return ServerSettings()


def serve(app: str, *, host: str, port: int, workers: int = 1) -> None:
    """Serve the ASGI app factory at `app` ("module:function") until interrupted."""
    config = _Config(app, factory=True, host=host, port=port, workers=workers, **uvicorn_options())
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: uvicorn shut down gracefully, then re-raised it
        if workers > 1:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
            return
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class _Config(uvicorn.Config):
    def load(self) -> None:  # in each worker process, as it starts
        _end_with_supervisor()
        super().load()


def _end_with_supervisor() -> None:
    """A worker process ends when its supervisor does, even one killed with SIGKILL: an orphan
    worker would keep serving, and keep the port, after its server is gone (a restart could not
    bind it). Linux's parent-death signal; elsewhere, and in a single-process server, nothing."""
    supervisor = multiprocessing.parent_process()
    if supervisor is None or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)  # graceful: listeners close first
    if not supervisor.is_alive():  # it died before the signal was asked for
        os.kill(os.getpid(), signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


def uvicorn_options() -> dict[str, Any]:
    """The settings of every server process (also the tests' servers)."""
    settings = server_settings()
    return {
        "http": f"{__name__}:{EdgeHttpProtocol.__name__}",  # an import path: each worker loads it
        "proxy_headers": False, "server_header": False, "access_log": False, "log_config": None,
        "timeout_keep_alive": settings.keep_alive_seconds,
        "timeout_graceful_shutdown": settings.graceful_shutdown_seconds,
    }


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing and answer `error`."""

    def __init__(self, error: AppError) -> None:
        super().__init__(error.detail)
        self.error = error


class _CycleTransport:
    """The connection as one request's cycle sees it: when the cycle closes it after its answer, the
    protocol decides how (at once, or draining a body nobody read), knowing which request asks."""

    __slots__ = ("_cycle", "_protocol", "get_extra_info", "is_closing", "write")

    def __init__(self, protocol: EdgeHttpProtocol, transport: asyncio.Transport, cycle: Any) -> None:
        self._protocol = protocol
        self._cycle = cycle
        self.write = transport.write
        self.is_closing = transport.is_closing
        self.get_extra_info = transport.get_extra_info

    def close(self) -> None:
        self._protocol.close_after_answer(self._cycle)


# What a connection is waiting for, and so what its deadline means when it passes.
_IDLE, _HEAD, _BODY, _DRAIN = "idle", "head", "body", "drain"


class EdgeHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = server_settings()
        self._waiting_for = _IDLE
        self._deadline: float | None = None
        self._head_bytes = 0
        self._chunk_bytes = 0
        self._drain_left = 0

    # Connection -------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a byte is closed once a request's head would have been late.
        first_byte = min(self.timeout_keep_alive, self.settings.header_timeout_seconds)
        self.timeout_keep_alive_task = self.loop.call_later(first_byte, self.timeout_keep_alive_handler)
        if self.server_state not in _SWEPT:
            _SWEPT.add(self.server_state)
            self.loop.call_later(_SWEEP_SECONDS, _sweep, self.loop, self.connections)

    def connection_lost(self, exc: Exception | None) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # The client went away (or the network broke) while its request was in progress.
            log.info("server.connection_lost_mid_request", path=cycle.scope.get("path"), waiting_for=self._waiting_for,
                     answer_started=cycle.response_started, error=repr(exc) if exc else None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._waiting_for is _DRAIN:
            self._drain_left -= len(data)
            if self._drain_left < 0:
                self.transport.close()
            return
        self._unset_keepalive_if_required()
        self._chunk_bytes = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _Refused):
                self._refuse(cause.error)
            else:
                log.exception("server.parser_callback_failed")
                self._refuse(MalformedRequest("The request could not be read"))
            return
        except httptools.HttpParserError as exc:
            self._refuse(MalformedRequest(f"The request is not valid HTTP/1.1: {exc}"))
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._waiting_for is _IDLE and (self.cycle is None or self.cycle.response_complete):
            # Bytes that began no request (blank lines the parser skips before a request line): the
            # keep-alive timer is off, so the head's deadline runs from them, or they hold it open.
            self._waiting_for = _HEAD
            self._head_bytes = 0
            self._deadline = time.monotonic() + self.settings.header_timeout_seconds
        if self._waiting_for is _HEAD:
            # Counted per chunk (a chunk may also hold the end of the previous request): the parser
            # keeps a header it has not finished in memory, so this bounds that too.
            self._head_bytes += len(data)
            limit = self.settings.max_header_bytes
            if self._head_bytes > limit:
                self._refuse(HeadersTooLarge(f"The request's head is larger than {limit} bytes"))

    def eof_received(self) -> None:
        if self._waiting_for is _DRAIN:
            self.transport.close()

    # Parser callbacks -------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._waiting_for = _HEAD
        self._head_bytes = 0
        self._deadline = time.monotonic() + self.settings.header_timeout_seconds

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.settings.max_url_bytes:
            raise _Refused(UriTooLong(f"The URL is longer than {self.settings.max_url_bytes} bytes"))

    def on_headers_complete(self) -> None:
        limit = self.settings.max_header_bytes
        if len(self.headers) > self.settings.max_headers:
            raise _Refused(HeadersTooLarge(f"The request has more than {self.settings.max_headers} headers"))
        # Measured exactly only when what arrived could exceed the limit (a head whole in one chunk).
        if (self._head_bytes + self._chunk_bytes > limit
                and len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers) > limit):
            raise _Refused(HeadersTooLarge(f"The request's head is larger than {limit} bytes"))
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None:
            cycle.transport = _CycleTransport(self, self.transport, cycle)  # type: ignore[assignment]
            cycle.on_response = functools.partial(self._answered, cycle)
            self._close_if_answered_early(cycle)
        self._waiting_for = _BODY
        self._deadline = time.monotonic() + self.settings.body_timeout_seconds

    def _close_if_answered_early(self, cycle: Any) -> None:
        """An answer that starts before its request's body has arrived says `Connection: close`:
        the connection ends after it (`on_response_complete` drains the rest), and a client that
        reused it for its next request would see it closed without an answer."""
        send = cycle.send

        async def send_closing_early(message: Any) -> None:
            if message["type"] == "http.response.start" and self._waiting_for is _BODY and self.cycle is cycle:
                cycle.keep_alive = False
            await send(message)

        cycle.send = send_closing_early

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self._waiting_for is _BODY:
            self._waiting_for = _IDLE
            self._deadline = None

    def _answered(self, cycle: Any) -> None:
        """`cycle`'s answer is complete. The state of the connection is that of the request read
        last, which is not always `cycle`'s: a client may send its next request as soon as it has the
        last byte of an answer, before the cycle has sent its end (a proxy relays a streamed answer
        and ends it with an empty message), and that request is then queued behind `cycle`, its body
        maybe not read yet. Only a request answered before its own body arrived ends the connection."""
        if cycle is self.cycle and self._waiting_for is _BODY:
            # Answered before its body arrived (refused, or not needed): the connection cannot be
            # reused until the rest is read, so it ends here, without a reset.
            self._drain()
        if self._waiting_for is _DRAIN:
            self.server_state.total_requests += 1
            return
        self.on_response_complete()  # the next request queued behind it starts, or the keep-alive timer

    # Ends of a connection ---------------------------------------------------------------------

    def close_after_answer(self, cycle: Any) -> None:
        """`cycle` ends the connection after its answer (it said `Connection: close`). Unread bytes
        would make the close a reset, which can cost the client that answer: the body of `cycle`'s
        own request, or a request the client sent behind it (queued, unread, and now not served)."""
        if cycle is not self.cycle or self._waiting_for is _BODY:
            self._drain()
        else:
            self.transport.close()

    def _drain(self) -> None:
        """Close our side, read and drop what the client is still sending (a bounded amount), then
        close: closing with unread data in the socket would reset the connection, and the client
        would lose the answer it has not read yet."""
        if self._waiting_for is _DRAIN or self.transport.is_closing():
            return
        self._waiting_for = _DRAIN
        self._drain_left = self.settings.drain_max_bytes
        self._deadline = time.monotonic() + self.settings.drain_seconds
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        else:
            self.transport.close()

    def _refuse(self, error: AppError) -> None:
        """Answer a request no app will see, then end the connection."""
        cycle = self.cycle
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            # An answer is on the wire (a pipelined request went wrong behind it): it is cut short.
            cycle.disconnected = True
            cycle.message_event.set()
            self.transport.close()
            return
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app, if it runs, sees the client gone; its answer goes nowhere
            cycle.message_event.set()
        correlation_id = accept_or_mint_correlation_id(None)
        body = problem_body(error.status, error.type, error.title, error.detail, correlation_id)
        head = [STATUS_LINE[error.status]]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [b"content-type: ", PROBLEM_JSON.encode(), b"\r\n",
                 b"content-length: ", str(len(body)).encode(), b"\r\n",
                 CORRELATION_HEADER.encode(), b": ", correlation_id.encode(), b"\r\n",
                 b"connection: close\r\n\r\n"]
        self.transport.write(b"".join(head) + body)
        log.info("server.request_refused", status=error.status, problem=error.type, detail=error.detail,
                 client=self.client[0] if self.client else None, correlation_id=correlation_id)
        self._waiting_for = _BODY  # whatever the client still sends is drained, not parsed
        self._drain()

    def timed_out(self) -> None:
        """The deadline of what the connection was waiting for has passed."""
        waiting_for = self._waiting_for
        self._deadline = None
        if waiting_for is _DRAIN:
            self.transport.close()
        elif waiting_for is _HEAD:
            self._refuse(RequestTimeout(
                f"The request's headers did not arrive within {self.settings.header_timeout_seconds:g} s"))
        elif waiting_for is _BODY:
            self._refuse(RequestTimeout(
                f"The request's body did not arrive within {self.settings.body_timeout_seconds:g} s"))


_SWEEP_SECONDS = 0.5
_SWEPT: WeakSet[ServerState] = WeakSet()  # the servers whose connections are swept


def _sweep(loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
    now = time.monotonic()
    for connection in list(connections):
        deadline = getattr(connection, "_deadline", None)
        if deadline is not None and deadline <= now and isinstance(connection, EdgeHttpProtocol):
            connection.timed_out()
    if loop.is_closed():
        return
    loop.call_later(_SWEEP_SECONDS, _sweep, loop, connections)
