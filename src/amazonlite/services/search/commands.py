"""Edges of the search service outside HTTP: its engine's start and stop, the rebuild of an empty
index, its readiness, and `amazonlite search reindex`."""

from __future__ import annotations

import asyncio
import contextlib
from typing import cast

import structlog

from amazonlite.platform.service import ServiceRuntime
from amazonlite.services.search import service
from amazonlite.services.search.engine.base import SearchEngine
from amazonlite.services.search.settings import SearchSettings

log = structlog.get_logger("amazonlite.search")


class EngineMisconfigured(RuntimeError):
    pass


async def open_engine(runtime: ServiceRuntime) -> SearchEngine:
    settings = cast(SearchSettings, runtime.settings)
    if settings.backend == "postgres":
        from amazonlite.services.search.engine.postgres_engine import PostgresSearchEngine

        if runtime.db.dialect != "postgresql":
            raise EngineMisconfigured("AMAZONLITE_SEARCH_BACKEND=postgres keeps the index in the search service's "
                                      "database: set AMAZONLITE_SEARCH_DATABASE_URL to a PostgreSQL database")
        engine = PostgresSearchEngine(runtime.db.engine)
        await engine.create_schema()
        return engine
    from amazonlite.services.search.engine.tantivy_engine import TantivySearchEngine

    directory = settings.index_path(runtime.platform)
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    return TantivySearchEngine(directory)


async def on_startup(runtime: ServiceRuntime) -> None:
    """Open the engine, and rebuild in the background the index of every tenant that has none."""
    settings = cast(SearchSettings, runtime.settings)
    runtime.state.index = await open_engine(runtime)
    runtime.state.rebuild = service.Rebuild()
    runtime.state.rebuilding = asyncio.create_task(service.rebuild_empty(
        runtime.state.index, runtime.services, runtime.state.rebuild, page_size=settings.rebuild_page_size),
        name="search.rebuild")


async def on_shutdown(runtime: ServiceRuntime) -> None:
    task: asyncio.Task[None] | None = getattr(runtime.state, "rebuilding", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    engine: SearchEngine | None = getattr(runtime.state, "index", None)
    if engine is not None:
        await engine.close()


async def checks(runtime: ServiceRuntime) -> dict[str, str]:
    """`index`: ok once every tenant's index is built; while a rebuild runs, not ready (a replica
    that would answer from an empty index is kept out of the rotation)."""
    rebuild: service.Rebuild | None = getattr(runtime.state, "rebuild", None)
    if rebuild is None or rebuild.state == "ok":
        return {"index": "ok"}
    why = f"rebuilding ({rebuild.tenants_done} tenants, {rebuild.products} products so far)"
    if rebuild.errors:
        why += f": waiting for {rebuild.errors[-1]}"
    return {"index": why}


async def reindex(runtime: ServiceRuntime, tenants: list[str] | None) -> dict[str, int]:
    """Empty the index of `tenants` (every tenant when None) and build it again from the catalog;
    the products indexed per tenant. The runtime's services must reach tenants and the catalog."""
    engine: SearchEngine = runtime.state.index
    names = tenants if tenants is not None else await service.tenants(runtime.services)
    settings = cast(SearchSettings, runtime.settings)
    done: dict[str, int] = {}
    for tenant_id in names:
        await engine.clear(tenant_id)
        done[tenant_id] = await service.rebuild_tenant(engine, runtime.services, tenant_id,
                                                       page_size=settings.rebuild_page_size)
        log.info("search.tenant_reindexed", tenant_id=tenant_id, products=done[tenant_id])
    return done
