from __future__ import annotations

from amazonlite.contracts import ProductDeletedV1, ProductRatingUpdatedV1, ProductUpdatedV1
from amazonlite.platform.consumer import BatchContext, EventHandlers
from amazonlite.services.search import service

handlers = EventHandlers()


@handlers.batch_subscriber(ProductUpdatedV1)
async def on_products_updated(ctx: BatchContext, events: list[ProductUpdatedV1]) -> None:
    await service.apply_updates(ctx.runtime.state.index, ctx.tenant_id, events)


@handlers.batch_subscriber(ProductDeletedV1)
async def on_products_deleted(ctx: BatchContext, events: list[ProductDeletedV1]) -> None:
    await service.apply_deletions(ctx.runtime.state.index, ctx.tenant_id, events)


@handlers.batch_subscriber(ProductRatingUpdatedV1)
async def on_ratings_updated(ctx: BatchContext, events: list[ProductRatingUpdatedV1]) -> None:
    await service.apply_ratings(ctx.runtime.state.index, ctx.tenant_id, events)
