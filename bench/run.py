"""Benchmark `GET /api/v1/products/{id}` through the gateway, against two bare FastAPI ceilings.

    ./dev bench [--duration 10] [--runs 3] [--connections 8,64] [--json PATH]
    ./dev bench flash-sale [...]   (bench/flash_sale.py)    ./dev bench cart [...]   (bench/cart.py)
    ./dev bench checkout [...]   (bench/checkout.py)    ./dev bench search [...]   (bench/search.py)

In one run, on one machine:

1. start the embedded platform (`python -m amazonlite.cli up`) on a free port with a fresh data
   directory, wait for `/health/ready`, pick a product from `GET /api/v1/products?limit=1` and fetch
   its document;
2. start the ceilings, `bench/bare_app.py`: a bare FastAPI endpoint under uvicorn with the same
   server settings, serving that same document through a response model; and the same endpoint
   after one ORM primary-key read of the product's row in the platform's catalog database;
3. load the three with the same client (wrk) at each connection count: a warm-up, then `--runs`
   runs of `--duration` seconds, alternating the order of the targets so that drift hits all;
4. print the medians and the ratios platform/bare and platform/bare+ORM, with the machine and the
   exact command, and write them as JSON to bench/results/ (and `--json PATH`);
5. stop the servers, whatever happens.

The goal depends on what is measured (PERFORMANCE.md): with the gateway's response cache (the
default), ≥ 1.0 of the bare endpoint; without it (`--platform-env
AMAZONLITE_GATEWAY_RESPONSE_CACHE_ENABLED=false`), ≥ 0.8 of the bare endpoint with an ORM read.

See bench/README.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform as platform_module
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RESULTS_DIR = BENCH / "results"
BENCHMARK = "product_read"
PRODUCT_ENV = "BENCH_PRODUCT_JSON"
SUBJECT = "platform"
CEILING = "bare"
ORM_CEILING = "bare_orm"
CEILINGS = (CEILING, ORM_CEILING)
TARGET_LABELS = {SUBJECT: "platform (gateway)", CEILING: "bare FastAPI", ORM_CEILING: "bare FastAPI + ORM read"}
# The goal of each ratio (PERFORMANCE.md): a response-cache hit against the bare endpoint, an
# uncached read against the bare endpoint that reads the row through the ORM.
GOAL_RATIOS = {CEILING: 1.0, ORM_CEILING: 0.8}
UNCACHED_SETTING = "AMAZONLITE_GATEWAY_RESPONSE_CACHE_ENABLED=false"
# Above this much CPU used by other processes during a run (% of one core), the run says it was noisy.
NOISY_OTHER_CPU_PERCENT = 25.0

# Wide enough for the table when the output goes to a file or a pipe (a README, CI logs).
console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)


class BenchError(Exception):
    """A failure that ends the benchmark with a message (and no traceback)."""


# --------------------------------------------------------------------------------------------- wrk


@dataclass
class WrkRun:
    target: str
    connections: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    seconds: float
    non_2xx_3xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    # CPU that processes other than this benchmark used during the run, in % of one core.
    other_cpu_percent: float | None = None

    @property
    def errors(self) -> int:
        return self.non_2xx_3xx + sum(self.socket_errors.values())


_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_TIME = r"([0-9.]+)(us|ms|s|m|h)"


def _ms(value: str, unit: str) -> float:
    return float(value) * _TIME_UNITS_MS[unit]


def parse_wrk(output: str, *, target: str, connections: int) -> WrkRun:
    """Read req/s, p50, p99, the request count and the errors from `wrk --latency` output."""
    rps = re.search(r"^Requests/sec:\s+([0-9.]+)", output, re.MULTILINE)
    p50 = re.search(rf"^\s+50(?:\.0+)?%\s+{_TIME}", output, re.MULTILINE)
    p99 = re.search(rf"^\s+99(?:\.0+)?%\s+{_TIME}", output, re.MULTILINE)
    total = re.search(r"^\s+(\d+) requests in " + _TIME, output, re.MULTILINE)
    if not (rps and p50 and p99 and total):
        raise BenchError(f"could not read wrk's output:\n{output}")
    run = WrkRun(target=target, connections=connections, requests_per_second=float(rps.group(1)),
                 p50_ms=_ms(*p50.groups()), p99_ms=_ms(*p99.groups()), requests=int(total.group(1)),
                 seconds=_ms(total.group(2), total.group(3)) / 1000)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        run.non_2xx_3xx = int(non_2xx.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if sock:
        run.socket_errors = dict(zip(("connect", "read", "write", "timeout"), map(int, sock.groups()), strict=True))
    return run


def ensure_wrk() -> str:
    """The path of wrk, installing the Debian package when it is missing (we run unattended)."""
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        console.print("[yellow]wrk is missing: installing the Debian package `wrk` (apt-get install -y wrk)...[/]")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, capture_output=True, text=True,
                                 check=False)
        if install.returncode != 0:
            # The package lists may be missing or stale on a fresh machine.
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
            install = subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, capture_output=True, text=True,
                                     check=False)
        found = shutil.which("wrk")
        if found:
            return found
        detail = (install.stderr or install.stdout).strip().splitlines()[-3:]
        raise BenchError("wrk is not installed and `apt-get install -y wrk` failed:\n  " + "\n  ".join(detail)
                         + "\nInstall wrk (Debian/Ubuntu package `wrk`) and run again. The benchmark does not fall "
                         "back to another client: both targets must be measured with the same one.")
    raise BenchError("wrk is not installed (and cannot be installed from here: needs root and apt-get). Install it "
                     "(Debian/Ubuntu package `wrk`, Homebrew formula `wrk`) and run again. The benchmark does not "
                     "fall back to another client: both targets must be measured with the same one.")


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0] if first else "unknown"


def wrk_command(wrk: str, url: str, *, connections: int, threads: int, seconds: float) -> list[str]:
    return [wrk, f"-t{min(threads, connections)}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            "--timeout", "10s", "--latency", url]


def run_wrk(wrk: str, url: str, *, target: str, connections: int, threads: int, seconds: float) -> WrkRun:
    argv = wrk_command(wrk, url, connections=connections, threads=threads, seconds=seconds)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise BenchError(f"{shlex.join(argv)} failed ({done.returncode}):\n{done.stderr or done.stdout}")
    return parse_wrk(done.stdout, target=target, connections=connections)


# ----------------------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Server:
    """A server subprocess in its own session (so Ctrl-C reaches us, and we stop it in order)."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def wait_ready(self, url: str, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                raise BenchError(f"{self.name} exited with status {code} before it was ready "
                                 f"({shlex.join(self.argv)}). Last lines of its log ({self.log_path}):\n"
                                 f"{self.log_tail()}")
            try:
                status, body = http_get(url, timeout=2)
                if status == 200:
                    return
                last = f"{status} {body[:200]!r}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.25)
        raise BenchError(f"{self.name} was not ready after {timeout:.0f} s (GET {url}: {last}). "
                         f"Last lines of its log ({self.log_path}):\n{self.log_tail()}")

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)  # the session we started for it, and only that
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


# ---------------------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform_module.processor() or "unknown"


def _memory_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def describe_machine() -> dict[str, Any]:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cores": os.cpu_count(),
        "usable_cores": affinity,
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "os": platform_module.platform(),
        "python": f"{platform_module.python_implementation()} {platform_module.python_version()}",
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }


@dataclass
class _Proc:
    comm: str
    session: int
    ticks: int


def _processes() -> dict[int, _Proc]:
    found: dict[int, _Proc] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ... utime(14) stime(15); comm may hold spaces and parens.
        comm = raw[raw.index("(") + 1: raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2:].split()
        found[int(entry.name)] = _Proc(comm=comm, session=int(rest[3]), ticks=int(rest[11]) + int(rest[12]))
    return found


def _system_busy_ticks() -> int | None:
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq + steal


def _pid_ticks(pid: int) -> int:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    rest = raw[raw.rindex(")") + 2:].split()
    return int(rest[11]) + int(rest[12])


_Snapshot = tuple[float, int, int]  # (monotonic seconds, machine busy ticks, our ticks)


class CpuMeter:
    """How much CPU the rest of the machine used while we measured, in % of one core.

    The machine's busy time (/proc/stat, steal included) minus ours: this process, the children it
    has waited for (every wrk run) and the two servers. It counts short-lived processes too (a test
    run beside the bench), which a per-process view misses. The figures are only worth their
    ceiling when nothing else competes for the cores; this says how much something else did, so a
    reader can judge a run, and redo a noisy one.
    """

    def __init__(self, server_pids: Sequence[int] = ()) -> None:
        self.server_pids = list(server_pids)
        self.hz = os.sysconf("SC_CLK_TCK")

    def snapshot(self) -> _Snapshot | None:
        busy = _system_busy_ticks()
        if busy is None:
            return None
        t = os.times()
        own = round((t.user + t.system + t.children_user + t.children_system) * self.hz)
        own += sum(_pid_ticks(pid) for pid in self.server_pids)
        return time.monotonic(), busy, own

    def others_percent(self, before: _Snapshot | None, after: _Snapshot | None) -> float | None:
        if before is None or after is None or after[0] <= before[0]:
            return None
        others = (after[1] - before[1]) - (after[2] - before[2])
        return round(max(0.0, others / self.hz / (after[0] - before[0]) * 100), 1)


class OtherLoad:
    """The long-lived processes, not this benchmark's, that used the most CPU between start() and
    stop(): names to go with CpuMeter's figure."""

    def __init__(self) -> None:
        self._start: dict[int, _Proc] = {}
        self._t0 = 0.0
        self.result: dict[str, Any] = {}

    def start(self) -> None:
        self._start = _processes() if Path("/proc/self/stat").exists() else {}
        self._t0 = time.monotonic()

    def stop(self, own_sessions: set[int]) -> dict[str, Any]:
        if not self._start:
            return {}
        elapsed = time.monotonic() - self._t0
        hz = os.sysconf("SC_CLK_TCK")
        me = os.getpid()
        by_command: dict[str, float] = {}
        for pid, now in _processes().items():
            if pid == me or now.session in own_sessions:
                continue
            before = self._start.get(pid)
            used = now.ticks - (before.ticks if before and before.comm == now.comm else 0)
            if used > 0:
                by_command[now.comm] = by_command.get(now.comm, 0.0) + used / hz / elapsed * 100
        top = sorted(by_command.items(), key=lambda kv: kv[1], reverse=True)
        self.result = {
            "seconds": round(elapsed, 1),
            "top": [{"command": c, "cpu_percent": round(p, 1)} for c, p in top[:6] if p >= 0.5],
        }
        return self.result


def describe_other_load(load: dict[str, Any]) -> str:
    if not load or load.get("cpu_percent_of_one_core") is None:
        return "not measured (no /proc)"
    top = ", ".join(f"{t['command']} {t['cpu_percent']}%" for t in load["top"]) or "none"
    return (f"other processes used {load['cpu_percent_of_one_core']}% of one core on average over the "
            f"{load['seconds']} s of measurement (per run: median {load['per_run_median']}%, max "
            f"{load['per_run_max']}%; long-lived ones: {top})")


# ---------------------------------------------------------------------------------------- figures


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def _median_or_none(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(_median(known), 1) if known else None


def summarise(runs: list[WrkRun]) -> dict[str, Any]:
    rps = [r.requests_per_second for r in runs]
    return {
        "requests_per_second": round(_median(rps), 1),
        "requests_per_second_range": [round(min(rps), 1), round(max(rps), 1)],
        "p50_ms": round(_median([r.p50_ms for r in runs]), 3),
        "p99_ms": round(_median([r.p99_ms for r in runs]), 3),
        "errors": sum(r.errors for r in runs),
        "other_cpu_percent": _median_or_none([r.other_cpu_percent for r in runs]),
        "runs": [asdict(r) | {"errors": r.errors} for r in runs],
    }


def compare(subject: dict[str, Any], ceiling: dict[str, Any], pairs: list[tuple[WrkRun, WrkRun]]) -> dict[str, Any]:
    pairwise = [s.requests_per_second / c.requests_per_second for s, c in pairs if c.requests_per_second]
    return {
        "requests_per_second_ratio": round(subject["requests_per_second"] / ceiling["requests_per_second"], 3),
        "requests_per_second_ratio_per_run": [round(x, 3) for x in pairwise],
        "p99_ratio": round(subject["p99_ms"] / ceiling["p99_ms"], 2) if ceiling["p99_ms"] else None,
        "p50_ratio": round(subject["p50_ms"] / ceiling["p50_ms"], 2) if ceiling["p50_ms"] else None,
    }


def _fmt_ms(ms: float) -> str:
    return f"{ms * 1000:.0f} µs" if ms < 1 else f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms"


def results_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"GET /api/v1/products/{{id}} — medians of {report['settings']['runs']} runs of "
                        f"{report['settings']['duration_seconds']:g} s each")
    table.add_column("target")
    table.add_column("conns", justify="right")
    table.add_column("req/s", justify="right")
    table.add_column("req/s range", justify="right")
    table.add_column("p50", justify="right")
    table.add_column("p99", justify="right")
    table.add_column("req/s ÷ bare", justify="right")
    table.add_column("req/s ÷ bare+ORM", justify="right")
    table.add_column("p99 ÷ bare", justify="right")
    table.add_column("errors", justify="right")
    table.add_column("others' CPU", justify="right")
    goal = report.get("goal", {}).get("ceiling")
    for row in report["results"]:
        # Results saved before the ORM ceiling existed have one ratio, against the bare endpoint.
        ratios = row.get("ratios") or ({CEILING: row["ratio"]} if row.get("ratio") else {})
        for target in (SUBJECT, *CEILINGS):
            fig = row.get(target)
            if fig is None:
                continue
            lo, hi = fig["requests_per_second_range"]
            rps, rps_range = f"{fig['requests_per_second']:,.0f}", f"{lo:,.0f}–{hi:,.0f}"
            shown = {ceiling: "" for ceiling in CEILINGS}
            ratio_p99 = ""
            if target == SUBJECT:
                for ceiling, ratio in ratios.items():
                    per_run = ratio["requests_per_second_ratio_per_run"]
                    value = ratio["requests_per_second_ratio"]
                    style = ("green" if value >= GOAL_RATIOS[ceiling] else "red") if ceiling == goal else "default"
                    shown[ceiling] = f"[{style}]{value:.2f}[/] ({min(per_run):.2f}–{max(per_run):.2f})"
                if CEILING in ratios and ratios[CEILING]["p99_ratio"] is not None:
                    ratio_p99 = f"{ratios[CEILING]['p99_ratio']:.1f}×"
            errors = f"[red]{fig['errors']}[/]" if fig["errors"] else "0"
            others = "—" if fig["other_cpu_percent"] is None else f"{fig['other_cpu_percent']:.0f}%"
            table.add_row(TARGET_LABELS[target], str(row["connections"]), rps, rps_range, _fmt_ms(fig["p50_ms"]),
                          _fmt_ms(fig["p99_ms"]), shown[CEILING], shown[ORM_CEILING], ratio_p99, errors, others)
        if row is not report["results"][-1]:
            table.add_section()
    return table


def print_report(report: dict[str, Any]) -> None:
    console.print()
    console.print(results_table(report))
    m, s = report["machine"], report["settings"]
    console.print(f"[bold]machine[/]  {m['cores']} cores ({m['usable_cores']} usable), {m['cpu']}, "
                  f"{m['memory_gib']} GiB, {m['os']}; {m['python']}")
    console.print(f"[bold]load[/]     load average before {m['load_average_before']}, "
                  f"after {m['load_average_after']}")
    console.print(f"[bold]others[/]   {escape(describe_other_load(m['other_processes']))}")
    console.print(f"[bold]servers[/]  {escape(s['server'])}")
    console.print(f"[bold]client[/]   {escape(s['client'])}: {escape(s['client_command'])}; "
                  f"warm-up {s['warmup_seconds']:g} s per target and connection count; "
                  "runs alternate which target goes first")
    p = report["product"]
    console.print(f"[bold]document[/] product {p['id']}: {p['platform_body_bytes']} bytes from the platform, "
                  f"{p['bare_body_bytes']} from the bare app")
    console.print(f"[bold]command[/]  {escape(report['command'])}")
    for note in report["notes"]:
        console.print(f"[yellow]note[/]     {escape(note)}")


# -------------------------------------------------------------------------------------------- run


def _json_diff(a: Any, b: Any, path: str = "$") -> Iterator[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                yield f"{path}.{key}: only in {'bare' if key in b else 'platform'}"
            else:
                yield from _json_diff(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _json_diff(x, y, f"{path}[{i}]")
    elif a != b:
        yield f"{path}: platform {a!r:.60} vs bare {b!r:.60}"


def platform_env(extra: list[str]) -> dict[str, str]:
    """The embedded topology as it ships: no AMAZONLITE_* setting from the caller's shell (no Kafka,
    no Redis, no other database), except what `--platform-env` names on purpose."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMAZONLITE_")}
    for item in extra:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BenchError(f"--platform-env expects KEY=VALUE, got {item!r}")
        env[key] = value
    return env


# A load test from one address is what the per-client rate limit exists to stop: the bench raises the
# demo tenant's limits through the API (as its admin) to the highest allowed, so the limiter still
# runs on every request (its cost is measured) but never refuses one.
DEMO_ADMIN = ("admin@demo.amazonlite.dev", "demo-admin-password")
BENCH_PER_MINUTE = 1_000_000


def http_json(method: str, url: str, document: Any, *, token: str | None = None) -> tuple[int, Any]:
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(document).encode(), headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:300]


def lift_rate_limits(base: str, *, admin: tuple[str, str] = DEMO_ADMIN, timeout: float = 90.0) -> str:
    """Raise tenant `default`'s rate limits as its `admin` (email, password), wait until the gateway
    applies them, and answer the admin's access token."""
    status, tokens = http_json("POST", f"{base}/api/v1/auth/login", {"email": admin[0], "password": admin[1]})
    if status != 200:
        raise BenchError(f"logging in as {admin[0]} answered {status}: {tokens!r}")
    limits = {"tenant_per_minute": BENCH_PER_MINUTE, "client_per_minute": BENCH_PER_MINUTE}
    status, answer = http_json("PATCH", f"{base}/api/v1/admin/tenants/default", {"rate_limits": limits},
                               token=tokens["access_token"])
    if status != 200:
        raise BenchError(f"raising the demo tenant's rate limits answered {status}: {answer!r}")
    # The gateway keeps tenant settings for a while: wait until it applies the new limits.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request = urllib.request.Request(f"{base}/api/v1/categories?limit=1", headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            if response.headers.get("RateLimit-Limit") == str(BENCH_PER_MINUTE):
                return str(tokens["access_token"])
        time.sleep(1)
    raise BenchError(f"the gateway did not apply the raised rate limits within {timeout:g} s")


def capture_product(base: str) -> tuple[str, bytes]:
    status, body = http_get(f"{base}/api/v1/products?limit=1")
    if status != 200:
        raise BenchError(f"GET {base}/api/v1/products?limit=1 answered {status}: {body[:300]!r}")
    items = json.loads(body).get("items") or []
    if not items:
        raise BenchError("the platform has no product in tenant `default` (did the demo data load?)")
    product_id = str(items[0]["id"])
    status, body = http_get(f"{base}/api/v1/products/{product_id}")
    if status != 200:
        raise BenchError(f"GET {base}/api/v1/products/{product_id} answered {status}: {body[:300]!r}")
    return product_id, body


def wait_for_quiet(meter: CpuMeter, limit: float) -> float | None:
    """Wait (at most `limit` seconds) until other processes use less than the noisy threshold over
    two seconds; the servers are idle meanwhile, so what the meter sees is the rest of the machine."""
    deadline = time.monotonic() + limit
    others: float | None = None
    while True:
        before = meter.snapshot()
        time.sleep(2)
        others = meter.others_percent(before, meter.snapshot())
        if others is None or others < NOISY_OTHER_CPU_PERCENT:
            return others
        if time.monotonic() >= deadline:
            console.print(f"[yellow]the machine is still busy (others {others}% of a core); measuring anyway[/]")
            return others
        console.print(f"[dim]waiting for a quiet machine: others use {others}% of a core[/]")
        time.sleep(3)


def measure(wrk: str, urls: dict[str, str], args: argparse.Namespace, meter: CpuMeter) -> list[dict[str, Any]]:
    rows = []
    targets = list(urls)
    for connections in args.connections:
        for target in targets if args.warmup > 0 else ():
            console.print(f"[dim]warm-up  {target:8} {connections:>3} connections, {args.warmup:g} s[/]")
            run_wrk(wrk, urls[target], target=target, connections=connections, threads=args.threads,
                    seconds=args.warmup)
        runs: dict[str, list[WrkRun]] = {t: [] for t in targets}
        for i in range(args.runs):
            order = targets if i % 2 == 0 else targets[::-1]
            for target in order:
                if args.wait_quiet > 0:
                    wait_for_quiet(meter, args.wait_quiet)
                before = meter.snapshot()
                result = run_wrk(wrk, urls[target], target=target, connections=connections,
                                 threads=args.threads, seconds=args.duration)
                result.other_cpu_percent = meter.others_percent(before, meter.snapshot())
                runs[target].append(result)
                console.print(f"[dim]run {i + 1}/{args.runs}  {target:8} {connections:>3} connections: "
                              f"{result.requests_per_second:>9,.0f} req/s  p50 {_fmt_ms(result.p50_ms):>9}  "
                              f"p99 {_fmt_ms(result.p99_ms):>9}  errors {result.errors}  "
                              f"others' CPU {result.other_cpu_percent}%[/]")
        row: dict[str, Any] = {"connections": connections}
        for target in targets:
            row[target] = summarise(runs[target])
        if SUBJECT in runs:
            row["ratios"] = {ceiling: compare(row[SUBJECT], row[ceiling],
                                              list(zip(runs[SUBJECT], runs[ceiling], strict=True)))
                             for ceiling in CEILINGS if ceiling in runs}
        rows.append(row)
    return rows


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./dev bench",
        description="GET /api/v1/products/{id} through the gateway of the embedded platform, against a bare "
                    "FastAPI endpoint serving the same document (the ceiling), loaded by wrk in the same run.")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per target and connection count "
                                                            "(default 3; the median is reported)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per target and connection "
                                                                  "count, not measured (default 3)")
    parser.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")], default=[8, 64],
                        help="comma-separated connection counts (default 8,64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before each measured run, wait up to this long for other processes to use less than "
                             f"{NOISY_OTHER_CPU_PERCENT:g}%% of a core (for shared machines; default 0: do not wait)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this path")
    parser.add_argument("--startup-timeout", type=float, default=240.0,
                        help="seconds to wait for the platform to migrate, seed and answer /health/ready")
    parser.add_argument("--platform-env", action="append", default=[], metavar="KEY=VALUE",
                        help="environment for the platform (repeatable); the caller's AMAZONLITE_* are not passed")
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary data directory and logs")
    parser.add_argument("--show", type=Path, metavar="RESULT_JSON",
                        help="print the table and context of a saved result (bench/results/*.json), measure nothing")
    parser.add_argument("--ceiling-only", type=Path, metavar="PRODUCT_JSON",
                        help="measure only the bare app serving this document (to check the bench itself; "
                             "gives no ratio)")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0 or args.runs < 1 or args.threads < 1:
        parser.error("--duration ≥ 1, --warmup ≥ 0, --runs ≥ 1 and --threads ≥ 1")
    if any(c < 1 for c in args.connections):
        parser.error("--connections must be positive")
    return args


def _on_signal(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    wrk = ensure_wrk()
    machine = describe_machine()
    workdir = Path(tempfile.mkdtemp(prefix="amazonlite-bench-"))
    servers: list[Server] = []
    notes: list[str] = []
    try:
        urls: dict[str, str] = {}
        if args.ceiling_only is None:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            # Early versions of `amazonlite up` did not create a missing --data-dir.
            (workdir / "data").mkdir()
            platform = Server(SUBJECT, [sys.executable, "-m", "amazonlite.cli", "up", "--port", str(port),
                                        "--data-dir", str(workdir / "data")],
                              env=platform_env(args.platform_env), log_path=workdir / "platform.log")
            servers.append(platform)
            console.print(f"[dim]starting the embedded platform on {base} (migrate, load demo data, serve)...[/]")
            platform.start()
            platform.wait_ready(f"{base}/health/ready", args.startup_timeout)
            console.print("[dim]raising the demo tenant's rate limits (one client address drives the load)...[/]")
            lift_rate_limits(base)
            product_id, platform_body = capture_product(base)
            product_path = workdir / "product.json"
            product_path.write_bytes(platform_body)
            urls[SUBJECT] = f"{base}/api/v1/products/{product_id}"
        else:
            product_path = args.ceiling_only.resolve()
            platform_body = product_path.read_bytes()
            product_id = str(json.loads(platform_body)["id"])
            notes.append("--ceiling-only: the platform was not measured; there is no ratio")

        bodies: dict[str, bytes] = {}
        for ceiling in CEILINGS:
            command = [sys.executable, str(BENCH / "bare_app.py"), "--port", str(port := free_port())]
            if ceiling == ORM_CEILING:
                if args.ceiling_only is not None:
                    continue  # no platform, no catalog database to read
                command += ["--orm-url", f"sqlite+aiosqlite:///{workdir / 'data' / 'catalog.sqlite3'}"]
            bare_base = f"http://127.0.0.1:{port}"
            bare = Server(ceiling, command, env={**os.environ, PRODUCT_ENV: str(product_path)},
                          log_path=workdir / f"{ceiling}.log")
            servers.append(bare)
            console.print(f"[dim]starting the ceiling {TARGET_LABELS[ceiling]} on {bare_base}...[/]")
            bare.start()
            bare.wait_ready(f"{bare_base}/health/ready", 60)
            urls[ceiling] = f"{bare_base}/api/v1/products/{product_id}"
            status, bodies[ceiling] = http_get(urls[ceiling])
            if status != 200:
                raise BenchError(f"{ceiling} answered {status} for {urls[ceiling]}: {bodies[ceiling][:300]!r}")
            differences = list(_json_diff(json.loads(platform_body), json.loads(bodies[ceiling])))
            if differences:
                raise BenchError(f"{ceiling}'s document differs from the platform's, so it is no ceiling for it:\n  "
                                 + "\n  ".join(differences[:10]))
        bare_body = bodies[CEILING]

        server_pids = [s.proc.pid for s in servers if s.proc is not None]
        meter, other = CpuMeter(server_pids), OtherLoad()
        other.start()
        first = meter.snapshot()
        started = dt.datetime.now(dt.UTC)
        rows = measure(wrk, urls, args, meter)
        machine["other_processes"] = other.stop(set(server_pids))
        per_run = [r["other_cpu_percent"] for row in rows for t in urls for r in row[t]["runs"]]
        machine["other_processes"] |= {
            "cpu_percent_of_one_core": meter.others_percent(first, meter.snapshot()),
            "per_run_median": _median_or_none(per_run),
            "per_run_max": max((v for v in per_run if v is not None), default=None),
        }
        machine["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        # A second Ctrl-C must not leave a server behind: stopping is bounded (SIGTERM, then SIGKILL).
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for server in reversed(servers):
            server.stop()
        if args.keep_data:
            console.print(f"[dim]data and server logs kept in {escape(str(workdir))}[/]")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    busy = machine["other_processes"].get("per_run_median")
    if busy is not None and busy >= NOISY_OTHER_CPU_PERCENT:
        notes.append(f"the machine was not quiet: other processes used {busy}% of one core during the median run "
                     f"(of {100 * (machine['usable_cores'] or 1)}%). The absolute figures are low and noisy, and "
                     "the ratio is flattered when the subject is much slower than the ceiling (the ceiling and wrk "
                     "need more CPU than a slow subject, so they lose more of it); run again on a quiet machine")
    for row in rows:
        for target in urls:
            if row[target]["errors"]:
                notes.append(f"{target} at {row['connections']} connections: {row[target]['errors']} errors "
                             "(non-2xx/3xx responses or socket errors); its figures include them")
    goal_ceiling = ORM_CEILING if UNCACHED_SETTING in args.platform_env else CEILING
    conns = ",".join(map(str, args.connections))
    client_cmd = f"wrk -t{args.threads} -c{{{conns}}} -d{max(1, round(args.duration))}s --timeout 10s --latency URL"
    shown = " " + shlex.join(argv) if argv else ""
    return {
        "benchmark": BENCHMARK,
        "started_at": started.isoformat(timespec="seconds"),
        "command": f"./dev bench{shown}   (= .venv/bin/python bench/run.py{shown})",
        "argv": list(argv),
        "settings": {
            "duration_seconds": args.duration,
            "warmup_seconds": args.warmup,
            "runs": args.runs,
            "connections": args.connections,
            "threads": args.threads,
            "wait_quiet_seconds": args.wait_quiet,
            "client": wrk_version(wrk),
            "client_command": client_cmd,
            "server": (f"uvicorn {_package_version('uvicorn')} with the platform's edge limits (platform/server.py), "
                       f"1 worker, loop auto (uvloop {_package_version('uvloop')}), httptools "
                       f"{_package_version('httptools')}, "
                       f"access log off; FastAPI {_package_version('fastapi')}, Pydantic {_package_version('pydantic')}"
                       "; platform: `amazonlite up` (embedded: SQLite, in-process bus, no Redis), environment "
                       + (", ".join(args.platform_env) or "default")),
            "urls": urls,
        },
        "machine": machine,
        "product": {"id": product_id, "platform_body_bytes": len(platform_body), "bare_body_bytes": len(bare_body)},
        "results": rows,
        "goal": {"ceiling": goal_ceiling, "requests_per_second_ratio": GOAL_RATIOS[goal_ceiling],
                 "why": ("uncached (" + UNCACHED_SETTING + "): against the bare endpoint with an ORM read"
                         if goal_ceiling == ORM_CEILING else "cached: against the bare endpoint")
                        + "; see PERFORMANCE.md"},
        "notes": notes,
    }


# `./dev bench <name> [options]` runs another benchmark; without a name, the product read.
OTHER_BENCHMARKS = {"flash-sale": "flash_sale", "cart": "cart", "checkout": "checkout", "search": "search"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in OTHER_BENCHMARKS:
        import importlib

        other: Any = importlib.import_module(OTHER_BENCHMARKS[argv[0]])
        return int(other.main(argv[1:]))
    args = parse_args(argv)
    if args.show is not None:
        print_report(json.loads(args.show.read_text()))
        return 0
    # Stop the servers on Ctrl-C, a kill or a closed terminal (also when started in the background,
    # where a shell leaves SIGINT ignored).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    try:
        report = run(args, argv)
    except BenchError as exc:
        console.print(f"[red bold]bench failed:[/] {escape(str(exc))}")
        return 1
    except KeyboardInterrupt:
        console.print("[red]interrupted; the servers stopped[/]")
        return 130
    print_report(report)
    save_report(BENCHMARK, report, args.json)
    return 0


TOPOLOGIES = ("embedded", "distributed")


def add_topology_options(parser: argparse.ArgumentParser) -> None:
    """`--topologies` and `--json`, as every bench over both topologies takes them."""
    parser.add_argument("--topologies", type=lambda s: s.split(","), default=list(TOPOLOGIES),
                        help="comma-separated: embedded,distributed (default both)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this path")


def check_topologies(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    unknown = set(args.topologies) - set(TOPOLOGIES)
    if unknown:
        parser.error(f"unknown topologies: {sorted(unknown)}")


def run_and_report(benchmark: str, args: argparse.Namespace, run: Callable[[argparse.Namespace], dict[str, Any]],
                   print_report: Callable[[dict[str, Any]], None]) -> int:
    """Run a bench, print and save its report; 1 (and why) when it failed."""
    try:
        report = run(args)
    except BenchError as exc:
        console.print(f"[red bold]bench failed:[/] {exc}")
        return 1
    print_report(report)
    save_report(benchmark, report, args.json)
    return 0


def save_report(benchmark: str, report: dict[str, Any], also: Path | None) -> None:
    """Write the figures as JSON to bench/results/<benchmark>-<UTC stamp>.json, and to `also` if given."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    for path in (RESULTS_DIR / f"{benchmark}-{stamp}.json", *([also] if also is not None else [])):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"[dim]wrote {escape(str(path))}[/]")


if __name__ == "__main__":
    sys.exit(main())
