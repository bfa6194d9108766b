"""Which HTTP server: the same apps under uvicorn as it shipped, under the platform's server
(uvicorn with the edge limits of `platform/server.py`) and under granian, measured in one run.

    .venv/bin/python bench/servers.py [--granian PATH] [--runs 3] [--duration 10] [--json PATH]

Two apps, each under each server, one worker, loop uvloop, access log off, on 127.0.0.1:
- `platform`: the embedded platform (`amazonlite.topology:embedded_app`, demo data, rate limits
  off so one client is not refused), `GET /api/v1/products/{id}` through the gateway (cached);
- `bare`: `bench/bare_app.py` serving the same document: what the server itself costs shows most.

granian is not a dependency of the project: `--granian` names its executable, installed in another
virtualenv of the same Python (`python -m venv /tmp/gv && /tmp/gv/bin/pip install granian`); it
imports the apps from this one (PYTHONPATH). Without it, the two uvicorn servers are measured.

wrk -t2 -c64, a warm-up then `--runs` runs of `--duration` s per pair, the order rotating between
runs; medians. Besides req/s and p99, the CPU time the server's processes used per request
(user + system, from /proc): on a shared machine throughput follows the neighbours' load, while
the CPU a request costs the server moves much less.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

from run import (
    PRODUCT_ENV,
    REPO,
    BenchError,
    Server,
    _processes,
    capture_product,
    console,
    describe_machine,
    ensure_wrk,
    free_port,
    platform_env,
    run_wrk,
    summarise,
)

APPS = {"platform": "amazonlite.topology:embedded_app", "bare": "bare_app:app_from_env"}
STOCK = ("import sys, uvicorn; uvicorn.run(sys.argv[1], factory=True, host='127.0.0.1', port=int(sys.argv[2]), "
         "access_log=False, log_config=None)")
EDGE = ("import sys; from amazonlite.platform.server import serve; "
        "serve(sys.argv[1], host='127.0.0.1', port=int(sys.argv[2]))")


HZ = os.sysconf("SC_CLK_TCK")


def session_ticks(session: int) -> int:
    """CPU ticks used so far by the processes of a server's session (granian's workers included)."""
    return sum(p.ticks for p in _processes().values() if p.session == session)


def server_argv(server: str, app: str, port: int, granian: str | None) -> list[str]:
    if server == "uvicorn":
        return [sys.executable, "-c", STOCK, app, str(port)]
    if server == "uvicorn + edge limits":
        return [sys.executable, "-c", EDGE, app, str(port)]
    assert granian is not None
    return [granian, "--interface", "asgi", "--factory", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--loop", "uvloop", "--log-level", "warning", app]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--granian", help="the granian executable (another virtualenv of the same Python)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    servers = ["uvicorn", "uvicorn + edge limits"] + (["granian"] if args.granian else [])
    wrk = ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="bench-servers-"))
    env = platform_env(["AMAZONLITE_GATEWAY_RATE_LIMIT_ENABLED=false", f"AMAZONLITE_DATA_DIR={workdir / 'data'}",
                        "AMAZONLITE_LOG_LEVEL=WARNING"])
    env["PYTHONPATH"] = ":".join([sysconfig.get_paths()["purelib"], str(REPO / "src"), str(REPO / "bench")])
    report: dict[str, Any] = {"machine": describe_machine(), "servers": servers, "apps": list(APPS),
                              "command": " ".join(sys.argv), "results": {}}
    try:
        seeded = Server("seed", [sys.executable, "-m", "amazonlite.cli", "seed"], env=env,
                        log_path=workdir / "seed.log")
        seeded.start()
        assert seeded.proc is not None
        if seeded.proc.wait(timeout=300) != 0:
            raise BenchError(f"seeding failed:\n{seeded.log_tail()}")
        runs: dict[tuple[str, str], list[Any]] = {}
        cpu_per_request: dict[tuple[str, str], list[float]] = {}
        product_file = workdir / "product.json"
        for run in range(args.runs + 1):  # run 0 is the warm-up
            order = servers[run % len(servers):] + servers[:run % len(servers)]
            for app in APPS:
                for server in order:
                    port = free_port()
                    proc = Server(f"{server} {app}", server_argv(server, APPS[app], port, args.granian),
                                  env={**env, PRODUCT_ENV: str(product_file)}, log_path=workdir / "server.log")
                    proc.start()
                    try:
                        base = f"http://127.0.0.1:{port}"
                        proc.wait_ready(f"{base}/health/ready", timeout=120)
                        if app == "platform" and not product_file.exists():
                            product_id, body = capture_product(base)
                            product_file.write_bytes(body)
                            report["product_id"] = product_id
                        url = f"{base}/api/v1/products/{report['product_id']}"
                        run_wrk(wrk, url, target=server, connections=args.connections, threads=2, seconds=3)
                        if run:
                            assert proc.proc is not None
                            before = session_ticks(proc.proc.pid)
                            result = run_wrk(wrk, url, target=server, connections=args.connections, threads=2,
                                             seconds=args.duration)
                            cpu = (session_ticks(proc.proc.pid) - before) / HZ / max(1, result.requests) * 1e6
                            runs.setdefault((app, server), []).append(result)
                            cpu_per_request.setdefault((app, server), []).append(cpu)
                            console.print(f"run {run} {app:8} {server:22} {result.requests_per_second:9.0f} req/s "
                                          f"p99 {result.p99_ms:7.1f} ms  CPU {cpu:6.0f} us/request "
                                          f"errors {result.errors}")
                    finally:
                        proc.stop()
                    time.sleep(1)
        for (app, server), results in runs.items():
            summary = summarise(results)
            summary["cpu_us_per_request"] = round(statistics.median(cpu_per_request[app, server]), 1)
            report["results"].setdefault(app, {})[server] = summary
    finally:
        report["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    console.print("\napp       server                   req/s (median)   range            p99 ms  CPU us/request")
    for app, by_server in report["results"].items():
        for server, summary in by_server.items():
            low, high = summary["requests_per_second_range"]
            console.print(f"{app:9} {server:24} {summary['requests_per_second']:>10.0f}   {low:>7.0f}-{high:<7.0f}"
                          f"  {summary['p99_ms']:>8.1f}  {summary['cpu_us_per_request']:>10.0f}")
    console.print(f"load average before {report['machine']['load_average_before']}, "
                  f"after {report['machine']['load_average_after']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        console.print(f"[red]{exc}[/]")
        sys.exit(1)
