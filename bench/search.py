"""Search: index build time and memory, then search and autocomplete latency through the gateway, on
each engine.

    ./dev bench search [--products 100000] [--clients 1,8,32] [--duration 10] [--warmup 3]
                       [--engines tantivy,postgres] [--json PATH]

For each engine, in one run:

1. **Build**: the engine alone, in this process, indexes the synthetic catalog of `amazonlite seed
   --products N` (`services/catalog/synthetic.py`, as `product.updated.v1` carries it) in batches of
   1,000: the seconds it takes, and the process's resident memory before and after (tantivy in
   memory-mapped files on disk; PostgreSQL in a database of its own, created and dropped).
2. **Through the gateway**: the embedded platform (`amazonlite up`, SQLite, in-process bus) with the
   search service on that engine; `amazonlite seed --products N` loads the same catalog into its
   catalog, whose events the search service indexes; the bench waits until every product is
   searchable, then runs `--clients` concurrent clients, each cycling through a fixed mix of requests
   built from the catalog: an exact product name, a misspelled word, two words, a filtered search
   (price and sort), and an autocomplete of 2 to 5 letters. A warm-up first, then `--duration`
   seconds measured per client count; p50/p95/p99 and requests per second per kind.

The goals (issue 10) at 8 clients on this machine: search p95 < 30 ms, autocomplete p95 < 10 ms. The
client is one Python process on the same machine (httpx, asyncio): its own cost (~0.3 ms a request)
is inside the latencies, and it takes CPU from the platform.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.table import Table

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(BENCH)]

from run import BenchError, console, describe_machine, lift_rate_limits, run_and_report  # noqa: E402
from tests.e2e import platforms  # noqa: E402
from tests.support import servers  # noqa: E402

from amazonlite.contracts.catalog import ProductUpdatedV1  # noqa: E402
from amazonlite.services.catalog import synthetic  # noqa: E402
from amazonlite.services.search.engine.base import IndexedProduct, SearchEngine  # noqa: E402
from amazonlite.services.search.service import from_event  # noqa: E402

BENCHMARK = "search"
KINDS = ("exact", "misspelled", "multi_word", "filtered", "autocomplete")
GOALS_MS = {"search_p95": 30.0, "autocomplete_p95": 10.0}


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def rss_mib() -> float:
    """This process's resident memory now (Linux: /proc), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def indexed_products(count: int) -> Iterator[IndexedProduct]:
    """The synthetic catalog as the search service indexes it (through its own event mapping)."""
    now = dt.datetime.now(dt.UTC)
    for number, data in enumerate(synthetic.products(count), start=1):
        path = [{"id": _category_id(data["category"].split(" > ")[:depth]), "name": name}
                for depth, name in enumerate(data["category"].split(" > "), start=1)]
        yield from_event(ProductUpdatedV1(
            product_id=_product_id(number), name=data["name"], slug=f"syn-{number}", description=data["description"],
            status="active", brand_id=None, brand_name=data["brand"], category_id=path[-1]["id"],
            category_name=path[-1]["name"], category_path=path, attributes=data["attributes"],
            media=data["media"], variants=data["variants"], created_at=now, updated_at=now))


def _product_id(number: int) -> uuid.UUID:
    return uuid.UUID(int=number)


def _category_id(names: list[str]) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, " > ".join(names))


@contextmanager
def engine_of(name: str, directory: Path) -> Iterator[SearchEngine]:
    """A fresh engine: tantivy in `directory`, or PostgreSQL in a database of its own."""
    with _search_database(name) as url:
        if url is None:
            from amazonlite.services.search.engine.tantivy_engine import TantivySearchEngine

            yield TantivySearchEngine(directory / "index")
            return
        from amazonlite.services.search.engine.postgres_engine import PostgresSearchEngine

        yield PostgresSearchEngine.from_url(url)


async def build(engine: SearchEngine, count: int, batch: int = 1000) -> dict[str, Any]:
    create = getattr(engine, "create_schema", None)
    if create is not None:
        await create()
    started = time.monotonic()
    products = list(indexed_products(count))
    generated = time.monotonic() - started
    before = rss_mib()  # with the products generated: the growth from here is the engine's
    started = time.monotonic()
    for start in range(0, len(products), batch):
        await engine.upsert("default", products[start:start + batch])
    took = time.monotonic() - started
    indexed = await engine.count("default")
    after = rss_mib()
    await engine.close()
    if indexed != count:
        raise BenchError(f"the engine holds {indexed} products, not {count}")
    return {"products": count, "seconds": round(took, 1), "products_per_second": round(count / took),
            "generate_seconds": round(generated, 1), "rss_before_mib": before, "rss_after_mib": after}


def queries(count: int, seed: int = 7) -> dict[str, list[dict[str, Any]]]:
    """The request mix, from products of the catalog the platform holds."""
    rng = random.Random(seed)
    sample = [synthetic.product(rng.randint(1, count)) for _ in range(200)]
    mix: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for product in sample:
        words = [w for w in product["name"].split() if w.isalpha() and len(w) >= 5]
        mix["exact"].append({"q": product["name"]})
        if words:
            word = rng.choice(words)
            i = rng.randrange(1, len(word) - 1)
            mix["misspelled"].append({"q": word[:i] + word[i + 1] + word[i] + word[i + 2:]})
        noun = product["name"].split()[2:-1]
        mix["multi_word"].append({"q": " ".join([product["brand"], *noun])})
        leaf = product["category"].split(" > ")[-1]
        mix["filtered"].append({"q": " ".join(noun) or leaf, "max_price": 5_000_000, "sort": "price_asc"})
        mix["autocomplete"].append({"q": product["name"][:rng.randint(2, 5)]})
    return mix


def prepare(base_url: str, count: int, cli: Any, timeout: float) -> dict[str, Any]:
    """Raise the tenant's limits, load the synthetic catalog, wait until search has all of it."""
    lift_rate_limits(base_url, admin=(platforms.ADMIN_EMAIL, platforms.ADMIN_PASSWORD))
    with httpx.Client(base_url=f"{base_url}/api/v1", timeout=60) as api:
        started = time.monotonic()
        cli("seed", "--products", str(count), extra_env={"AMAZONLITE_ENVIRONMENT": "development"})
        loaded = time.monotonic() - started
        last = synthetic.product(count)
        deadline = time.monotonic() + timeout
        while True:
            found = api.get("/search", params={"q": last["name"], "limit": 100})
            if found.status_code == 200 and any(h["name"] == last["name"] for h in found.json()["items"]):
                break
            if time.monotonic() > deadline:
                raise BenchError(f"search did not have the last product after {timeout:g} s")
            time.sleep(1)
        return {"catalog_load_seconds": round(loaded, 1),
                "searchable_after_seconds": round(time.monotonic() - started, 1)}


def freshness(base_url: str, samples: int = 10, timeout: float = 30.0) -> dict[str, Any]:
    """Seconds from a product's creation (answered by the catalog) until a search finds it, polled
    every 20 ms, for `samples` new products one after the other."""
    token = lift_rate_limits(base_url, admin=(platforms.ADMIN_EMAIL, platforms.ADMIN_PASSWORD))
    rng = random.Random()
    delays: list[float] = []
    with httpx.Client(base_url=f"{base_url}/api/v1", timeout=30) as api:
        for _ in range(samples):
            word = "".join(rng.choice("bcdfghjklmnpqrstvwxz") + rng.choice("aeiou") for _ in range(4))
            made = api.post("/products", headers={"Authorization": f"Bearer {token}"}, json={
                "name": f"{word.capitalize()} Freshness Probe", "status": "active",
                "variants": [{"sku": f"FRESH-{word}", "name": "One", "price": {"amount": 100, "currency": "INR"}}]})
            if made.status_code != 201:
                raise BenchError(f"creating a probe answered {made.status_code}: {made.text[:300]}")
            created = time.monotonic()
            while not api.get("/search", params={"q": word}).json().get("items"):
                if time.monotonic() - created > timeout:
                    raise BenchError(f"a new product was not searchable within {timeout:g} s")
                time.sleep(0.02)
            delays.append(time.monotonic() - created)
    return {"samples": samples, "p50_s": round(statistics.median(delays), 3), "max_s": round(max(delays), 3)}


async def client(api: httpx.AsyncClient, mix: dict[str, list[dict[str, Any]]], offset: int, until: float,
                 measure_from: float, samples: dict[str, list[float]], errors: dict[str, int]) -> None:
    turn = offset
    while time.monotonic() < until:
        kind = KINDS[turn % len(KINDS)]
        params = mix[kind][(turn // len(KINDS)) % len(mix[kind])]
        turn += 1
        path = "/search/autocomplete" if kind == "autocomplete" else "/search"
        started = time.monotonic()
        try:
            answer = await api.get(path, params=params)
        except httpx.TransportError:
            errors[kind] += started >= measure_from
            continue
        took = (time.monotonic() - started) * 1000
        if started >= measure_from:
            if answer.status_code == 200:
                samples[kind].append(took)
            else:
                errors[kind] += 1


async def load(base_url: str, mix: dict[str, list[dict[str, Any]]], clients: int, warmup: float,
               duration: float) -> dict[str, Any]:
    samples: dict[str, list[float]] = {kind: [] for kind in KINDS}
    errors = {kind: 0 for kind in KINDS}
    measure_from = time.monotonic() + warmup
    until = measure_from + duration
    async with httpx.AsyncClient(base_url=f"{base_url}/api/v1", timeout=30,
                                 limits=httpx.Limits(max_connections=clients)) as api:
        await asyncio.gather(*(client(api, mix, n * 3, until, measure_from, samples, errors) for n in range(clients)))
    result: dict[str, Any] = {}
    for kind, values in samples.items():
        if not values:
            raise BenchError(f"no successful {kind} request was measured ({errors[kind]} errors)")
        result[kind] = {"requests": len(values), "errors": errors[kind],
                        "requests_per_second": round(len(values) / duration, 1),
                        "p50_ms": round(statistics.median(values), 2), "p95_ms": round(percentile(values, 0.95), 2),
                        "p99_ms": round(percentile(values, 0.99), 2)}
    searches = [v for kind in KINDS if kind != "autocomplete" for v in samples[kind]]
    result["all_searches"] = {"p95_ms": round(percentile(searches, 0.95), 2),
                              "requests_per_second": round(len(searches) / duration, 1)}
    return result


def process_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    mix = queries(args.products)
    for name in args.engines:
        console.print(f"[bold]{name}[/]: building an index of {args.products} products in this process…")
        with tempfile.TemporaryDirectory(prefix=f"bench-search-{name}-") as tmp, engine_of(name, Path(tmp)) as engine:
            built = asyncio.run(build(engine, args.products))
        console.print(f"  {built['seconds']} s, {built['products_per_second']} products/s; "
                      f"RSS {built['rss_before_mib']} → {built['rss_after_mib']} MiB")
        if args.build_only:
            results[name] = {"build": built}
            continue
        env: dict[str, str] = {"AMAZONLITE_SEARCH_BACKEND": name}
        with tempfile.TemporaryDirectory(prefix=f"bench-search-{name}-platform-") as tmp, \
                _search_database(name) as url:
            if url is not None:
                env["AMAZONLITE_SEARCH_DATABASE_URL"] = url
            with platforms.started("embedded", Path(tmp), extra_env=env) as running:
                console.print(f"  loading {args.products} products into the platform's catalog…")
                loaded = prepare(running.base_url, args.products, running.cli, args.index_timeout)
                console.print(f"  catalog loaded in {loaded['catalog_load_seconds']} s; all searchable after "
                              f"{loaded['searchable_after_seconds']} s")
                fresh = freshness(running.base_url)
                console.print(f"  a new product searchable after {fresh['p50_s']} s (median), "
                              f"{fresh['max_s']} s at most")
                levels = {}
                for clients in args.clients:
                    console.print(f"  {clients} clients: {args.warmup:g} s warm-up, {args.duration:g} s measured")
                    levels[str(clients)] = asyncio.run(load(running.base_url, mix, clients, args.warmup,
                                                            args.duration))
        results[name] = {"build": built, "platform": {**loaded, "freshness": fresh}, "by_clients": levels}
    return {
        "benchmark": BENCHMARK,
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["./dev bench search", *sys.argv[2:]]),
        "machine": describe_machine(),
        "products": args.products, "duration_s": args.duration, "warmup_s": args.warmup,
        "goals_ms_at_8_clients": GOALS_MS,
        "results": results,
        "notes": ["client: one Python process (httpx, asyncio) on the same machine; latencies as it saw them",
                  "platform: amazonlite up (embedded: SQLite catalog, in-process bus), 1 worker",
                  "build: the engine alone in the bench's process, batches of 1,000 products"],
    }


@contextmanager
def _search_database(engine: str) -> Iterator[str | None]:
    if engine != "postgres":
        yield None
        return
    with servers.postgres_database("bench_search") as url:
        yield url


def print_report(report: dict[str, Any]) -> None:
    table = Table(title=f"Search through the gateway, {report['products']} products")
    for column in ("engine", "clients", "kind", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"):
        table.add_column(column, justify="left" if column in ("engine", "kind") else "right")
    for engine, figures in report["results"].items():
        for clients, kinds in figures.get("by_clients", {}).items():
            for kind in KINDS:
                row = kinds[kind]
                table.add_row(engine, clients, kind, f"{row['requests_per_second']:.0f}", f"{row['p50_ms']:.1f}",
                              f"{row['p95_ms']:.1f}", f"{row['p99_ms']:.1f}", str(row["errors"]))
            table.add_row(engine, clients, "all searches", f"{kinds['all_searches']['requests_per_second']:.0f}", "",
                          f"{kinds['all_searches']['p95_ms']:.1f}", "", "", end_section=True)
    console.print(table)
    for engine, figures in report["results"].items():
        built = figures["build"]
        console.print(f"{engine}: index of {built['products']} built in {built['seconds']} s "
                      f"({built['products_per_second']}/s), RSS {built['rss_before_mib']} → "
                      f"{built['rss_after_mib']} MiB")
        if "platform" in figures:
            platform = figures["platform"]
            console.print(f"  through the platform: all searchable {platform['searchable_after_seconds']} s after "
                          f"the seed began; a new product searchable after {platform['freshness']['p50_s']} s "
                          f"(median of {platform['freshness']['samples']}), {platform['freshness']['max_s']} s at most")
    machine = report["machine"]
    console.print(f"[dim]{machine['cores']} cores ({machine['cpu']}), load before {machine['load_average_before']}; "
                  f"{report['command']}[/]")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="./dev bench search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=100_000, help="synthetic products (default 100000)")
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32],
                        help="comma-separated client counts (default 1,8,32)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per client count")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per client count")
    parser.add_argument("--engines", type=lambda s: s.split(","), default=["tantivy", "postgres"],
                        help="comma-separated: tantivy,postgres (default both)")
    parser.add_argument("--index-timeout", type=float, default=1800.0,
                        help="seconds to wait for the platform to index the catalog (default 1800)")
    parser.add_argument("--build-only", action="store_true", help="only the index build (no platform, no load)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this path")
    args = parser.parse_args(argv)
    if set(args.engines) - {"tantivy", "postgres"}:
        parser.error("engines are tantivy and postgres")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_report(BENCHMARK, parse_args(argv), run, print_report)


if __name__ == "__main__":
    sys.exit(main())
