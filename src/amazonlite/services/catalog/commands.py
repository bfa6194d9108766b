"""Edges of the catalog service outside HTTP: start-up, and the bulk loads of the command line."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import cast

from amazonlite.platform.errors import AppError
from amazonlite.platform.service import ServiceRuntime
from amazonlite.services.catalog import synthetic
from amazonlite.services.catalog.cache import ProductCache
from amazonlite.services.catalog.importing import Item, Line, Outcome, apply, batches, first_claims, validated
from amazonlite.services.catalog.settings import CatalogSettings
from amazonlite.services.catalog.taxonomy import ensure_categories


async def on_startup(runtime: ServiceRuntime) -> None:
    """The hot-product cache, unless its time to live is 0."""
    settings = cast(CatalogSettings, runtime.settings)
    runtime.state.product_cache = None
    if settings.product_cache_ttl_seconds > 0:
        runtime.state.product_cache = ProductCache.create(
            runtime.redis, prefix=runtime.platform.redis_prefix, ttl_seconds=settings.product_cache_ttl_seconds,
            max_local_entries=settings.product_cache_max_entries,
            timeout_seconds=settings.product_cache_timeout_ms / 1000)


async def import_lines(runtime: ServiceRuntime, tenant_id: str, lines: Iterable[Line], *, batch_size: int = 500,
                       progress: Callable[[int], None] = lambda _done: None) -> Outcome:
    """Import products a batch per transaction (`importing.apply`); a batch that meets a conflict
    only while writing is written again a line per transaction, so that one bad line costs only
    itself. `progress` hears how many lines each batch settled."""
    outcome = Outcome()
    cache = runtime.state.product_cache
    claims: dict[str, int] = {}
    for batch in batches(lines, batch_size):
        checked: list[Item] = []
        for line in batch:
            item = validated(line)
            if isinstance(item, Item):
                checked.append(item)
            else:
                outcome.errors.append(item)
        items, taken = first_claims(checked, claims)
        outcome.errors += taken
        try:
            async with runtime.db.session(tenant_id=tenant_id) as session:
                outcome.add(await apply(session, items, cache=cache))
        except AppError:
            for item in items:
                try:
                    async with runtime.db.session(tenant_id=tenant_id) as session:
                        outcome.add(await apply(session, [item], cache=cache))
                except AppError as exc:
                    outcome.errors.append((item.number, exc.detail))
        progress(len(batch))
    outcome.errors.sort()
    return outcome


async def seed_products(runtime: ServiceRuntime, tenant_id: str, count: int, *, batch_size: int = 1000,
                        progress: Callable[[int], None] = lambda _done: None) -> Outcome:
    """`count` synthetic products (`synthetic.py`), after the categories they are filed under with
    their attribute definitions; a second run with the same count updates them, adds none."""
    async with runtime.db.session(tenant_id=tenant_id) as session:
        await ensure_categories(session, synthetic.CATEGORIES)
    lines = (Line(number, product) for number, product in enumerate(synthetic.products(count), start=1))
    return await import_lines(runtime, tenant_id, lines, batch_size=batch_size, progress=progress)
