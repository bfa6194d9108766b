"""Start the platform as a user would, in either topology, as real processes.

embedded: `amazonlite up` (one process, SQLite files, in-process bus).
distributed: `amazonlite serve <service>` per service on PostgreSQL databases of their own,
tansu for Kafka, Redis for revoked tokens, and `amazonlite gateway` in front.

Keyword options (none by default): `google` configures the auth service's sign-in with an OpenID
provider (a local one in tests); in the distributed topology, `gateway_env` adds settings to the
gateway process alone and `upstream_via` makes the gateway reach a service through another address
(a fault-injecting proxy in front of it).
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

from amazonlite.topology import SERVICE_NAMES
from tests.support import servers

ADMIN_EMAIL = "root@platform.example.com"
ADMIN_PASSWORD = "correct-horse-battery-9"
# A second tenant with its own admin (tenant admin only: platform administration lives in `default`).
OTHER_TENANT = "acme"
OTHER_ADMIN_EMAIL = "admin@acme.example.com"
OTHER_ADMIN_PASSWORD = "road-runner-catalog-7"


GOOGLE_CALLBACK = "/api/v1/auth/oauth/google/callback"


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

    @property
    def auth_database_url(self) -> str:
        return self.database_urls["auth"]

    def log_tail(self, lines: int = 60) -> str:
        out = []
        for path in self.logs:
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)


class _Processes:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def cli(self, *args: str, extra_env: dict[str, str] | None = None) -> None:
        result = subprocess.run([sys.executable, "-m", "amazonlite.cli", *args], env={**self.env, **(extra_env or {})},
                                cwd=self.workdir, capture_output=True, text=True, timeout=180)
        if result.returncode != 0:
            raise RuntimeError(f"amazonlite {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")

    def start(self, label: str, *args: str, extra_env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = self.workdir / f"{label}.log"
        self.logs.append(log)
        handle = log.open("wb")
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
                return port
            except PortTaken:
                self.procs.remove(proc)
        raise RuntimeError(f"{label}: no free port after {attempts} attempts")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


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
        yield Platform("embedded", base_url, databases, procs.cli, procs.logs)
    finally:
        procs.stop()


@contextlib.contextmanager
def distributed(workdir: Path, *, google: GoogleSignIn | None = None, gateway_env: Mapping[str, str] | None = None,
                upstream_via: Mapping[str, Callable[[str], str]] | None = None,
                extra_env: Mapping[str, str] | None = None) -> Iterator[Platform]:
    """`upstream_via[name](url)` is called with the address of service `name` and answers the
    address the gateway should use for it instead. `extra_env` goes to every process,
    `gateway_env` to the gateway's only."""
    with contextlib.ExitStack() as stack:
        bootstrap = stack.enter_context(servers.tansu_broker())
        urls = {name: stack.enter_context(servers.postgres_database(f"e2e_{name}")) for name in SERVICE_NAMES}
        env = _base_env(workdir)
        env.update(AMAZONLITE_KAFKA_BOOTSTRAP=bootstrap, AMAZONLITE_REDIS_URL=servers.redis_url(),
                   AMAZONLITE_REDIS_PREFIX=servers.redis_prefix(),
                   AMAZONLITE_INTERNAL_TOKEN_SECRET=secrets.token_urlsafe(48),
                   # Short enough for quick joins, long enough that heartbeats survive a loaded CI
                   # machine (missed ones evict the member and stall consumption in rebalances).
                   AMAZONLITE_KAFKA_SESSION_TIMEOUT_MS="6000", AMAZONLITE_KAFKA_HEARTBEAT_INTERVAL_MS="1000")
        for name, url in urls.items():
            env[f"AMAZONLITE_{name.upper()}_DATABASE_URL"] = url
        env.update(extra_env or {})
        gateway_port = servers.free_port()
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

        ports = {name: procs.serve(f"serve-{name}", serve_args(name)) for name in SERVICE_NAMES}
        addresses = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        for name, via in (upstream_via or {}).items():
            addresses[name] = via(addresses[name])
        upstreams = [f"--upstream={name}={url}" for name, url in addresses.items()]
        # Its port is in auth's settings already (Google's redirect URI): no second attempt elsewhere.
        gateway = procs.start("gateway", "gateway", "--port", str(gateway_port), *upstreams,
                              extra_env=dict(gateway_env or {}))
        wait_ready(base_url, procs, own=(gateway, gateway_port))
        yield Platform("distributed", base_url, urls, procs.cli, procs.logs)
