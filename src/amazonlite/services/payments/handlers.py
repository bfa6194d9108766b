"""The saga's inputs: an order's creation (what paying for it takes), its reservation (open the
payment), its confirmation (capture the money) and its cancellation (void or refund). A reservation
or a cancellation that arrives before the order's creation is noted, and acted on when the creation
arrives."""

from __future__ import annotations

from amazonlite.contracts import InventoryReservedV1, OrderCancelledV1, OrderConfirmedV1, OrderCreatedV1
from amazonlite.platform.consumer import EventContext, EventHandlers
from amazonlite.services.payments import service

handlers = EventHandlers()


@handlers.subscriber(OrderCreatedV1)
async def on_order_created(ctx: EventContext, event: OrderCreatedV1) -> None:
    await service.remember_order(ctx.session, _providers(ctx), event, hosted_page=_sandbox(ctx))


@handlers.subscriber(InventoryReservedV1)
async def on_stock_reserved(ctx: EventContext, event: InventoryReservedV1) -> None:
    await service.open_payment(ctx.session, _providers(ctx), event.order_id, hosted_page=_sandbox(ctx))


@handlers.subscriber(OrderConfirmedV1)
async def on_order_confirmed(ctx: EventContext, event: OrderConfirmedV1) -> None:
    await service.capture_confirmed(ctx.session, event.order_id)


@handlers.subscriber(OrderCancelledV1)
async def on_order_cancelled(ctx: EventContext, event: OrderCancelledV1) -> None:
    await service.cancel_order(ctx.session, _providers(ctx), event.order_id, event.reason)


def _providers(ctx: EventContext) -> service.Providers:
    providers: service.Providers = ctx.runtime.state.providers
    return providers


def _sandbox(ctx: EventContext) -> service.HostedPage:
    gateway: service.HostedPage = ctx.runtime.state.sandbox_gateway
    return gateway
