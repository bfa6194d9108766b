"""The `amazonlite` command line."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from amazonlite.platform.config import platform_settings
from amazonlite.platform.errors import AppError
from amazonlite.platform.logging import configure_logging
from amazonlite.platform.server import serve as serve_http
from amazonlite.platform.tenancy import DEFAULT_TENANT, validate_tenant_id
from amazonlite.topology import SERVICE_ENV, SERVICE_NAMES, UPSTREAMS_ENV, build_runtime, load_service

app = typer.Typer(help="Amazon Lite: an e-commerce platform built as Python microservices.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
tenants_app = typer.Typer(help="Tenants: list them, suspend or reactivate one.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead letters: events a consumer could not apply.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys of personal data at rest.", no_args_is_help=True)
contracts_app = typer.Typer(help="Event contracts: JSON Schemas and the catalogue.", no_args_is_help=True)
catalog_app = typer.Typer(help="The catalog: bulk import of products.", no_args_is_help=True)
search_app = typer.Typer(help="The search index.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(tenants_app, name="tenants")
app.add_typer(dlq_app, name="dlq")
app.add_typer(keys_app, name="keys")
app.add_typer(contracts_app, name="contracts")
app.add_typer(catalog_app, name="catalog")
app.add_typer(search_app, name="search")
console = Console(stderr=True)

@app.callback()
def _configure_process() -> None:
    """Every command logs as the servers do: JSON lines (or console lines with AMAZONLITE_LOG_JSON=false)."""
    settings = platform_settings()
    configure_logging("amazonlite", level=settings.log_level, json=settings.log_json)


ServiceArg = Annotated[str, typer.Argument(help=f"One of: {', '.join(SERVICE_NAMES)}")]
Host = Annotated[str, typer.Option(help="Interface to listen on")]
DataDir = Annotated[Path | None, typer.Option(help="Where the embedded topology keeps its SQLite files")]


def _use_data_dir(data_dir: Path | None) -> None:
    if data_dir is not None:
        os.environ["AMAZONLITE_DATA_DIR"] = str(data_dir)
        platform_settings.cache_clear()


def _check_service(name: str) -> str:
    if name not in SERVICE_NAMES:
        raise typer.BadParameter(f"unknown service {name!r}; known: {', '.join(SERVICE_NAMES)}")
    return name


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                    transient=not console.is_terminal)


def _migrate(names: list[str], *, create_databases: bool = False) -> None:
    from amazonlite.platform.migrations import MissingDatabase, create_database, upgrade

    platform = platform_settings()
    with _progress() as progress:
        for name in names:
            task = progress.add_task(f"Migrating {name}", total=None)
            module = load_service(name)
            url = module.settings().resolved_database_url(platform)
            if create_databases and create_database(url):
                console.print(f"Created the database of {name}")
            try:
                upgrade(name, module.migrations, url)
            except MissingDatabase as exc:
                progress.stop()
                console.print(f"[red]Cannot migrate:[/] {exc}. Create it with `amazonlite migrate --create-databases` "
                              f"(the database role needs CREATEDB), or as its owner: "
                              f"CREATE DATABASE {exc.database};")
                raise typer.Exit(2) from exc
            progress.update(task, description=f"Migrated {name}", completed=1, total=1)


def _refuse_demo_in_production() -> None:
    from amazonlite.platform.config import Environment

    if platform_settings().environment is Environment.PRODUCTION:
        console.print("[red]Refusing to load demo data (accounts with known passwords) in production.[/]")
        raise typer.Exit(1)


def _seed(tenant: str) -> None:
    from amazonlite.topology import seed

    with _progress() as progress:
        task = progress.add_task(f"Loading demo data into tenant {tenant!r}", total=None)
        asyncio.run(seed(SERVICE_NAMES, platform_settings(), tenant))
        progress.update(task, description=f"Demo data ready in tenant {tenant!r}", completed=1, total=1)


@app.command()
def up(
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the gateway")] = 8000,
    data_dir: DataDir = None,
    demo: Annotated[bool, typer.Option(help="Load the demo data (idempotent)")] = True,
) -> None:
    """Start the whole platform in one process (embedded topology): migrate, seed, serve."""
    _use_data_dir(data_dir)
    if demo:
        _refuse_demo_in_production()
    _migrate(list(SERVICE_NAMES))
    if demo:
        _seed(DEFAULT_TENANT)
    _print_welcome(host, port, demo)
    serve_http("amazonlite.topology:embedded_app", host=host, port=port)


def _print_welcome(host: str, port: int, demo: bool) -> None:
    base = f"http://{host}:{port}"
    console.print(f"[bold green]Amazon Lite[/] is starting on {base}")
    console.print(f"  API docs: {base}/docs    API: {base}/api/v1    health: {base}/health/ready")
    if demo:
        from amazonlite.services.auth.app import DEMO_ACCOUNTS

        for account in DEMO_ACCOUNTS:
            console.print(f"  demo {account.role}: {account.email} / {account.password}")


def _require_distributed() -> None:
    from amazonlite.topology import MisconfiguredProcess, require_distributed_settings

    try:
        require_distributed_settings(platform_settings())
    except MisconfiguredProcess as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc


@app.command()
def serve(
    service: ServiceArg,
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of this service")] = 8001,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
    migrate: Annotated[bool, typer.Option(help="Run this service's migrations first")] = True,
) -> None:
    """Run one service as its own process (distributed topology)."""
    _check_service(service)
    _require_distributed()
    if migrate:
        _migrate([service])
    os.environ[SERVICE_ENV] = service
    serve_http("amazonlite.topology:service_app", host=host, port=port, workers=workers)


@app.command()
def gateway(
    upstream: Annotated[list[str], typer.Option(help="SERVICE=URL, once per service")],
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the gateway")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
) -> None:
    """Run the gateway alone, proxying to services at the given URLs."""
    _require_distributed()
    for item in upstream:
        name, sep, url = item.partition("=")
        if not sep or not url:
            raise typer.BadParameter(f"expected SERVICE=URL, got {item!r}")
        _check_service(name)
    os.environ[UPSTREAMS_ENV] = ",".join(upstream)
    serve_http("amazonlite.topology:gateway_app", host=host, port=port, workers=workers)


@app.command()
def migrate(service: Annotated[str | None, typer.Argument(help="One service; all when omitted")] = None,
            create_databases: Annotated[bool, typer.Option(
                help="Create each PostgreSQL/MySQL database that does not exist yet")] = False,
            data_dir: DataDir = None) -> None:
    """Upgrade databases to the newest migration."""
    _use_data_dir(data_dir)
    _migrate([_check_service(service)] if service else list(SERVICE_NAMES), create_databases=create_databases)


@app.command("seed")
def seed_command(tenant: Annotated[str, typer.Option(help="Tenant to load the demo data into")] = DEFAULT_TENANT,
                 products: Annotated[int, typer.Option(min=0, help=(
                     "Also generate this many synthetic products (for benchmarks); a second run with the "
                     "same number updates them"))] = 0,
                 data_dir: DataDir = None) -> None:
    """Load the demo catalog and demo accounts (idempotent), and optionally a synthetic catalog."""
    _use_data_dir(data_dir)
    validate_tenant_id(tenant)
    _refuse_demo_in_production()
    _migrate(list(SERVICE_NAMES))
    _seed(tenant)
    if products:
        from amazonlite.services.catalog.commands import seed_products

        _load_products(f"Generating {products} products", products, tenant,
                       lambda runtime, progress: seed_products(runtime, tenant, products, progress=progress))


@catalog_app.command("import")
def catalog_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help=(
        "A .jsonl/.ndjson file (a product per line) or a .csv file (a variant per row, grouped by handle)"))],
    tenant: Annotated[str, typer.Option(help="Tenant to load the products into")] = DEFAULT_TENANT,
    batch_size: Annotated[int, typer.Option(min=1, max=5000, help="Products per transaction")] = 500,
    data_dir: DataDir = None,
) -> None:
    """Load products from a file: new SKUs are created, known ones updated; bad lines are reported
    with their line numbers and the rest load. Exits 1 when a line was left out."""
    from amazonlite.services.catalog.commands import import_lines
    from amazonlite.services.catalog.importing import UnsupportedFile, count_products, read_lines

    _use_data_dir(data_dir)
    validate_tenant_id(tenant)
    _migrate(["catalog"])
    try:
        total = count_products(file)
    except UnsupportedFile as exc:
        console.print(f"[red]Cannot import:[/] {exc}")
        raise typer.Exit(2) from exc
    outcome: list[Any] = []

    async def load(runtime: Any, progress: Any) -> Any:
        result = await import_lines(runtime, tenant, read_lines(file), batch_size=batch_size, progress=progress)
        outcome.append(result)
        return result

    _load_products(f"Importing {file.name}", total, tenant, load)
    if outcome and outcome[0].errors:
        raise typer.Exit(1)


@users_app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The admin's email")],
    password: Annotated[str, typer.Option(help="The admin's password", prompt=True, hide_input=True)],
    tenant: Annotated[str, typer.Option(help="Tenant of the account")] = DEFAULT_TENANT,
    name: Annotated[str, typer.Option(help="Display name")] = "Administrator",
    data_dir: DataDir = None,
) -> None:
    """Create an admin (or make an existing account one), and its tenant when new. In the `default`
    tenant the account administers the platform; in any other tenant, that tenant only."""
    from amazonlite.services.auth.commands import create_admin as create
    from amazonlite.services.tenants.commands import ensure_tenant

    _use_data_dir(data_dir)
    validate_tenant_id(tenant)
    _migrate(["tenants", "auth"])

    async def go() -> uuid.UUID:
        await _with_runtime("tenants", lambda rt: ensure_tenant(rt, tenant))

        return await _with_runtime("auth", lambda runtime: create(  # type: ignore[return-value]
            runtime, tenant_id=tenant, email=email, password=password, name=name))

    try:
        user_id = asyncio.run(go())
    except Exception as exc:
        detail = getattr(exc, "detail", None) or str(exc)
        console.print(f"[red]Could not create the admin:[/] {detail}")
        raise typer.Exit(1) from exc
    kind = "Platform admin" if tenant == DEFAULT_TENANT else "Tenant admin"
    console.print(f"{kind} {email} in tenant {tenant!r}: user id {user_id}")


TenantArg = Annotated[str, typer.Argument(help="The tenant's id")]


@tenants_app.command("list")
def tenants_list(data_dir: DataDir = None) -> None:
    """List every tenant with its status."""
    from amazonlite.services.tenants.commands import all_tenants

    _use_data_dir(data_dir)
    _migrate(["tenants"])
    table = Table("id", "name", "status", "currency", "created")
    for tenant in asyncio.run(_with_runtime("tenants", all_tenants)):  # type: ignore[attr-defined]
        table.add_row(tenant.id, tenant.name, tenant.status, tenant.currency,
                      tenant.created_at.isoformat(timespec="seconds"))
    Console().print(table)


def _set_tenant_status(tenant: str, status: Literal["active", "suspended"], data_dir: Path | None) -> None:
    from amazonlite.services.tenants.commands import set_status

    _use_data_dir(data_dir)
    try:
        validate_tenant_id(tenant)
        _migrate(["tenants"])
        asyncio.run(_with_runtime("tenants", lambda rt: set_status(rt, tenant, status)))
    except AppError as exc:
        console.print(f"[red]{exc.detail}[/]")
        raise typer.Exit(1) from exc
    console.print(f"Tenant {tenant!r} is {status}; the gateway admits or refuses it within its tenant cache's "
                  "lifetime (AMAZONLITE_GATEWAY_TENANT_CACHE_SECONDS)")


@tenants_app.command("activate")
def tenants_activate(tenant: TenantArg, data_dir: DataDir = None) -> None:
    """Reactivate a suspended tenant (works when nobody can sign in to do it through the API)."""
    _set_tenant_status(tenant, "active", data_dir)


@tenants_app.command("suspend")
def tenants_suspend(tenant: TenantArg, data_dir: DataDir = None) -> None:
    """Suspend a tenant: the gateway refuses its requests. The `default` tenant cannot be suspended."""
    _set_tenant_status(tenant, "suspended", data_dir)


def _consumer_runtimes(service: str | None) -> list[str]:
    names = [_check_service(service)] if service else list(SERVICE_NAMES)
    return [n for n in names if load_service(n).handlers.subscriptions]


async def _with_runtime(name: str, work: object, *, with_redis: bool = False) -> object:
    """Run `work` with the service's runtime as it is once started (its on-startup work done: what
    its handlers and commands read, such as key rings), without serving or consuming. `with_redis`:
    with the platform's Redis when it has one (the caches a write must empty live there)."""
    from amazonlite.platform.bus.memory import InProcessTransport
    from amazonlite.platform.revocation import MemoryRevocationStore
    from amazonlite.topology import make_redis

    redis = make_redis(platform_settings()) if with_redis else None
    runtime = build_runtime(name, platform_settings(), transport=InProcessTransport(),
                            revocations=MemoryRevocationStore(), redis=redis)
    try:
        if runtime.module.on_startup is not None:
            await runtime.module.on_startup(runtime)
        return await work(runtime)  # type: ignore[operator]
    finally:
        await runtime.db.dispose()
        if redis is not None:
            await redis.aclose()


def _load_products(description: str, total: int, tenant: str, load: Any) -> None:
    """Run a bulk load of the catalog with a progress bar, then report what it did and its bad lines."""
    from rich.progress import BarColumn, MofNCompleteColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=not console.is_terminal) as progress:
        task = progress.add_task(description, total=total)
        outcome = asyncio.run(_with_runtime("catalog", lambda runtime: load(
            runtime, lambda done: progress.advance(task, done)), with_redis=True))
    for number, problem in outcome.errors[:50]:  # type: ignore[attr-defined]
        console.print(f"[yellow]line {number}:[/] {problem}")
    errors = len(outcome.errors)  # type: ignore[attr-defined]
    if errors > 50:
        console.print(f"[yellow]… and {errors - 50} more bad lines[/]")
    console.print(f"Tenant {tenant!r}: {outcome.created} products created, {outcome.updated} updated, "  # type: ignore[attr-defined]
                  f"{outcome.unchanged} unchanged, {errors} bad lines left out")  # type: ignore[attr-defined]


@dlq_app.command("list")
def dlq_list(service: Annotated[str | None, typer.Option(help="Only this service's dead letters")] = None,
             all_: Annotated[bool, typer.Option("--all", help="Include replayed ones")] = False,
             data_dir: DataDir = None) -> None:
    """List dead letters (oldest first)."""
    _use_data_dir(data_dir)
    table = Table("id", "consumer", "topic", "tenant", "attempts", "created", "replayed", "error")
    for name in _consumer_runtimes(service):
        rows = asyncio.run(_with_runtime(name, lambda rt: rt.consumer.dead_letters(include_replayed=all_)))
        for row in rows:  # type: ignore[attr-defined]
            table.add_row(str(row.id), row.consumer, row.topic, row.tenant_id, str(row.attempts),
                          row.created_at.isoformat(timespec="seconds"),
                          row.replayed_at.isoformat(timespec="seconds") if row.replayed_at else "",
                          row.error.splitlines()[0][:80] if row.error else "")
    Console().print(table)


@dlq_app.command("replay")
def dlq_replay(
    service: Annotated[str | None, typer.Option(help="Only this service's dead letters")] = None,
    id_: Annotated[list[uuid.UUID] | None, typer.Option("--id", help="A dead letter to replay")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every pending dead letter")] = False,
    data_dir: DataDir = None,
) -> None:
    """Deliver dead letters again to their consumer (each at most once in effect, through the inbox)."""
    _use_data_dir(data_dir)
    if not id_ and not all_:
        raise typer.BadParameter("give --id ID (repeatable) or --all")
    failures = 0
    for name in _consumer_runtimes(service):
        async def work(runtime: object) -> list[tuple[str, str]]:
            consumer = runtime.consumer  # type: ignore[attr-defined]
            pending = [row.id for row in await consumer.dead_letters(limit=10_000)]
            wanted = [i for i in pending if not id_ or i in id_]
            results = []
            for dead_letter_id in wanted:
                try:
                    results.append((str(dead_letter_id), await consumer.replay(dead_letter_id)))
                except Exception as exc:
                    results.append((str(dead_letter_id), f"failed: {exc}"))
            return results

        for dead_letter_id, outcome in asyncio.run(_with_runtime(name, work)):  # type: ignore[attr-defined]
            failures += outcome.startswith("failed")
            console.print(f"{name} {dead_letter_id}: {outcome}")
    if failures:
        raise typer.Exit(1)


@keys_app.command("rotate")
def keys_rotate(batch_size: Annotated[int, typer.Option(min=1, help="Rows per transaction")] = 500,
                data_dir: DataDir = None) -> None:
    """Re-encrypt personal data not yet under the active key (AMAZONLITE_USERS_PII_ACTIVE_KEY).

    Safe while the platform runs: readers accept every key in the ring. Run it until it rewrites 0
    rows, then the old key can leave the ring."""
    from amazonlite.services.users.commands import rotate_pii_keys

    _use_data_dir(data_dir)
    _migrate(["users"])
    rewritten = asyncio.run(_with_runtime("users", lambda rt: rotate_pii_keys(rt, batch_size=batch_size)))
    console.print(f"Re-encrypted {rewritten} rows under the active key")


@contracts_app.command("export")
def contracts_export(check: Annotated[bool, typer.Option(help="Only check; fail when stale")] = False) -> None:
    """Write the contracts' JSON Schemas and the event catalogue (docs/events.md)."""
    from amazonlite.docsgen import export

    result = export(check=check)
    for name, problems in result.breaking.items():
        console.print(f"[red]{name}: breaking change to a published contract:[/] {'; '.join(problems)}"
                      " — publish a new version on a new topic instead")
    if result.breaking:
        raise typer.Exit(1)
    if check and result.stale:
        for path in result.stale:
            console.print(f"[red]stale:[/] {path} — run `amazonlite contracts export`")
        raise typer.Exit(1)
    for path in result.written:
        console.print(f"wrote {path}")


@search_app.command("reindex")
def search_reindex(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's index; every tenant's when omitted")] = None,
    data_dir: DataDir = None,
) -> None:
    """Empty the search index and build it again from the catalog (read in-process from the catalog's
    database, as its listing API answers). With the tantivy engine the index belongs to one replica:
    run this where it lives, with the replica stopped (or delete its index directory and start it:
    a replica rebuilds an empty index itself)."""
    _use_data_dir(data_dir)
    if tenant is not None:
        validate_tenant_id(tenant)
    _migrate(["tenants", "catalog", "search"])
    try:
        done = asyncio.run(_reindex(tenant))
    except Exception as exc:
        console.print(f"[red]Could not rebuild the index:[/] {exc}")
        raise typer.Exit(1) from exc
    for name, count in done.items():
        console.print(f"Tenant {name!r}: {count} products indexed")


async def _reindex(tenant: str | None) -> dict[str, int]:
    from amazonlite.platform.bus.memory import InProcessTransport
    from amazonlite.platform.revocation import MemoryRevocationStore
    from amazonlite.platform.service import create_service_app
    from amazonlite.services.search.commands import open_engine, reindex

    platform = platform_settings()
    runtimes = {name: build_runtime(name, platform, transport=InProcessTransport(),
                                    revocations=MemoryRevocationStore(), redis=None)
                for name in ("tenants", "catalog", "search")}
    search = runtimes["search"]
    try:
        for name in ("tenants", "catalog"):
            runtime = runtimes[name]
            if runtime.module.on_startup is not None:
                await runtime.module.on_startup(runtime)
            search.services.register(name, app=create_service_app(runtime, own_lifespan=False))
        search.state.index = await open_engine(search)
        try:
            return await reindex(search, [tenant] if tenant else None)
        finally:
            await search.state.index.close()
    finally:
        await search.services.aclose()
        for runtime in runtimes.values():
            await runtime.db.dispose()


def main() -> None:  # pragma: no cover - entry point
    app(prog_name="amazonlite")


if __name__ == "__main__":  # pragma: no cover
    main()
