"""The HTTP server every process runs (platform/server.py), against hostile clients on raw sockets:
slow heads and bodies, oversize heads, malformed HTTP and oversize bodies are each answered with a
problem (or a close) within seconds, and the client reads that answer before the connection ends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request

from amazonlite.platform.errors import PROBLEM_BASE
from amazonlite.platform.http import EdgeMiddleware, install_problem_handlers, new_app
from amazonlite.platform.server import server_settings, uvicorn_options
from tests.gateway.support import free_port
from tests.support.servers import uvicorn_in_thread

MAX_BODY = 1024 * 1024
THREE_MB = b"x" * (3 * 1024 * 1024)
SHORT = {  # seconds, so that a test waits for a deadline in seconds; bounds as shipped
    "AMAZONLITE_SERVER_HEADER_TIMEOUT_SECONDS": "1",
    "AMAZONLITE_SERVER_BODY_TIMEOUT_SECONDS": "1",
    "AMAZONLITE_SERVER_KEEP_ALIVE_SECONDS": "1",
    "AMAZONLITE_SERVER_DRAIN_SECONDS": "2",
}
GENEROUS = 10.0  # "within seconds, not never": far above each deadline, far below the 75 s seen


def app() -> FastAPI:
    app = new_app()
    install_problem_handlers(app)

    @app.get("/")
    async def root(request: Request) -> dict[str, str | None]:
        client = request.scope.get("client")
        return {"client": client[0] if client else None}

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}


    app.add_middleware(EdgeMiddleware, service="server-test", max_body_bytes=MAX_BODY)
    return app


async def answer_at_once(scope: Any, receive: Any, send: Any) -> None:
    """Answers without reading the request's body, as a proxy relays an upstream's early answer."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def stream_then_echo(scope: Any, receive: Any, send: Any) -> None:
    """GET: an answer whose last byte goes out before its end, as a proxy relays a streamed upstream
    answer and ends it with an empty message after a pause. POST: how many bytes the body had."""
    if scope["type"] != "http":
        return
    if scope["method"] == "GET":
        closing = [(b"connection", b"close")] if scope["path"] == "/close" else []
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2"), *closing]})
        await send({"type": "http.response.body", "body": b"ok", "more_body": True})
        await asyncio.sleep(0.5)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = str(len(body)).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(answer)).encode())]})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
def streaming_address() -> Iterator[tuple[str, int]]:
    with uvicorn_in_thread(stream_then_echo, **uvicorn_options()) as port:
        yield "127.0.0.1", port


@pytest.fixture(scope="module")
def early_address() -> Iterator[tuple[str, int]]:
    with uvicorn_in_thread(answer_at_once, **uvicorn_options()) as port:
        yield "127.0.0.1", port


@pytest.fixture(scope="module")
def address() -> Iterator[tuple[str, int]]:
    """The app behind the platform's server settings, on a free port, in a thread of its own."""
    with pytest.MonkeyPatch.context() as env:
        for key, value in SHORT.items():
            env.setenv(key, value)
        server_settings.cache_clear()
        with uvicorn_in_thread(app(), **uvicorn_options()) as port:
            yield "127.0.0.1", port
    server_settings.cache_clear()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server ended the connection cleanly (EOF), not by a reset
    after: float  # seconds from the start of the exchange to the end of the connection

    def problem(self) -> dict[str, object]:
        assert self.headers.get("content-type") == "application/problem+json", self
        document = orjson.loads(self.body)
        assert str(document["type"]).startswith(PROBLEM_BASE) and document["status"] == self.status, document
        assert document["correlation_id"] == self.headers["x-correlation-id"], (document, self.headers)
        return document


def exchange(address: tuple[str, int], *parts: bytes, pause: float = 0.0, concurrently: bool = False) -> Answer:
    """Send `parts` (pausing between them), read one answer and wait for the connection to end.

    `concurrently` sends from another thread while this one reads, as a client that reads the
    answer while it still sends (a refused huge head is answered long before it is all sent)."""
    started = time.monotonic()
    with socket.create_connection(address, timeout=GENEROUS) as sock:

        def send_all() -> None:
            try:
                for i, part in enumerate(parts):
                    if i and pause:
                        time.sleep(pause)
                    sock.sendall(part)
            except OSError:
                pass  # the server stopped reading: what it answered is what counts

        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()
        if not concurrently:
            sender.join()
        received = b""
        closed = False
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                closed = True
                break
            received += chunk
        sender.join(timeout=GENEROUS)
    return parse(received, closed, time.monotonic() - started)


def parse(raw: bytes, closed: bool, after: float) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), raw[:200]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(lines[0].split()[1]), headers, body, closed, after)


def base_url(address: tuple[str, int]) -> str:
    return f"http://{address[0]}:{address[1]}"


def request(method: str, path: str = "/", *headers: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class TestSlowClients:
    def test_a_head_that_never_ends_is_answered_408_and_closed(self, address: tuple[str, int]) -> None:
        answer = exchange(address, b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: ")
        assert answer.status == 408 and answer.problem()["type"] == PROBLEM_BASE + "request-timeout"
        assert answer.closed and answer.after < GENEROUS

    def test_a_head_sent_byte_by_byte_too_slowly_is_cut_off(self, address: tuple[str, int]) -> None:
        drip = [bytes([b]) for b in request("GET", "/", "X-Slow: a")]
        answer = exchange(address, *drip, pause=0.3, concurrently=True)
        assert answer.status == 408 and answer.closed and answer.after < GENEROUS

    def test_a_body_that_stops_arriving_is_answered_408_and_closed(self, address: tuple[str, int]) -> None:
        answer = exchange(address, request("POST", "/echo", "Content-Type: application/json", "Content-Length: 100",
                                           body=b"{"))
        assert answer.status == 408 and answer.problem()["type"] == PROBLEM_BASE + "request-timeout"
        assert answer.closed and answer.after < GENEROUS

    def test_a_connection_that_sends_nothing_is_closed(self, address: tuple[str, int]) -> None:
        started = time.monotonic()
        with socket.create_connection(address, timeout=GENEROUS) as sock:
            assert sock.recv(1) == b""
        assert time.monotonic() - started < GENEROUS


    def test_a_connection_that_sends_only_blank_lines_is_answered_408_and_closed(
            self, address: tuple[str, int]) -> None:
        answer = exchange(address, b"\r\n")  # skipped by the parser: no request begins
        assert answer.status == 408 and answer.closed and answer.after < GENEROUS

    def test_blank_lines_before_a_request_line_are_no_harm(self, address: tuple[str, int]) -> None:
        answer = exchange(address, b"\r\n" + request("GET", "/"))
        assert answer.status == 200


class TestOversizeHeads:
    def test_one_header_of_16_mb_is_431(self, address: tuple[str, int]) -> None:
        huge = b"X-Huge: " + b"a" * (16 * 1024 * 1024) + b"\r\n\r\n"
        answer = exchange(address, b"GET / HTTP/1.1\r\nHost: test\r\n", huge, concurrently=True)
        assert answer.status == 431 and answer.problem()["type"] == PROBLEM_BASE + "headers-too-large"

    def test_20000_headers_of_1_kb_are_431(self, address: tuple[str, int]) -> None:
        many = b"".join(b"X-H%d: %s\r\n" % (i, b"a" * 1024) for i in range(20_000)) + b"\r\n"
        answer = exchange(address, b"GET / HTTP/1.1\r\nHost: test\r\n", many, concurrently=True)
        assert answer.status == 431 and answer.problem()["type"] == PROBLEM_BASE + "headers-too-large"

    def test_many_small_headers_are_431(self, address: tuple[str, int]) -> None:
        answer = exchange(address, request("GET", "/", *(f"X-{i}: 1" for i in range(500))))
        assert answer.status == 431 and "headers" in str(answer.problem()["detail"])

    def test_a_head_over_the_limit_in_one_piece_is_431(self, address: tuple[str, int]) -> None:
        answer = exchange(address, request("GET", "/", *(f"X-{i}: {'a' * 1024}" for i in range(20))))
        assert answer.status == 431 and answer.problem()["type"] == PROBLEM_BASE + "headers-too-large"

    def test_a_path_of_1_mb_is_414(self, address: tuple[str, int]) -> None:
        answer = exchange(address, request("GET", "/" + "a" * (1024 * 1024)), concurrently=True)
        assert answer.status == 414 and answer.problem()["type"] == PROBLEM_BASE + "uri-too-long"

    def test_a_head_under_the_limits_is_served(self, address: tuple[str, int]) -> None:
        answer = exchange(address, request("GET", "/", *(f"X-{i}: {'a' * 100}" for i in range(50)),
                                           "Connection: close"))
        assert answer.status == 200 and answer.closed


class TestMalformedHttp:
    @pytest.mark.parametrize("raw", [
        request("GET", "/", "X-Nul: a\x00b"),
        request("POST", "/echo", "Content-Length: abc", body=b"{}"),
        request("POST", "/echo", "Content-Length: 2", "Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
        b"GARBAGE\r\n\r\n",
    ], ids=["nul-in-header", "content-length-abc", "content-length-and-transfer-encoding", "no-request-line"])
    def test_is_a_400_problem_and_a_close(self, address: tuple[str, int], raw: bytes) -> None:
        answer = exchange(address, raw)
        assert answer.status == 400 and answer.problem()["type"] == PROBLEM_BASE + "malformed-request"
        assert answer.headers["connection"] == "close" and answer.closed


class TestOversizeBodies:
    def test_an_announced_body_is_413_and_a_clean_close_every_time(self, address: tuple[str, int]) -> None:
        raw = request("POST", "/echo", "Content-Type: application/json", f"Content-Length: {len(THREE_MB)}",
                      body=THREE_MB)
        for _ in range(10):
            answer = exchange(address, raw)  # all sent before reading, as urllib does
            assert answer.status == 413 and answer.problem()["type"] == PROBLEM_BASE + "payload-too-large"
            assert answer.closed

    def test_a_chunked_body_is_413_and_a_clean_close(self, address: tuple[str, int]) -> None:
        chunk = b"x" * 65536
        chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 48 + [b"0\r\n\r\n"]
        head = request("POST", "/echo", "Content-Type: application/json", "Transfer-Encoding: chunked")
        answer = exchange(address, head + b"".join(chunks))
        assert answer.status == 413 and answer.problem()["type"] == PROBLEM_BASE + "payload-too-large"
        assert answer.closed

    def test_the_server_stops_reading_a_refused_body_after_a_bounded_amount(self, address: tuple[str, int]) -> None:
        announced = 200 * 1024 * 1024
        sent = [0]
        with socket.create_connection(address, timeout=GENEROUS) as sock:

            def send_until_refused() -> None:
                chunk = b"x" * 65536
                try:
                    sock.sendall(request("POST", "/echo", f"Content-Length: {announced}"))
                    while sent[0] < announced:
                        sock.sendall(chunk)
                        sent[0] += len(chunk)
                except OSError:
                    pass  # the server closed: it read what it was willing to

            sender = threading.Thread(target=send_until_refused, daemon=True)
            sender.start()
            received = b""
            with contextlib.suppress(ConnectionResetError):
                while chunk := sock.recv(65536):
                    received += chunk
            sender.join(timeout=GENEROUS)
        assert received.startswith(b"HTTP/1.1 413 "), received[:100]
        # The drain bound (8 MiB by default), plus what the sockets' buffers held on the way.
        assert sent[0] < 40 * 1024 * 1024, sent[0]

    def test_expect_100_continue_with_a_too_large_length_is_answered_at_once(self, address: tuple[str, int]) -> None:
        with socket.create_connection(address, timeout=GENEROUS) as sock:
            sock.sendall(request("POST", "/echo", "Content-Type: application/json", "Expect: 100-continue",
                                 f"Content-Length: {len(THREE_MB)}"))
            received = b""
            while b"\r\n\r\n" not in received:
                received += sock.recv(65536)
        assert received.startswith(b"HTTP/1.1 413 "), received[:100]

    def test_urllib_reads_the_413_every_time(self, address: tuple[str, int]) -> None:
        url = base_url(address) + "/echo"
        statuses = []
        for _ in range(30):
            try:
                urllib.request.urlopen(urllib.request.Request(url, data=THREE_MB, method="POST", headers={
                    "Content-Type": "application/json"}), timeout=GENEROUS)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)
                exc.close()
        assert statuses == [413] * 30

    def test_httpx_reads_the_413_every_time_on_a_kept_alive_connection(self, address: tuple[str, int]) -> None:
        with httpx.Client(base_url=base_url(address), timeout=GENEROUS) as client:
            statuses = [client.post("/echo", content=THREE_MB).status_code for _ in range(30)]
            assert statuses == [413] * 30
            assert client.post("/echo", content=b"{}").json() == {"received": 2}  # the client goes on

    def test_an_answer_before_the_body_arrived_says_the_connection_closes(self, early_address: tuple[str, int]
                                                                          ) -> None:
        # The head alone: the answer comes before any of the body was sent.
        answer = exchange(early_address, request("POST", "/", "Content-Length: 2"))
        assert answer.status == 200 and answer.headers["connection"] == "close" and answer.closed, answer
        # A body that arrived with its head is read with it, and the connection kept for the next request.
        kept = exchange(early_address, request("POST", "/", "Content-Length: 2", body=b"{}")
                        + request("GET", "/", "Connection: close"))
        assert kept.status == 200 and "connection" not in kept.headers, kept.headers
        assert kept.body.count(b"HTTP/1.1 200 ") == 1  # the second answer followed on the same connection

    def test_a_body_under_the_limit_is_read_whole_and_the_connection_kept(self, address: tuple[str, int]) -> None:
        body = b"y" * (MAX_BODY - 10)
        with httpx.Client(base_url=base_url(address), timeout=GENEROUS) as client:
            assert [client.post("/echo", content=body).json() for _ in range(3)] == [{"received": len(body)}] * 3


class TestKeptAliveConnections:
    def test_a_request_sent_once_the_last_byte_arrived_is_served_before_the_answer_ended(
            self, streaming_address: tuple[str, int]) -> None:
        """The client has the whole answer (its length says so) and sends its next request on the
        connection, head first, body a moment later, while the server's cycle has not ended the
        answer yet: that request is served. (It was drained and closed unanswered: the end of the
        first answer was taken for the end of the second request, whose body had not arrived.)"""
        with socket.create_connection(streaming_address, timeout=GENEROUS) as sock:
            sock.sendall(request("GET", "/stream"))
            received = b""
            while not received.endswith(b"\r\n\r\nok"):
                chunk = sock.recv(65536)
                assert chunk, received
                received += chunk
            assert parse(received, False, 0).status == 200
            sock.sendall(request("POST", "/echo", "Content-Length: 5"))
            time.sleep(0.2)  # the first answer has not ended yet (0.5 s)
            sock.sendall(b"hello")
            second = b""
            while not second.endswith(b"\r\n\r\n5"):
                chunk = sock.recv(65536)
                assert chunk, f"the server closed the connection without answering: {second!r}"
                second += chunk
        answer = parse(second, False, 0)
        assert (answer.status, answer.body) == (200, b"5")


    def test_an_answer_that_closes_with_a_request_queued_behind_it_ends_cleanly(
            self, streaming_address: tuple[str, int]) -> None:
        """The answer says `Connection: close` and the client had already sent its next request: the
        server reads and drops that request and ends with a clean close, not a reset (which can
        cost a client the answer it has not read yet)."""
        with socket.create_connection(streaming_address, timeout=GENEROUS) as sock:
            sock.sendall(request("GET", "/close"))
            received = b""
            while not received.endswith(b"\r\n\r\nok"):
                chunk = sock.recv(65536)
                assert chunk, received
                received += chunk
            assert parse(received, False, 0).headers["connection"] == "close"
            sock.sendall(request("POST", "/echo", "Content-Length: 5") + b"he")  # queued behind the answer
            time.sleep(0.1)
            sock.sendall(b"llo")  # arrives while the server reads nothing more (the request waits its turn)
            rest = b""
            while chunk := sock.recv(65536):  # a reset raises ConnectionResetError here
                rest += chunk
        assert rest == b""  # not served: the connection was closing


class TestForwardingHeaders:
    @pytest.mark.parametrize("header", ["X-Forwarded-For: 203.0.113.7", "Forwarded: for=203.0.113.7",
                                        "X-Real-IP: 203.0.113.7"])
    def test_the_client_address_is_the_peer_whatever_the_headers_say(self, address: tuple[str, int],
                                                                       header: str) -> None:
        answer = exchange(address, request("GET", "/", header, "Connection: close"))
        assert answer.status == 200 and orjson.loads(answer.body) == {"client": "127.0.0.1"}


class TestWorkers:
    def test_the_workers_end_with_their_supervisor_killed_with_sigkill(self) -> None:
        """An orphan worker would keep the port, and a restarted server could not bind it."""
        port = free_port()
        code = ("from amazonlite.platform.server import serve; "
                f"serve('tests.platform.test_server:app', host='127.0.0.1', port={port}, workers=2)")
        supervisor = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert supervisor.poll() is None and time.monotonic() < deadline, "the server did not start"
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            supervisor.send_signal(signal.SIGKILL)
            supervisor.wait()
            deadline = time.monotonic() + GENEROUS
            while not port_is_free(port):
                assert time.monotonic() < deadline, "a worker still holds the port"
                time.sleep(0.2)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(supervisor.pid, signal.SIGKILL)  # its session: whatever is left of it


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
