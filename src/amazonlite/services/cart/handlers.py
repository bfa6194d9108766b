from __future__ import annotations

from amazonlite.contracts.catalog import ProductDeletedV1, ProductUpdatedV1
from amazonlite.contracts.orders import OrderCancelledV1, OrderConfirmedV1, OrderCreatedV1
from amazonlite.platform.consumer import EventContext, EventHandlers
from amazonlite.services.cart import coupons, service

handlers = EventHandlers()


@handlers.subscriber(ProductUpdatedV1)
async def on_product_updated(ctx: EventContext, event: ProductUpdatedV1) -> None:
    await service.apply_product_updated(ctx.session, event)


@handlers.subscriber(ProductDeletedV1)
async def on_product_deleted(ctx: EventContext, event: ProductDeletedV1) -> None:
    await service.apply_product_deleted(ctx.session, event, at=ctx.envelope.occurred_at)


@handlers.subscriber(OrderCreatedV1)
async def on_order_created(ctx: EventContext, event: OrderCreatedV1) -> None:
    """The order exists: what it was placed with leaves the customer's cart."""
    await service.take_ordered(ctx.session, ctx.runtime.state.carts, event)


@handlers.subscriber(OrderConfirmedV1)
async def on_order_confirmed(ctx: EventContext, event: OrderConfirmedV1) -> None:
    if event.coupon_code:
        await coupons.record_confirmation(ctx.session, order_id=event.order_id, customer_id=event.customer_id,
                                          code=event.coupon_code)


@handlers.subscriber(OrderCancelledV1)
async def on_order_cancelled(ctx: EventContext, event: OrderCancelledV1) -> None:
    if event.coupon_code:
        await coupons.record_cancellation(ctx.session, order_id=event.order_id, customer_id=event.customer_id,
                                          code=event.coupon_code)
