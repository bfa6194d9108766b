from __future__ import annotations

from amazonlite.contracts import (
    InventoryReleaseRequestedV1,
    OrderCancelledV1,
    OrderConfirmedV1,
    OrderCreatedV1,
    ProductDeletedV1,
    ProductUpdatedV1,
)
from amazonlite.platform.consumer import BatchContext, EventContext, EventHandlers
from amazonlite.platform.tenant_settings import minutes_setting
from amazonlite.services.inventory import service

handlers = EventHandlers()


@handlers.subscriber(ProductUpdatedV1)
async def on_product_updated(ctx: EventContext, event: ProductUpdatedV1) -> None:
    await service.apply_product(ctx.session, event)


@handlers.subscriber(ProductDeletedV1)
async def on_product_deleted(ctx: EventContext, event: ProductDeletedV1) -> None:
    await service.forget_product(ctx.session, event)


@handlers.batch_subscriber(OrderCreatedV1)
async def on_orders_created(ctx: BatchContext, events: list[OrderCreatedV1]) -> None:
    # The tenant's own hold time, or this service's default when the tenants service cannot say.
    minutes = await minutes_setting(ctx.runtime, ctx.tenant_id, lambda tenant: tenant.reservation_minutes,
                                    ctx.runtime.settings.reservation_minutes)
    await service.reserve(ctx.session, events, minutes=minutes)


@handlers.subscriber(OrderConfirmedV1)
async def on_order_confirmed(ctx: EventContext, event: OrderConfirmedV1) -> None:
    await service.confirm(ctx.session, event.order_id)


@handlers.subscriber(OrderCancelledV1)
async def on_order_cancelled(ctx: EventContext, event: OrderCancelledV1) -> None:
    await service.release(ctx.session, event.order_id, "cancelled", event.reason)


@handlers.subscriber(InventoryReleaseRequestedV1)
async def on_release_requested(ctx: EventContext, event: InventoryReleaseRequestedV1) -> None:
    await service.release(ctx.session, event.order_id, "release_requested", event.reason)
