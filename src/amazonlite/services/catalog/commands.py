"""Edges of the catalog service outside HTTP: start-up."""

from __future__ import annotations

from typing import cast

from amazonlite.platform.service import ServiceRuntime
from amazonlite.services.catalog.cache import ProductCache
from amazonlite.services.catalog.settings import CatalogSettings


async def on_startup(runtime: ServiceRuntime) -> None:
    """The hot-product cache, unless its time to live is 0."""
    settings = cast(CatalogSettings, runtime.settings)
    runtime.state.product_cache = None
    if settings.product_cache_ttl_seconds > 0:
        runtime.state.product_cache = ProductCache.create(
            runtime.redis, prefix=runtime.platform.redis_prefix, ttl_seconds=settings.product_cache_ttl_seconds,
            max_local_entries=settings.product_cache_max_entries,
            timeout_seconds=settings.product_cache_timeout_ms / 1000)
