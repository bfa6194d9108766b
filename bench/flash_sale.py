"""Flash sale: reservations per second through inventory's real reservation path, against the
ceiling of a plain SQL reservation transaction, on PostgreSQL.

    ./dev bench flash-sale [--duration 5] [--runs 1] [--reservers 1,8,32] [--skus 10000] [--json PATH]

In one run, on one machine, in a fresh PostgreSQL database (created, then dropped):

1. migrate the inventory service into it; teach it one hot SKU and `--skus` others (as the catalog's
   `product.updated.v1` would), and stock each with plenty of units in `default`;
2. the ceiling: `pgbench` runs a two-statement reservation transaction (`UPDATE stock SET qty = qty -
   1 WHERE sku = … AND qty > 0` + `INSERT INTO reservation`), prepared statements, on a table of its
   own, with 1, 8 and 32 clients;
3. the subject: 1, 8 and 32 concurrent reservers in this process, each publishing `order.created.v1`
   events of one unit, one after another, each waiting until inventory has applied its event. The
   events reach inventory's consumer as the Kafka transport hands them over: what waits when the
   consumer fetches (up to the transport's 500 records) in one delivery (`Consumer.deliver_many`),
   the next fetch once it is applied. A run of them is one unit of work: the inbox, the
   reservations, their ledger entries and `inventory.reserved.v1` in the outbox, the stock taken once
   per row, redone if it loses a race. After each warm-up the tables are analysed, as PostgreSQL's
   autovacuum would within a minute of the tables growing;
4. both on one hot SKU, then spread over the `--skus` SKUs; ceiling and subject alternate which goes
   first in each run, so that drift hits both;
5. a sell-out: 32 reservers deliver four times as many orders as a SKU has units; then, for every
   phase, check that the units held are min(orders, stock) and that nothing is oversold (available
   never below zero, the ledger's sums equal to the stock);
6. print the medians and the ratio subject/ceiling, with the machine, and write them as JSON to
   bench/results/ (and `--json PATH`).

The subject's client is in the same process as the code it measures (there is no network hop in a
consumer): the Python that builds the events is inside its figure. It runs on the event loop the
services run on: uvloop when installed (uvicorn's `loop="auto"`, which hosts each service's
consumer), else asyncio's; `--loop asyncio` measures on asyncio's loop. The outbox relay is not running,
so the published events stay in the outbox (they are counted there).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO / "src"), str(REPO), str(BENCH)]

import asyncpg  # noqa: E402
from run import BenchError, console, describe_machine, save_report  # noqa: E402

BENCHMARK = "flash_sale"
TENANT = "bench"
HOT = "HOT-SKU-1"
PLENTY = 100_000_000
SELL_OUT_UNITS = 500
GOAL = 0.5
FETCH_MAX_RECORDS = 500  # the Kafka transport's records per fetch
ADMIN_URL = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")

PGBENCH_SETUP = """
CREATE TABLE bench_stock (sku integer PRIMARY KEY, qty bigint NOT NULL CHECK (qty >= 0));
CREATE TABLE bench_reservation (id bigserial PRIMARY KEY, order_id uuid NOT NULL, sku integer NOT NULL,
                                qty integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO bench_stock (sku, qty) SELECT s, {plenty} FROM generate_series(0, {skus}) AS s;
"""
PGBENCH_SCRIPT = """\\set sku {choose}
BEGIN;
UPDATE bench_stock SET qty = qty - 1 WHERE sku = :sku AND qty > 0;
INSERT INTO bench_reservation (order_id, sku, qty) VALUES (gen_random_uuid(), :sku, 1);
END;
"""


def _database_url(name: str, driver: str = "postgresql") -> str:
    return ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", f"{driver}://", 1) + f"/{name}"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


# ------------------------------------------------------------------------------------------- ceiling


def pgbench_binary() -> str:
    found = shutil.which("pgbench") or ("/usr/bin/pgbench" if Path("/usr/bin/pgbench").exists() else None)
    if not found:
        raise BenchError("pgbench is not installed (apt-get install postgresql-client)")
    return found


def run_pgbench(pgbench: str, database: str, script: Path, *, clients: int, seconds: float) -> float:
    url = _database_url(database)
    command = [pgbench, "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(clients, 2)),
               "-T", str(max(1, round(seconds))), "-f", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120, check=False)
    match = re.search(r"tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)",
                      done.stdout)
    if done.returncode != 0 or match is None:
        raise BenchError(f"pgbench failed: {done.stderr.strip() or done.stdout.strip()}")
    return float(match.group(1))


# ------------------------------------------------------------------------------------------- subject


class Subject:
    """Inventory's runtime on the bench database, fed `order.created.v1` through its consumer."""

    def __init__(self, url: str, pool_size: int) -> None:
        from amazonlite.platform.bus.memory import InProcessTransport
        from amazonlite.platform.config import Environment, PlatformSettings
        from amazonlite.platform.revocation import MemoryRevocationStore
        from amazonlite.platform.service import ServiceRuntime
        from amazonlite.services.inventory.app import SERVICE
        from amazonlite.services.inventory.settings import InventorySettings

        platform = PlatformSettings(environment=Environment.TEST, data_dir=Path(tempfile.gettempdir()),
                                    log_json=False, log_level="WARNING")
        self.runtime = ServiceRuntime(SERVICE, platform, transport=InProcessTransport(),
                                      revocations=MemoryRevocationStore(),
                                      settings=InventorySettings(database_url=url, database_pool_size=pool_size))
        self.template = self._template()

    @classmethod
    async def open(cls, url: str, pool_size: int) -> Subject:
        """A subject whose service has started as `amazonlite serve inventory` starts it (its
        on-startup work: the hold time its event handlers read), without serving HTTP."""
        subject = cls(url, pool_size)
        if subject.runtime.module.on_startup is not None:
            await subject.runtime.module.on_startup(subject.runtime)
        return subject

    @staticmethod
    def _template() -> str:
        from amazonlite.contracts import OrderCreatedV1
        from amazonlite.contracts.base import Money
        from amazonlite.contracts.orders import OrderLineV1, OrderTotalsV1
        from amazonlite.platform.events import Envelope

        money = Money(amount=1000, currency="INR")
        payload = OrderCreatedV1(
            order_id=uuid.UUID(int=1), customer_id=uuid.UUID(int=2),
            lines=[OrderLineV1(sku="@SKU@", quantity=1, unit_price=money)],
            totals=OrderTotalsV1(subtotal=money, discount=money, tax=money, shipping=money, total=money),
            payment_provider="sandbox", created_at=dt.datetime.now(dt.UTC))
        envelope = Envelope(event_id=uuid.UUID(int=3), event_type=OrderCreatedV1.event_type,
                            occurred_at=dt.datetime.now(dt.UTC), producer="orders", schema_version=1,
                            trace_id="0" * 32, correlation_id="bench", tenant_id=TENANT,
                            payload=payload.model_dump(mode="json"))
        return envelope.to_json().decode()

    def message(self, sku: str) -> Any:
        from amazonlite.platform.bus import Message

        order_id = str(uuid.uuid4())
        raw = (self.template.replace(str(uuid.UUID(int=1)), order_id).replace(str(uuid.UUID(int=3)),
                                                                              str(uuid.uuid4()))
               .replace("@SKU@", sku))
        return Message("order.created.v1", order_id.encode(), raw.encode())

    async def drive(self, reservers: int, seconds: float, choose: Any, *, orders: int | None = None) -> tuple[
            int, float]:
        """`reservers` concurrent publishers until `seconds` pass (or `orders` are published), each
        waiting for its event to be applied; how many were applied, and in how long."""
        deliver_many = self.runtime.consumer.deliver_many
        queue: asyncio.Queue[tuple[Any, asyncio.Future[None]]] = asyncio.Queue()
        published = 0
        stop_at = time.monotonic() + seconds

        async def consume() -> None:
            while True:
                waiting = [await queue.get()]
                while not queue.empty() and len(waiting) < FETCH_MAX_RECORDS:
                    waiting.append(queue.get_nowait())
                try:
                    await deliver_many([message for message, _done in waiting])
                except Exception as exc:
                    for _message, done in waiting:
                        done.set_exception(exc)
                else:
                    for _message, done in waiting:
                        done.set_result(None)

        async def reserver() -> None:
            nonlocal published
            while time.monotonic() < stop_at and (orders is None or published < orders):
                published += 1
                done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                await queue.put((self.message(choose()), done))
                await done

        consumer = asyncio.create_task(consume())
        started = time.monotonic()
        try:
            await asyncio.gather(*(reserver() for _ in range(reservers)))
        finally:
            consumer.cancel()
        return published, time.monotonic() - started


async def prepare_inventory(url: str, skus: int) -> None:
    """Migrate, teach inventory the SKUs through its consumer (`product.updated.v1`), then stock them
    in bulk (setup, not measured) with the ledger entries that account for it."""
    from amazonlite.contracts import ProductUpdatedV1
    from amazonlite.contracts.base import Money
    from amazonlite.contracts.catalog import ProductVariantV1
    from amazonlite.platform.migrations import upgrade
    from amazonlite.services.inventory.app import SERVICE

    await asyncio.to_thread(upgrade, SERVICE.name, SERVICE.migrations, url)
    subject = await Subject.open(url, 4)
    names = [HOT, *(f"SPREAD-{n:05d}" for n in range(skus))]
    price = Money(amount=1000, currency="INR")
    from amazonlite.platform.bus import Message
    from amazonlite.platform.events import Envelope

    for start in range(0, len(names), 100):
        event = ProductUpdatedV1(
            product_id=uuid.uuid4(), name="Bench", slug="bench", description="", status="active", brand_id=None,
            brand_name=None, category_id=None, category_name=None, attributes={},
            variants=[ProductVariantV1(sku=s, name=s, options={}, price=price) for s in names[start:start + 100]],
            updated_at=dt.datetime.now(dt.UTC))
        envelope = Envelope(event_id=uuid.uuid4(), event_type=event.event_type, occurred_at=dt.datetime.now(dt.UTC),
                            producer="catalog", schema_version=1, trace_id="0" * 32, correlation_id="bench",
                            tenant_id=TENANT, payload=event.model_dump(mode="json"))
        await subject.runtime.consumer.deliver(Message(event.event_type, b"p", envelope.to_json()))
    await subject.runtime.db.dispose()
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=10)
    try:
        await conn.execute("""
            INSERT INTO stock (id, tenant_id, sku, warehouse, on_hand, reserved)
            SELECT gen_random_uuid(), $1, sku, 'default', $2, 0 FROM skus WHERE tenant_id = $1;
            INSERT INTO ledger (id, tenant_id, sku, warehouse, kind, on_hand_delta, reserved_delta, reason, created_at)
            SELECT gen_random_uuid(), $1, sku, 'default', 'set', $2, 0, 'bench', now() FROM skus WHERE tenant_id = $1;
            ANALYZE;
        """.replace("$1", f"'{TENANT}'").replace("$2", str(PLENTY)))
    finally:
        await conn.close()


async def analyse(url: str) -> None:
    """Fresh planner statistics for tables that grew since the last (autovacuum's job, within a
    minute of the growth, in a running system; a 5-second run is over before it)."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=10)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def check_stock(url: str, *, sku: str | None = None) -> dict[str, Any]:
    """Held units against the reservations answered, and the invariants, from the tables."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=10)
    try:
        where = "" if sku is None else f" AND sku = '{sku}'"
        held = await conn.fetchval(f"SELECT coalesce(sum(reserved), 0) FROM stock WHERE tenant_id = '{TENANT}'{where}")
        negative = await conn.fetchval(
            f"SELECT count(*) FROM stock WHERE tenant_id = '{TENANT}' AND (on_hand - reserved < 0 OR reserved < 0)")
        mismatched = await conn.fetchval(f"""
            SELECT count(*) FROM stock s LEFT JOIN (
                SELECT sku, warehouse, sum(on_hand_delta) AS on_hand, sum(reserved_delta) AS reserved
                FROM ledger WHERE tenant_id = '{TENANT}' GROUP BY sku, warehouse) l
              ON l.sku = s.sku AND l.warehouse = s.warehouse
            WHERE s.tenant_id = '{TENANT}' AND (l.on_hand IS DISTINCT FROM s.on_hand
                                                  OR l.reserved IS DISTINCT FROM s.reserved)""")
        reserved_events = await conn.fetchval("SELECT count(*) FROM outbox WHERE topic = 'inventory.reserved.v1'")
        rejected_events = await conn.fetchval("SELECT count(*) FROM outbox WHERE topic = 'inventory.rejected.v1'")
        dead = await conn.fetchval("SELECT count(*) FROM dead_letters")
    finally:
        await conn.close()
    return {"held_units": int(held), "rows_below_zero": int(negative), "ledger_mismatches": int(mismatched),
            "reserved_events": int(reserved_events), "rejected_events": int(rejected_events),
            "dead_letters": int(dead)}


async def sell_out(url: str) -> dict[str, Any]:
    """32 reservers, 4 x SELL_OUT_UNITS orders of one unit for a SKU with SELL_OUT_UNITS units."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=10)
    sku = "SPREAD-00000"
    try:
        before = await conn.fetchrow(f"SELECT on_hand, reserved FROM stock WHERE tenant_id = '{TENANT}' AND sku = $1",
                                     sku)
        units = SELL_OUT_UNITS
        # Leave exactly `units` available, through the ledger as an admin's adjustment would.
        delta = units - (before["on_hand"] - before["reserved"])
        await conn.execute(f"UPDATE stock SET on_hand = on_hand + {delta} WHERE tenant_id = '{TENANT}' AND sku = $1",
                           sku)
        await conn.execute(
            "INSERT INTO ledger (id, tenant_id, sku, warehouse, kind, on_hand_delta, reserved_delta, reason, "
            f"created_at) VALUES (gen_random_uuid(), '{TENANT}', $1, 'default', 'adjust', {delta}, 0, 'bench', now())",
            sku)
        held_before = before["reserved"]
    finally:
        await conn.close()
    subject = await Subject.open(url, 4)
    try:
        orders = 4 * units
        delivered, _ = await subject.drive(32, 600, lambda: sku, orders=orders)
    finally:
        await subject.runtime.db.dispose()
    after = await check_stock(url, sku=sku)
    held = after["held_units"] - held_before
    return {"orders": delivered, "units": units, "held": held, "oversold": max(0, held - min(delivered, units)),
            "undersold": max(0, min(delivered, units) - held), **{k: v for k, v in after.items() if k != "held_units"}}


# ------------------------------------------------------------------------------------------ the run


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="./dev bench flash-sale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run (default 5)")
    parser.add_argument("--runs", type=int, default=1, help="runs per target and point (default 1); medians")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per target (default 1)")
    parser.add_argument("--reservers", default="1,8,32", help="concurrent reservers (default 1,8,32)")
    parser.add_argument("--skus", type=int, default=10_000, help="SKUs of the spread scenario (default 10000)")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON report here")
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                        help="the event loop (default auto: uvloop when installed, as the services' uvicorn)")
    args = parser.parse_args(argv)
    args.reservers = [int(n) for n in str(args.reservers).split(",") if n.strip()]
    if args.duration <= 0 or args.runs < 1 or not args.reservers or min(args.reservers) < 1 or args.skus < 1:
        parser.error("--duration, --runs, --reservers and --skus must be positive")
    return args


async def measure(args: argparse.Namespace, url: str, database: str, pgbench: str, workdir: Path
                  ) -> list[dict[str, Any]]:
    scripts = {
        "hot": workdir / "hot.sql",
        "spread": workdir / "spread.sql",
    }
    scripts["hot"].write_text(PGBENCH_SCRIPT.format(choose="0"))
    scripts["spread"].write_text(PGBENCH_SCRIPT.format(choose=f"random(1, {args.skus})"))
    spread_names = [f"SPREAD-{n:05d}" for n in range(args.skus)]
    choosers = {"hot": lambda: HOT, "spread": lambda: random.choice(spread_names)}
    rows: list[dict[str, Any]] = []
    for scenario in ("hot", "spread"):
        for reservers in args.reservers:
            subject = await Subject.open(url, 4)
            try:
                await subject.drive(reservers, args.warmup, choosers[scenario])
                await asyncio.to_thread(run_pgbench, pgbench, database, scripts[scenario], clients=reservers,
                                        seconds=args.warmup)
                await analyse(url)
                subject_rates: list[float] = []
                ceiling_rates: list[float] = []
                for run in range(args.runs):
                    order = ("ceiling", "subject") if run % 2 == 0 else ("subject", "ceiling")
                    for target in order:
                        if target == "ceiling":
                            ceiling_rates.append(await asyncio.to_thread(
                                run_pgbench, pgbench, database, scripts[scenario], clients=reservers,
                                seconds=args.duration))
                        else:
                            delivered, elapsed = await subject.drive(reservers, args.duration, choosers[scenario])
                            subject_rates.append(delivered / elapsed)
            finally:
                await subject.runtime.db.dispose()
            subject_median = statistics.median(subject_rates)
            ceiling_median = statistics.median(ceiling_rates)
            rows.append({
                "scenario": scenario, "reservers": reservers,
                "subject_per_second": round(subject_median, 1),
                "subject_range": [round(min(subject_rates), 1), round(max(subject_rates), 1)],
                "ceiling_per_second": round(ceiling_median, 1),
                "ceiling_range": [round(min(ceiling_rates), 1), round(max(ceiling_rates), 1)],
                "ratio": round(subject_median / ceiling_median, 3) if ceiling_median else None,
            })
            console.print(f"[dim]{scenario} × {reservers}: subject {subject_median:,.0f}/s, "
                          f"ceiling {ceiling_median:,.0f}/s[/]")
    return rows


async def run(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    pgbench = pgbench_binary()
    machine = describe_machine()
    database = f"bench_flash_{uuid.uuid4().hex[:10]}"
    try:
        await _admin(f'CREATE DATABASE "{database}"')
    except Exception as exc:
        raise BenchError(f"cannot create a PostgreSQL database at {ADMIN_URL}: {exc}") from exc
    url = _database_url(database, "postgresql+asyncpg")
    try:
        conn = await asyncpg.connect(_database_url(database), timeout=10)
        try:
            await conn.execute(PGBENCH_SETUP.format(plenty=PLENTY, skus=args.skus))
        finally:
            await conn.close()
        console.print(f"[dim]preparing {database}: {args.skus + 1} SKUs…[/]")
        await prepare_inventory(url, args.skus)
        with tempfile.TemporaryDirectory(prefix="flash-sale-") as workdir:
            rows = await measure(args, url, database, pgbench, Path(workdir))
        after_timed = await check_stock(url)
        conn = await asyncpg.connect(_database_url(database), timeout=10)
        try:
            ceiling_held = await conn.fetchval("SELECT count(*) FROM bench_reservation")
            ceiling_taken = await conn.fetchval(f"SELECT sum({PLENTY} - qty) FROM bench_stock")
        finally:
            await conn.close()
        sold_out = await sell_out(url)
    finally:
        with contextlib.suppress(Exception):
            await _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    timed = {
        **after_timed,
        "oversold": max(0, after_timed["held_units"] - after_timed["reserved_events"]),
        "ceiling_reservations": int(ceiling_held), "ceiling_units_taken": int(ceiling_taken or 0),
    }
    return {
        "benchmark": BENCHMARK,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "./dev bench flash-sale " + " ".join(argv),
        "settings": {"duration_s": args.duration, "runs": args.runs, "warmup_s": args.warmup,
                     "event_loop": args.loop,
                     "reservers": args.reservers, "spread_skus": args.skus,
                     "subject": "inventory Consumer.deliver_many(order.created.v1), each fetch of what waits "
                                "(up to 500) in one delivery, as the Kafka transport does; one process, "
                                "asyncpg pool of 4 connections",
                     "ceiling": "pgbench -M prepared, -j min(clients, 2): UPDATE … WHERE qty > 0 + INSERT reservation",
                     "postgres": ADMIN_URL.rsplit("@", 1)[-1]},
        "machine": machine,
        "results": rows,
        "verification": {"timed_runs": timed, "sell_out": sold_out},
        "goal": f"ratio >= {GOAL} at 8 reservers on one hot SKU, 0 oversold (PERFORMANCE.md)",
    }


def results_table(report: dict[str, Any]) -> Table:
    table = Table(title="Flash sale: reservations per second (subject / ceiling)")
    for column in ("scenario", "reservers", "inventory (consumer)", "ceiling (pgbench)", "ratio"):
        table.add_column(column, justify="right" if column not in ("scenario",) else "left")
    for row in report["results"]:
        ratio = row["ratio"]
        mark = "" if ratio is None else ("[green]" if ratio >= GOAL else "[yellow]")
        table.add_row(row["scenario"], str(row["reservers"]), f"{row['subject_per_second']:,.0f}",
                      f"{row['ceiling_per_second']:,.0f}", f"{mark}{ratio}")
    return table


def print_report(report: dict[str, Any]) -> None:
    machine = report["machine"]
    console.print(results_table(report))
    verification = report["verification"]
    timed, sold = verification["timed_runs"], verification["sell_out"]
    console.print(f"timed runs: {timed['reserved_events']:,} reservations, {timed['held_units']:,} units held, "
                  f"oversold {timed['oversold']}, rows below zero {timed['rows_below_zero']}, ledger mismatches "
                  f"{timed['ledger_mismatches']}, dead letters {timed['dead_letters']}")
    console.print(f"sell-out: {sold['orders']:,} orders for {sold['units']} units → {sold['held']} held, "
                  f"oversold {sold['oversold']}, undersold {sold['undersold']}")
    console.print(f"[dim]machine: {machine['cores']} cores ({machine['cpu']}), {machine['python']}, load before "
                  f"{machine['load_average_before']}; event loop {report['settings']['event_loop']}; "
                  f"command: {report['command']}[/]")
    console.print(f"[dim]goal: {report['goal']}[/]")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    from amazonlite.platform.logging import configure_logging

    configure_logging("bench", level="WARNING", json=False)
    runner, args.loop = event_loop(args.loop)
    try:
        report = runner(run(args, argv))
    except BenchError as exc:
        console.print(f"[red bold]bench failed:[/] {exc}")
        return 1
    except KeyboardInterrupt:
        console.print("[red]interrupted; the bench database was dropped[/]")
        return 130
    print_report(report)
    save_report(BENCHMARK, report, args.json)
    ok = timed_ok(report)
    return 0 if ok else 2


def event_loop(choice: str) -> tuple[Any, str]:
    """How to run the bench (`runner(coroutine)`) and the name of its loop: the services' own
    (uvicorn's `loop="auto"` takes uvloop when it is installed), or the one asked for."""
    if choice in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise BenchError("uvloop is not installed") from None
        else:
            return uvloop.run, "uvloop"
    return asyncio.run, "asyncio"


def timed_ok(report: dict[str, Any]) -> bool:
    timed, sold = report["verification"]["timed_runs"], report["verification"]["sell_out"]
    return not (timed["oversold"] or timed["rows_below_zero"] or timed["ledger_mismatches"] or sold["oversold"]
                or sold["undersold"])


if __name__ == "__main__":
    sys.exit(main())
