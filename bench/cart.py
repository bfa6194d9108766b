"""Cart latency through the gateway: `POST /cart/items` and `GET /cart`, embedded and distributed.

    ./dev bench cart [--clients 8] [--duration 10] [--warmup 3] [--topologies embedded,distributed]
                     [--json PATH]

For each topology, in one run:

1. start the platform as the end-to-end tests do (`tests/e2e/platforms.py`: embedded is
   `amazonlite up`; distributed is one `amazonlite serve` process per service on PostgreSQL, Redis and
   a Kafka-protocol broker, with the gateway in front), raise the tenant's rate limits as its admin
   (the limiter still runs on every request), create a product of 50 SKUs and stock them;
2. run `--clients` concurrent guests, each with a cart of its own: add a SKU (quantity 1), read the
   cart, again and again, cycling through the SKUs (a cart that reaches the per-line maximum is left
   and a new one begun); a warm-up first, then `--duration` seconds measured;
3. report, per operation, the requests per second and the p50/p95/p99 latency as the client saw it.

There is no ceiling to divide by (the issue asks for p50/p95): the figures are absolute, so read them
with the machine's description and load, which are printed and saved with them. The client is one
Python process (httpx, asyncio) on the same machine: it takes CPU from the platform, and its own
overhead (~0.3 ms a request) is inside the latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from rich.table import Table

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(BENCH)]

from run import (  # noqa: E402
    BenchError,
    add_topology_options,
    check_topologies,
    console,
    describe_machine,
    lift_rate_limits,
    run_and_report,
)
from tests.e2e import platforms  # noqa: E402

BENCHMARK = "cart"
SKUS = 50
PRICE = {"amount": 49_900, "currency": "INR"}
STOCK = 1_000_000
LINE_MAXIMUM = 20  # the cart's default per-line maximum: a line is not added to beyond it


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def prepare(base_url: str) -> list[str]:
    """As the platform's admin: raise the tenant's rate limits, create the product, stock its SKUs."""
    token = lift_rate_limits(base_url, admin=(platforms.ADMIN_EMAIL, platforms.ADMIN_PASSWORD))
    with httpx.Client(base_url=f"{base_url}/api/v1", timeout=30) as api:
        admin = {"Authorization": f"Bearer {token}"}
        tag = dt.datetime.now(dt.UTC).strftime("%H%M%S")
        skus = [f"BENCH-{tag}-{n:02d}" for n in range(SKUS)]
        product = api.post("/products", headers=admin, json={
            "name": f"Bench kettle {tag}", "description": "", "status": "active", "attributes": {}, "media": [],
            "variants": [{"sku": sku, "name": sku, "options": {"n": sku}, "price": PRICE} for sku in skus]})
        if product.status_code != 201:
            raise BenchError(f"creating the product answered {product.status_code}: {product.text[:300]}")
        deadline = time.monotonic() + 120
        for sku in skus:
            while True:
                stocked = api.put(f"/inventory/{sku}/warehouses/default", headers=admin,
                                  json={"set": STOCK, "reason": "benchmark"})
                if stocked.status_code == 200:
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"inventory never learned {sku}: {stocked.status_code} {stocked.text[:300]}")
                time.sleep(0.5)
        return skus


async def guest(base_url: str, skus: list[str], until: float, measure_from: float,
                samples: dict[str, list[float]], errors: dict[str, int], failures: list[str], offset: int) -> None:
    async with httpx.AsyncClient(base_url=f"{base_url}/api/v1", timeout=30) as api:
        cart_id: str | None = None
        adds = 0
        while time.monotonic() < until:
            if adds >= SKUS * LINE_MAXIMUM:
                cart_id, adds = None, 0
            sku = skus[(offset + adds) % SKUS]
            headers = {"X-Cart-Id": cart_id} if cart_id else {}
            started = time.monotonic()
            try:
                added = await api.post("/cart/items", json={"sku": sku, "quantity": 1}, headers=headers)
            except httpx.TransportError as exc:  # counted, and said: a benchmark must not hide them
                errors["add"] += started >= measure_from
                failures.append(repr(exc))
                continue
            took = time.monotonic() - started
            measured = started >= measure_from
            if added.status_code not in (200, 201):
                errors["add"] += measured
                failures.append(f"{added.status_code} {added.text[:200]}")
                cart_id, adds = None, 0
                continue
            cart_id = added.headers["x-cart-id"]
            adds += 1
            if measured:
                samples["add"].append(took * 1000)
            started = time.monotonic()
            try:
                read = await api.get("/cart", headers={"X-Cart-Id": cart_id})
            except httpx.TransportError as exc:
                errors["get"] += started >= measure_from
                failures.append(repr(exc))
                continue
            took = time.monotonic() - started
            if started >= measure_from:
                if read.status_code == 200:
                    samples["get"].append(took * 1000)
                else:
                    errors["get"] += 1


async def load(base_url: str, skus: list[str], clients: int, warmup: float, duration: float) -> dict[str, Any]:
    samples: dict[str, list[float]] = {"add": [], "get": []}
    errors = {"add": 0, "get": 0}
    failures: list[str] = []
    measure_from = time.monotonic() + warmup
    until = measure_from + duration
    await asyncio.gather(*(guest(base_url, skus, until, measure_from, samples, errors, failures, n * 7)
                           for n in range(clients)))
    result: dict[str, Any] = {}
    if failures:
        result["failures"] = {"count": len(failures), "first": sorted(set(failures))[:5]}
    for operation, values in samples.items():
        if not values:
            raise BenchError(f"no successful {operation} was measured ({errors[operation]} errors; "
                             f"first failures: {sorted(set(failures))[:3]})")
        result[operation] = {
            "requests": len(values), "errors": errors[operation],
            "requests_per_second": round(len(values) / duration, 1),
            "p50_ms": round(statistics.median(values), 2), "p95_ms": round(percentile(values, 0.95), 2),
            "p99_ms": round(percentile(values, 0.99), 2),
        }
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for topology in args.topologies:
        console.print(f"[bold]{topology}[/]: starting the platform…")
        with tempfile.TemporaryDirectory(prefix=f"bench-cart-{topology}-") as tmp, \
                platforms.started(topology, Path(tmp)) as running:
            skus = prepare(running.base_url)
            console.print(f"  {args.clients} guests, {args.warmup:g} s warm-up, {args.duration:g} s measured")
            results[topology] = asyncio.run(load(running.base_url, skus, args.clients, args.warmup, args.duration))
    return {
        "benchmark": BENCHMARK,
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["./dev bench cart", *sys.argv[2:]]),
        "machine": describe_machine(),
        "clients": args.clients, "duration_s": args.duration, "warmup_s": args.warmup,
        "results": results,
        "notes": ["client: one Python process (httpx, asyncio) on the same machine; latencies as it saw them",
                  "server: the platform's own (amazonlite up / serve / gateway), 1 worker per process"],
    }


def print_report(report: dict[str, Any]) -> None:
    table = Table(title=f"Cart through the gateway, {report['clients']} concurrent guests")
    for column in ("topology", "operation", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"):
        table.add_column(column, justify="left" if column in ("topology", "operation") else "right")
    for topology, operations in report["results"].items():
        failed = operations.get("failures")
        if failed:
            console.print(f"[yellow]{topology}: {failed['count']} requests failed: {failed['first']}[/]")
        for operation, figures in operations.items():
            if operation == "failures":
                continue
            label = {"add": "POST /cart/items", "get": "GET /cart"}[operation]
            table.add_row(topology, label, f"{figures['requests_per_second']:.0f}", f"{figures['p50_ms']:.1f}",
                          f"{figures['p95_ms']:.1f}", f"{figures['p99_ms']:.1f}", str(figures["errors"]))
    console.print(table)
    machine = report["machine"]
    console.print(f"[dim]{machine['cores']} cores ({machine['cpu']}), load before {machine['load_average_before']}; "
                  f"{report['command']}[/]")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="./dev bench cart", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="concurrent guests (default 8)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured (default 10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up (default 3)")
    add_topology_options(parser)
    args = parser.parse_args(argv)
    check_topologies(parser, args)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_report(BENCHMARK, parse_args(argv), run, print_report)


if __name__ == "__main__":
    sys.exit(main())
