"""Start the platform as a user would, in either topology, as real processes.

embedded: `amazonlite up` (one process, SQLite files, in-process bus).
distributed: `amazonlite serve <service>` per service on PostgreSQL databases of their own,
tansu for Kafka, Redis for revoked tokens, and `amazonlite gateway` in front.

Keyword options (none by default): `google` configures the auth service's sign-in with an OpenID
provider (a local one in tests); in the distributed topology, `gateway_env` adds settings to the
gateway process alone, `upstream_via` makes the gateway reach a service through another address
(a fault-injecting proxy in front of it) and `database_faults` puts a fault-injecting proxy between
each service named and its database (`Platform.database_proxies`).

The distributed topology runs on a durable broker (tansu on a local S3 server): killed and started
again, it keeps its topics, records and committed offsets, as a Kafka broker keeps its log directory.
A test may SIGKILL any of its processes and start it again on the same port (`Platform.kill`,
`Platform.start`): a service by name, `GATEWAY` or `BROKER`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from amazonlite.topology import SERVICE_NAMES, SERVICE_URLS_ENV
from tests.support import servers
from tests.support.fault_proxy import FaultProxy

ADMIN_EMAIL = "root@platform.example.com"
ADMIN_PASSWORD = "correct-horse-battery-9"
# A second tenant with its own admin (tenant admin only: platform administration lives in `default`).
OTHER_TENANT = "acme"
OTHER_ADMIN_EMAIL = "admin@acme.example.com"
OTHER_ADMIN_PASSWORD = "road-runner-catalog-7"


GOOGLE_CALLBACK = "/api/v1/auth/oauth/google/callback"

# The processes of a distributed platform besides its services, as `Platform.kill` and `start` name them.
GATEWAY = "gateway"
BROKER = "broker"


@dataclass(frozen=True)
class GoogleSignIn:
    """The OpenID provider the auth service signs users in with, and the client it is registered as."""

    issuer: str
    client_id: str
    client_secret: str

    def env(self, base_url: str) -> dict[str, str]:
        return {"AMAZONLITE_AUTH_GOOGLE_ISSUER": self.issuer, "AMAZONLITE_AUTH_GOOGLE_CLIENT_ID": self.client_id,
                "AMAZONLITE_AUTH_GOOGLE_CLIENT_SECRET": self.client_secret,
                "AMAZONLITE_AUTH_GOOGLE_REDIRECT_URI": f"{base_url}{GOOGLE_CALLBACK}"}


@dataclass
class Platform:
    name: str
    base_url: str
    # Where an operator finds each service's database (SQLAlchemy URLs; see tests/e2e/mailbox.py).
    database_urls: Mapping[str, str]
    # An operator's command line on this platform's data (`amazonlite <args>`, same environment).
    cli: Callable[..., None] = field(repr=False)
    logs: list[Path] = field(default_factory=list)
    # Distributed only: the processes a test may kill and start again, the broker's address (for an
    # operator's look at consumer groups) and the proxies between services and their databases.
    control: _Control | None = field(default=None, repr=False)
    # Where each service answers directly (its /metrics, its /health): the one process, embedded.
    service_urls: Mapping[str, str] = field(default_factory=dict)
    kafka_bootstrap: str | None = None
    database_proxies: Mapping[str, FaultProxy] = field(default_factory=dict)

    @property
    def auth_database_url(self) -> str:
        return self.database_urls["auth"]

    def kill(self, process: str) -> None:
        """SIGKILL a process of the platform (a service by name, `GATEWAY` or `BROKER`): no goodbye."""
        self._control().kill(process)

    def start(self, process: str, *, empty_storage: bool = False) -> None:
        """Start a killed process again on its port and wait until it is ready (the broker: until it
        listens). `empty_storage`: the broker comes back with nothing, as one whose disk was lost."""
        self._control().start(process, empty_storage=empty_storage)

    def _control(self) -> _Control:
        if self.control is None:
            raise NotImplementedError(f"the {self.name} platform has no processes a test can kill")
        return self.control

    def log_tail(self, lines: int = 60) -> str:
        out = []
        for path in self.logs:
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)


@dataclass
class _Server:
    """How a server process was started, so that it can be started again the same way."""

    args: Sequence[str]
    env: Mapping[str, str]
    port: int
    proc: subprocess.Popen[bytes] | None
    starts: int = 1


class _Processes:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self.servers: dict[str, _Server] = {}

    def cli(self, *args: str, extra_env: dict[str, str] | None = None) -> None:
        result = subprocess.run([sys.executable, "-m", "amazonlite.cli", *args], env={**self.env, **(extra_env or {})},
                                cwd=self.workdir, capture_output=True, text=True, timeout=180)
        if result.returncode != 0:
            raise RuntimeError(f"amazonlite {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")

    def start(self, label: str, *args: str, extra_env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = self.workdir / f"{label}.log"
        self.logs.append(log)
        with log.open("wb") as handle:  # the process has its own copy of the descriptor
            proc = subprocess.Popen([sys.executable, "-m", "amazonlite.cli", *args],
                                    env={**self.env, **(extra_env or {})}, cwd=self.workdir,
                                    stdout=handle, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def serve(self, label: str, args: Callable[[int], Sequence[str]],
              extra_env: Callable[[int], Mapping[str, str]] = lambda _port: {}, attempts: int = 3) -> int:
        """Start a server on a free port and wait until it is ready, listening itself on that port.

        A port picked free can be taken by another test's process before this one binds it (the
        suite runs on two workers). Then this process fails to bind, while the other answers on the
        port, maybe even /health/ready: so readiness counts only once the port is this process's
        own, and a lost race is run again on another port."""
        for attempt in range(1, attempts + 1):
            port = servers.free_port()
            proc = self.start(f"{label}-{attempt}" if attempt > 1 else label, *args(port), extra_env=extra_env(port))
            try:
                wait_ready(f"http://127.0.0.1:{port}", self, own=(proc, port))
            except PortTaken:
                self.procs.remove(proc)
                continue
            self.servers[label] = _Server(args(port), extra_env(port), port, proc)
            return port
        raise RuntimeError(f"{label}: no free port after {attempts} attempts")

    def kill(self, label: str) -> None:
        server = self.servers[label]
        if server.proc is not None:
            self.procs.remove(server.proc)
            server.proc.kill()
            server.proc.wait(timeout=10)
            server.proc = None

    def serve_at(self, label: str, port: int, args: Sequence[str], extra_env: Mapping[str, str]) -> None:
        """Start a server on a port chosen beforehand (no second attempt elsewhere), once ready."""
        self.servers[label] = _Server(args, extra_env, port, None, starts=0)
        self.restart(label)

    def restart(self, label: str) -> None:
        """Start a killed server again on its port (each start logs to a file of its own), once ready."""
        server = self.servers[label]
        assert server.proc is None, f"{label} is running"
        server.starts += 1
        log_label = label if server.starts == 1 else f"{label}-start{server.starts}"
        server.proc = self.start(log_label, *server.args, extra_env=server.env)
        wait_ready(f"http://127.0.0.1:{server.port}", self, own=(server.proc, server.port))

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@dataclass
class _Control:
    """The distributed platform's processes as a test kills and starts them: `BROKER`, `GATEWAY`, or
    a service by name."""

    procs: _Processes
    broker: servers.TansuBroker

    def kill(self, process: str) -> None:
        if process == BROKER:
            self.broker.kill()
        else:
            self.procs.kill(_label(process))

    def start(self, process: str, *, empty_storage: bool = False) -> None:
        if process == BROKER:
            self.broker.restart(empty=empty_storage)
            return
        assert not empty_storage, "only the broker has storage to lose"
        self.procs.restart(_label(process))


def _label(process: str) -> str:
    """The label (and log file name) of a server process of the distributed platform."""
    if process == GATEWAY:
        return GATEWAY
    if process not in SERVICE_NAMES:
        raise KeyError(f"unknown process {process!r}: a service ({', '.join(SERVICE_NAMES)}), {GATEWAY} or {BROKER}")
    return f"serve-{process}"


class PortTaken(Exception):
    """The server could not bind its port: another process took it first."""


def wait_ready(base_url: str, procs: _Processes, timeout: float = 60.0,
               own: tuple[subprocess.Popen[bytes], int] | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        for proc in procs.procs:
            if proc.poll() is not None:
                tails = "\n".join(p.read_text(errors="replace")[-3000:] for p in procs.logs)
                if own is not None and proc is own[0] and "address already in use" in tails.lower():
                    raise PortTaken(own[1])
                raise RuntimeError(f"a platform process exited with {proc.returncode}:\n{tails}")
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.get(f"{base_url}/health/ready", timeout=2)
            if response.status_code == 200 and (own is None or _listens(*own)):
                return
            last = response.text
        time.sleep(0.2)
    raise TimeoutError(f"{base_url} not ready after {timeout}s: {last}")


def _listens(proc: subprocess.Popen[bytes], port: int) -> bool:
    """Whether `proc` itself holds the listening socket on `port` (Linux: /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            for row in rows.read().splitlines()[1:]:
                fields = row.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(fields[9])
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{proc.pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{proc.pid}/fd/{fd}")
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return True
    return False


def _base_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMAZONLITE_")}
    env.update(AMAZONLITE_ENVIRONMENT="test", AMAZONLITE_DATA_DIR=str(workdir / "data"),
               AMAZONLITE_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1",
               # Cached public reads never expire during a test: only an invalidation (a catalog event
               # or a write through the gateway) makes the gateway forget one, so a missed invalidation
               # shows up as a stale answer in whichever test reads after a change.
               AMAZONLITE_GATEWAY_RESPONSE_CACHE_TTL_SECONDS="3600")
    return env


@contextlib.contextmanager
def embedded(workdir: Path, *, google: GoogleSignIn | None = None,
             extra_env: Mapping[str, str] | None = None) -> Iterator[Platform]:
    env = {**_base_env(workdir), **(extra_env or {})}
    procs = _Processes(workdir, env)
    procs.cli("users", "create-admin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD)
    procs.cli("users", "create-admin", "--tenant", OTHER_TENANT, "--email", OTHER_ADMIN_EMAIL,
              "--password", OTHER_ADMIN_PASSWORD)
    databases = {name: f"sqlite+aiosqlite:///{(workdir / 'data' / f'{name}.sqlite3').resolve()}"
                 for name in SERVICE_NAMES}

    def google_env(port: int) -> Mapping[str, str]:
        return google.env(f"http://127.0.0.1:{port}") if google is not None else {}

    try:
        port = procs.serve("amazonlite-up", lambda port: ["up", "--port", str(port), "--no-demo"], google_env)
        base_url = f"http://127.0.0.1:{port}"
        yield Platform("embedded", base_url, databases, procs.cli, procs.logs,
                       service_urls={name: base_url for name in SERVICE_NAMES})
    finally:
        procs.stop()


@contextlib.contextmanager
def distributed(workdir: Path, *, google: GoogleSignIn | None = None, gateway_env: Mapping[str, str] | None = None,
                upstream_via: Mapping[str, Callable[[str], str]] | None = None,
                extra_env: Mapping[str, str] | None = None, database_faults: Sequence[str] = ()) -> Iterator[Platform]:
    """`upstream_via[name](url)` is called with the address of service `name` and answers the
    address the gateway should use for it instead. `extra_env` goes to every process,
    `gateway_env` to the gateway's only. Each service in `database_faults` reaches its database
    through a proxy of its own (`Platform.database_proxies[name]`); migrations and the CLI go direct."""
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(servers.durable_tansu_broker())
        urls = {name: stack.enter_context(servers.postgres_database(f"e2e_{name}")) for name in SERVICE_NAMES}
        proxies = {name: stack.enter_context(FaultProxy().running()) for name in database_faults}
        env = _base_env(workdir)
        env.update(AMAZONLITE_KAFKA_BOOTSTRAP=broker.bootstrap, AMAZONLITE_REDIS_URL=servers.redis_url(),
                   AMAZONLITE_REDIS_PREFIX=servers.redis_prefix(),
                   AMAZONLITE_INTERNAL_TOKEN_SECRET=secrets.token_urlsafe(48),
                   # Short enough for quick joins, long enough that heartbeats survive a loaded CI
                   # machine (missed ones evict the member and stall consumption in rebalances).
                   AMAZONLITE_KAFKA_SESSION_TIMEOUT_MS="6000", AMAZONLITE_KAFKA_HEARTBEAT_INTERVAL_MS="1000",
                   # tansu on object storage answers a fetch empty when reading its records back takes
                   # longer than the fetch wait (after a restart they come from S3, not its cache).
                   AMAZONLITE_KAFKA_FETCH_MAX_WAIT_MS="100")
        for name, url in urls.items():
            env[_database_url_env(name)] = url
        env.update(extra_env or {})
        gateway_port = servers.lasting_port()  # bound only once every service runs
        base_url = f"http://127.0.0.1:{gateway_port}"
        if google is not None:
            env.update(google.env(base_url))
        procs = _Processes(workdir, env)
        stack.callback(procs.stop)
        procs.cli("migrate")
        procs.cli("users", "create-admin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD)
        procs.cli("users", "create-admin", "--tenant", OTHER_TENANT, "--email", OTHER_ADMIN_EMAIL,
                  "--password", OTHER_ADMIN_PASSWORD)
        def serve_args(name: str) -> Callable[[int], Sequence[str]]:
            return lambda port: ["serve", name, "--port", str(port), "--no-migrate"]

        addresses: dict[str, str] = {}

        def serve_env(name: str) -> Callable[[int], Mapping[str, str]]:
            proxy = proxies.get(name)
            via = {_database_url_env(name): proxy.forward_to(urls[name])} if proxy is not None else {}
            # Services start in SERVICE_NAMES order, so the ones a service calls (the cart calls the
            # catalog, inventory and tenants) are up, and their addresses known, before it starts.
            known = {SERVICE_URLS_ENV: ",".join(f"{other}={url}" for other, url in addresses.items())}
            return lambda _port: {**via, **known}

        for name in SERVICE_NAMES:
            addresses[name] = f"http://127.0.0.1:{procs.serve(_label(name), serve_args(name), serve_env(name))}"
        direct = dict(addresses)
        for name, via in (upstream_via or {}).items():
            addresses[name] = via(addresses[name])
        upstreams = [f"--upstream={name}={url}" for name, url in addresses.items()]
        # Its port is in auth's settings already (Google's redirect URI): no second attempt elsewhere.
        # The gateway logs at INFO: its server says when a connection ends with a request unanswered.
        procs.serve_at(GATEWAY, gateway_port, ["gateway", "--port", str(gateway_port), *upstreams],
                       {"AMAZONLITE_LOG_LEVEL": "INFO", **(gateway_env or {})})
        yield Platform("distributed", base_url, urls, procs.cli, procs.logs, control=_Control(procs, broker),
                       kafka_bootstrap=broker.bootstrap, database_proxies=proxies, service_urls=direct)


def started(topology: str, workdir: Path, *, google: GoogleSignIn | None = None,
            extra_env: Mapping[str, str] | None = None) -> contextlib.AbstractContextManager[Platform]:
    """The platform in `topology` (`embedded` or `distributed`), started in `workdir`, with what both
    topologies take."""
    start = embedded if topology == "embedded" else distributed
    return start(workdir, google=google, extra_env=extra_env)


def _database_url_env(service: str) -> str:
    return f"AMAZONLITE_{service.upper()}_DATABASE_URL"
