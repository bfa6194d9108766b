"""The saga's inputs from inventory and payments: each event is a trigger of its order's state
machine (`service.advance`); one that does not fit the order's status is recorded and ignored."""

from __future__ import annotations

from amazonlite.contracts import (
    InventoryRejectedV1,
    InventoryReservedV1,
    PaymentAuthorizedV1,
    PaymentFailedV1,
    PaymentRefundedV1,
    PaymentRequestedV1,
)
from amazonlite.platform.consumer import EventContext, EventHandlers
from amazonlite.platform.tenant_settings import minutes_setting
from amazonlite.services.orders import service
from amazonlite.services.orders.saga import Trigger
from amazonlite.services.orders.service import Change

handlers = EventHandlers()


@handlers.subscriber(InventoryReservedV1)
async def on_stock_reserved(ctx: EventContext, event: InventoryReservedV1) -> None:
    await service.advance(ctx.session, event.order_id, Trigger.STOCK_RESERVED)


@handlers.subscriber(InventoryRejectedV1)
async def on_stock_rejected(ctx: EventContext, event: InventoryRejectedV1) -> None:
    await service.advance(ctx.session, event.order_id, Trigger.STOCK_REJECTED)


@handlers.subscriber(PaymentRequestedV1)
async def on_payment_requested(ctx: EventContext, event: PaymentRequestedV1) -> None:
    # The tenant's own payment window, or this service's default when the tenants service cannot say.
    minutes = await minutes_setting(ctx.runtime, ctx.tenant_id, lambda tenant: tenant.payment_minutes,
                                    ctx.runtime.settings.payment_minutes)
    await service.payment_requested(ctx.session, event, minutes=minutes)


@handlers.subscriber(PaymentAuthorizedV1)
async def on_payment_authorized(ctx: EventContext, event: PaymentAuthorizedV1) -> None:
    await service.payment_authorized(ctx.session, event)


@handlers.subscriber(PaymentFailedV1)
async def on_payment_failed(ctx: EventContext, event: PaymentFailedV1) -> None:
    await service.advance(ctx.session, event.order_id, Trigger.PAYMENT_FAILED,
                          change=Change(payment={"id": str(event.payment_id), "provider": event.provider,
                                                 "status": "failed", "client": {}}))


@handlers.subscriber(PaymentRefundedV1)
async def on_payment_refunded(ctx: EventContext, event: PaymentRefundedV1) -> None:
    await service.advance(ctx.session, event.order_id, Trigger.PAYMENT_REFUNDED,
                          change=Change(payment={"status": "refunded" if event.kind == "refund" else "voided"}))
