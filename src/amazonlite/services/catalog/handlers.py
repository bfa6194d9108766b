from __future__ import annotations

from amazonlite.contracts import ProductRatingUpdatedV1
from amazonlite.platform.consumer import EventContext, EventHandlers
from amazonlite.services.catalog import products

handlers = EventHandlers()


@handlers.subscriber(ProductRatingUpdatedV1)
async def on_rating_updated(ctx: EventContext, event: ProductRatingUpdatedV1) -> None:
    await products.apply_rating(ctx.session, event, cache=ctx.runtime.state.product_cache)
