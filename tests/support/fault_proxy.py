"""A TCP proxy in front of one server that a test turns into a bad network or a broken server: a
service behind the gateway, or a database behind a service (it passes any TCP protocol on).

It listens on 127.0.0.1 and is run by an asyncio loop in a thread of its own, so a synchronous test
drives it while other processes talk through it. Modes, switched at any time (a switch first drops
every connection the proxy holds, so the next request opens a new one and meets the new mode):

- `pass_through()`: bytes go both ways untouched;
- `delay(seconds)`: a new connection is held that long (what the client sends is kept), then passed
  through; a client that gives up first is let go;
- `reset()`: a new connection is accepted and reset at once (RST), before any answer;
- `refuse()`: nothing listens on the port (connections are refused);
- `fail(status)`: every request is answered with `status` by the proxy, one request per connection
  (`Connection: close`), without reaching the server.

`connections` counts the connections accepted so far (while failing, one per request), `held`
those a delay holds right now. No real toxiproxy server can be installed here (it is a Go binary);
this is the few parts of it the resilience tests need.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from tests.support.servers import free_port

T = TypeVar("T")
CHUNK = 65_536


@dataclass(frozen=True)
class _Mode:
    name: str
    seconds: float = 0.0
    status: int = 0


class FaultProxy:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._target: tuple[str, int] | None = None
        self._mode = _Mode("pass")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._open: set[asyncio.StreamWriter] = set()  # both ends of every connection the proxy holds
        self._connections = 0
        self._held = 0

    # Lifecycle ---------------------------------------------------------------------------------

    def forward_to(self, url: str) -> str:
        """Put the proxy in front of the server at `url` (`scheme://[user@]host:port[/path]`: an HTTP
        server, a database); the same URL through the proxy, to use instead."""
        parts = urlsplit(url)
        assert parts.hostname and parts.port, url
        self._target = (parts.hostname, parts.port)
        user, at, _ = parts.netloc.rpartition("@")
        return urlunsplit(parts._replace(netloc=f"{user}{at}127.0.0.1:{self.port}"))

    @contextlib.contextmanager
    def running(self) -> Iterator[FaultProxy]:
        self._thread.start()
        try:
            self._run(self._listen())
            yield self
        finally:
            self._run(self._shutdown())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    # What the test sees and switches -----------------------------------------------------------

    @property
    def connections(self) -> int:
        return self._connections

    @property
    def held(self) -> int:
        return self._held

    def pass_through(self) -> None:
        self._switch(_Mode("pass"))

    def delay(self, seconds: float) -> None:
        self._switch(_Mode("delay", seconds=seconds))

    def reset(self) -> None:
        self._switch(_Mode("reset"))

    def refuse(self) -> None:
        self._switch(_Mode("refuse"))

    def fail(self, status: int = 500) -> None:
        self._switch(_Mode("fail", status=status))

    # Inside the proxy's loop -------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def _switch(self, mode: _Mode) -> None:
        self._run(self._apply(mode))

    async def _apply(self, mode: _Mode) -> None:
        self._mode = mode
        await self._drop_connections()
        if mode.name == "refuse":
            await self._stop_listening()
        elif self._server is None:
            await self._listen()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _drop_connections(self) -> None:
        for end in list(self._open):
            end.transport.abort()  # each handler then sees the end of its streams and finishes
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=10)

    async def _shutdown(self) -> None:
        await self._drop_connections()
        await self._stop_listening()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._open.add(writer)
        self._connections += 1
        mode = self._mode
        try:
            if mode.name == "reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            if mode.name == "fail":
                await self._answer(reader, writer, mode.status)
                return
            received: bytes | None = b""
            if mode.name == "delay":
                received = await self._hold(reader, mode.seconds)
            if received is not None:
                await self._pipe(reader, writer, received)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # either side went away: so does the connection
        finally:
            self._handlers.discard(task)
            self._open.discard(writer)
            writer.transport.abort()

    async def _hold(self, reader: asyncio.StreamReader, seconds: float) -> bytes | None:
        """What the client sent during the delay; None if it gave up (closed) first."""
        received = b""
        self._held += 1
        try:
            async with asyncio.timeout(seconds):
                while chunk := await reader.read(CHUNK):
                    received += chunk
                return None
        except TimeoutError:
            return received
        finally:
            self._held -= 1

    @staticmethod
    async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, status: int) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                await reader.readexactly(int(value))
        body = b'{"title": "injected by the test proxy"}'
        writer.write(b"HTTP/1.1 %d Injected\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                     b"connection: close\r\n\r\n%s" % (status, len(body), body))
        await writer.drain()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: bytes) -> None:
        assert self._target is not None, "forward_to() names the server first"
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        self._open.add(upstream_writer)
        try:
            upstream_writer.write(first)
            copies = [asyncio.ensure_future(_copy(reader, upstream_writer)),
                      asyncio.ensure_future(_copy(upstream_reader, writer))]
            try:
                await asyncio.wait(copies, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for copy in copies:
                    copy.cancel()
                await asyncio.gather(*copies, return_exceptions=True)
        finally:
            self._open.discard(upstream_writer)
            upstream_writer.transport.abort()


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while chunk := await source.read(CHUNK):
        sink.write(chunk)
        await sink.drain()
