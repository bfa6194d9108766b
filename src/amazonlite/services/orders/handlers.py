"""The saga's inputs from inventory and payments: each event is a trigger of its order's state
machine (`service.advance`); one that does not fit the order's status is recorded and ignored."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import structlog

from amazonlite.contracts import (
    InventoryRejectedV1,
    InventoryReservedV1,
    PaymentAuthorizedV1,
    PaymentFailedV1,
    PaymentRefundedV1,
    PaymentRequestedV1,
)
from amazonlite.platform.consumer import EventContext, EventHandlers
from amazonlite.platform.db import utcnow
from amazonlite.platform.tenant_settings import TENANTS, tenant_settings
from amazonlite.services.orders import service
from amazonlite.services.orders.models import Order
from amazonlite.services.orders.repository import OrderRepository
from amazonlite.services.orders.saga import Trigger
from amazonlite.services.orders.service import Change
from amazonlite.services.orders.settings import OrdersSettings

log = structlog.get_logger("amazonlite.orders")

handlers = EventHandlers()


@handlers.subscriber(InventoryReservedV1)
async def on_stock_reserved(ctx: EventContext, event: InventoryReservedV1) -> None:
    await service.advance(ctx.session, event.order_id, Trigger.STOCK_RESERVED)


@handlers.subscriber(InventoryRejectedV1)
async def on_stock_rejected(ctx: EventContext, event: InventoryRejectedV1) -> None:
    await service.advance(ctx.session, event.order_id, Trigger.STOCK_REJECTED)


@handlers.subscriber(PaymentRequestedV1)
async def on_payment_requested(ctx: EventContext, event: PaymentRequestedV1) -> None:
    deadline = utcnow() + dt.timedelta(minutes=await _payment_minutes(ctx))
    await service.advance(ctx.session, event.order_id, Trigger.PAYMENT_REQUESTED, change=Change(
        payment={"id": str(event.payment_id), "provider": event.provider, "status": "requested",
                 "client": dict(event.client)},
        deadline_at=deadline))


@handlers.subscriber(PaymentAuthorizedV1)
async def on_payment_authorized(ctx: EventContext, event: PaymentAuthorizedV1) -> None:
    order = await OrderRepository(ctx.session).get(event.order_id)
    if order is not None and not _pays_for(order, event):
        # Never confirm an order for money it does not cost: the order waits on until its payment
        # deadline cancels it, and payments refunds what it took for a cancelled order.
        log.error("orders.payment_amount_mismatch", order_id=str(event.order_id), total=order.total,
                  currency=order.currency, paid=event.amount.amount, paid_currency=event.amount.currency)
        service.ignore(ctx.session, order, Trigger.PAYMENT_AUTHORIZED)
        return
    await service.advance(ctx.session, event.order_id, Trigger.PAYMENT_AUTHORIZED,
                          change=Change(payment={"status": "authorized", "client": {}}))


@handlers.subscriber(PaymentFailedV1)
async def on_payment_failed(ctx: EventContext, event: PaymentFailedV1) -> None:
    await service.advance(ctx.session, event.order_id, Trigger.PAYMENT_FAILED,
                          change=Change(payment={"id": str(event.payment_id), "provider": event.provider,
                                                 "status": "failed", "client": {}}))


@handlers.subscriber(PaymentRefundedV1)
async def on_payment_refunded(ctx: EventContext, event: PaymentRefundedV1) -> None:
    await service.advance(ctx.session, event.order_id, Trigger.PAYMENT_REFUNDED,
                          change=Change(payment={"status": "refunded" if event.kind == "refund" else "voided"}))


def _pays_for(order: Order, event: PaymentAuthorizedV1) -> bool:
    return (event.amount.amount, event.amount.currency) == (order.total, order.currency)


async def _payment_minutes(ctx: EventContext) -> float:
    """The tenant's `payment_minutes` (asked of the tenants service, cached by the kernel's lookup),
    or this service's default when the tenants service is not reachable from here or cannot answer."""
    runtime: Any = ctx.runtime
    settings = cast(OrdersSettings, runtime.settings)
    if TENANTS not in runtime.services.known:
        return settings.payment_minutes
    try:
        minutes = (await tenant_settings(runtime).get(ctx.tenant_id)).payment_minutes
    except Exception as exc:  # the lookup logs an outage of the tenants service once
        log.debug("orders.tenant_payment_minutes_unknown", tenant_id=ctx.tenant_id, error=type(exc).__name__)
        return settings.payment_minutes
    return minutes if minutes > 0 else settings.payment_minutes
