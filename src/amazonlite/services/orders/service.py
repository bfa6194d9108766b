"""Checkout, and the saga's steps on an order.

Checkout reads the customer's cart as the cart service prices it (its one rule for discount and
tax), checks it against the catalog (every line still for sale at the price the cart shows) and
inventory (enough available now), takes the shipping address (one of the customer's, read from the
users service, or one given), and writes the order in `RESERVATION_PENDING` with `order.created.v1`
in one transaction. Nothing is written when any of that fails. The cart is emptied by the cart
service once the order exists (it consumes `order.created.v1`).

Every later change of an order is a step of the saga (`saga.decide`): written over the version it
was decided on, recorded in the order's steps, with the events it emits in the same transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import structlog
from prometheus_client import Counter, Histogram
from pydantic import AwareDatetime, BaseModel, Field, TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.contracts import (
    InventoryReleaseRequestedV1,
    OrderCancelledV1,
    OrderConfirmedV1,
    OrderCreatedV1,
    PaymentAuthorizedV1,
    PaymentRequestedV1,
)
from amazonlite.contracts.base import Money as MoneyV1
from amazonlite.contracts.orders import OrderLineV1, OrderTotalsV1
from amazonlite.platform.clients import ServiceDirectory
from amazonlite.platform.crypto import FieldCipher, Keyring
from amazonlite.platform.db import TransientConflict, after_commit, utcnow
from amazonlite.platform.errors import ValidationFailed
from amazonlite.platform.ids import new_id
from amazonlite.platform.outbox import record_event
from amazonlite.platform.pagination import Page, decode_id_cursor, encode_id_cursor
from amazonlite.platform.security import ADMIN_ROLES, Principal
from amazonlite.services.orders import schemas
from amazonlite.services.orders.errors import (
    AddressNotFound,
    CartEmpty,
    CheckoutDependencyUnavailable,
    InsufficientStock,
    OrderNotCancellable,
    OrderNotFound,
    PricesChanged,
    SkuNotForSale,
    UnknownPaymentProvider,
)
from amazonlite.services.orders.models import Order, OrderStep
from amazonlite.services.orders.repository import OrderRepository, StepRepository
from amazonlite.services.orders.saga import CancelReason, Decision, Status, Trigger, decide
from amazonlite.services.orders.settings import OrdersSettings

log = structlog.get_logger("amazonlite.orders")

PLACED = Counter("amazonlite_orders_placed_total", "Orders placed (checkouts that wrote an order)")
SAGA_OUTCOMES = Counter("amazonlite_orders_saga_outcomes_total",
                        "Orders confirmed, and orders cancelled by reason (a confirmed order the customer cancels "
                        "counts in both)", ["outcome", "reason"])
SAGA_SECONDS = Histogram("amazonlite_orders_saga_seconds", "From checkout to CONFIRMED, or to CANCELLED", ["outcome"],
                         buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600))

ADDRESS_COLUMN = "shipping_address_encrypted"
LOOKUP_BATCH = 100


def address_cipher(keyring: Keyring) -> FieldCipher:
    return FieldCipher(keyring, table="orders")


@dataclasses.dataclass(frozen=True)
class CheckoutRequest:
    """Who checks out, and what the checkout reads with."""

    principal: Principal
    services: ServiceDirectory
    settings: OrdersSettings
    cipher: FieldCipher

    @property
    def customer_id(self) -> uuid.UUID:
        assert self.principal.user_id is not None  # the endpoint admits signed-in users only
        return uuid.UUID(self.principal.user_id)


# What the other services answer, as the checkout reads it ---------------------------------------------

class _Money(BaseModel):
    amount: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)


class _CartLine(BaseModel):
    sku: str
    product_id: uuid.UUID
    name: str
    quantity: int = Field(gt=0)
    unit_price: _Money
    line_total: _Money
    available: bool


class _CartCoupon(BaseModel):
    code: str
    applies: bool


class _Cart(BaseModel):
    currency: str
    items: list[_CartLine]
    coupon: _CartCoupon | None
    subtotal: _Money
    discount: _Money
    tax: _Money
    total: _Money


class _Offer(BaseModel):
    sku: str
    status: str
    price: _Money
    updated_at: AwareDatetime


class _Availability(BaseModel):
    sku: str
    available: int


class _Address(schemas.ShippingAddress):
    id: uuid.UUID


_Item = TypeVar("_Item", bound=BaseModel)


async def _read(request: CheckoutRequest, target: str, path: str, kind: type[_Item] | Any, **kwargs: Any) -> Any:
    """The target's answer read as `kind`; anything else is `CheckoutDependencyUnavailable` (503,
    nothing written)."""
    return await request.services.client(target).read(path, TypeAdapter(kind), principal=request.principal,
                                                       unavailable=CheckoutDependencyUnavailable, **kwargs)


async def _items(request: CheckoutRequest, target: str, path: str, skus: list[str], kind: type[_Item]) -> list[_Item]:
    items: list[_Item] = []
    for start in range(0, len(skus), LOOKUP_BATCH):
        page = await _read(request, target, path, Page[kind],  # type: ignore[valid-type]
                           params=[("sku", s) for s in skus[start:start + LOOKUP_BATCH]])
        items += page.items
    return items


async def _saved_address(request: CheckoutRequest, address_id: uuid.UUID) -> schemas.ShippingAddress:
    addresses = (await _read(request, "users", "/api/v1/users/me/addresses", Page[_Address])).items
    for address in addresses:
        if address.id == address_id:
            return schemas.ShippingAddress.model_validate(address.model_dump(exclude={"id"}))
    raise AddressNotFound(f"You have no address {address_id}")


# Checkout ---------------------------------------------------------------------------------------------

async def checkout(session: AsyncSession, request: CheckoutRequest, data: schemas.Checkout) -> schemas.Order:
    settings = request.settings
    if data.payment_provider not in settings.payment_providers:
        raise UnknownPaymentProvider(f"Pay with one of: {', '.join(settings.payment_providers)}",
                                     providers=list(settings.payment_providers))
    cart = await _read(request, "cart", "/api/v1/cart", _Cart)
    if not cart.items:
        raise CartEmpty()
    if len(cart.items) > settings.max_lines:
        raise ValidationFailed(f"An order holds at most {settings.max_lines} lines")
    skus = [line.sku for line in cart.items]
    withdrawn = [line.sku for line in cart.items if not line.available]
    offers = {o.sku: o for o in await _items(request, "catalog", "/api/v1/skus", skus, _Offer) if o.status == "active"}
    withdrawn += [sku for sku in skus if sku not in offers and sku not in withdrawn]
    if withdrawn:
        raise SkuNotForSale(f"No longer for sale: {', '.join(sorted(withdrawn))}", skus=sorted(withdrawn))
    changed = sorted(line.sku for line in cart.items
                     if (offers[line.sku].price.amount, offers[line.sku].price.currency)
                     != (line.unit_price.amount, line.unit_price.currency))
    if changed:
        raise PricesChanged(f"The price of {', '.join(changed)} changed: read the cart again", skus=changed)
    stock = {a.sku: a.available for a in await _items(request, "inventory", "/api/v1/inventory", skus, _Availability)}
    for line in cart.items:
        if stock.get(line.sku, 0) < line.quantity:
            available = max(stock.get(line.sku, 0), 0)
            raise InsufficientStock(f"Only {available} of {line.sku} available", sku=line.sku, available=available)
    address = (schemas.ShippingAddress.model_validate(data.address.model_dump()) if data.address is not None
               else await _saved_address(request, data.shipping_address_id))  # type: ignore[arg-type]

    now = utcnow()
    tenant = request.principal.tenant_id
    order_id = new_id()
    coupon = cart.coupon.code if cart.coupon is not None and cart.coupon.applies else None
    order = Order(
        id=order_id, customer_id=request.customer_id, status=Status.RESERVATION_PENDING, version=1,
        currency=cart.currency, subtotal=cart.subtotal.amount, discount=cart.discount.amount, tax=cart.tax.amount,
        shipping=0, total=cart.total.amount, coupon_code=coupon,
        lines=[{"sku": line.sku, "product_id": str(line.product_id), "name": line.name, "quantity": line.quantity,
                "unit_price": line.unit_price.amount, "line_total": line.line_total.amount} for line in cart.items],
        shipping_address_encrypted=request.cipher.encrypt(
            address.model_dump_json(), tenant_id=tenant, column=ADDRESS_COLUMN, row_id=order_id),
        payment_provider=data.payment_provider, stock_held=False,
        deadline_at=now + dt.timedelta(seconds=settings.reservation_seconds), created_at=now, updated_at=now)
    OrderRepository(session).add(order)
    StepRepository(session).add(OrderStep(order_id=order_id, outcome="moved", trigger="checkout",
                                          status=Status.RESERVATION_PENDING, at=now))
    await session.flush()
    await record_event(session, _created(order), aggregate_id=order_id)
    log.info("orders.placed", order_id=str(order_id), lines=len(cart.items), total=cart.total.amount)
    _count_after_commit(session, PLACED.inc)
    return render(order, [], request.cipher, moves=[(Status.RESERVATION_PENDING, None, now)])


def _money(amount: int, currency: str) -> MoneyV1:
    return MoneyV1(amount=amount, currency=currency)


def _created(order: Order) -> OrderCreatedV1:
    currency = order.currency
    return OrderCreatedV1(
        order_id=order.id, customer_id=order.customer_id,
        lines=[OrderLineV1(sku=line["sku"], quantity=line["quantity"], unit_price=_money(line["unit_price"], currency))
               for line in order.lines],
        totals=OrderTotalsV1(subtotal=_money(order.subtotal, currency), discount=_money(order.discount, currency),
                             tax=_money(order.tax, currency), shipping=_money(order.shipping, currency),
                             total=_money(order.total, currency)),
        coupon_code=order.coupon_code, payment_provider=order.payment_provider, created_at=order.created_at)


# The saga's steps ----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Change:
    """What a step writes besides the status: the payment as payments told it, a new deadline."""

    payment: dict[str, Any] | None = None
    deadline_at: dt.datetime | None = None


async def advance(session: AsyncSession, order_id: uuid.UUID, trigger: Trigger, *, change: Change | None = None,
                  record_ignored: bool = True) -> Decision | None:
    """Apply `trigger` to the order: its step, or, when it does not fit the order's status (or the
    order is unknown here), None, recorded as ignored and logged. Raises `TransientConflict` when
    another step of the order was written since it was read (the consumer decides again on the new
    state; an endpoint answers 409 with Retry-After)."""
    orders = OrderRepository(session)
    order = await orders.get(order_id)
    if order is None:
        log.warning("orders.event_for_unknown_order", order_id=str(order_id), trigger=trigger)
        return None
    status = Status(order.status)
    decision = decide(status, trigger, stock_held=order.stock_held)
    now = utcnow()
    if decision is None:
        if record_ignored:
            ignore(session, order, trigger)
        return None
    change = change or Change()
    values: dict[str, Any] = {"status": decision.status, "stock_held": decision.stock_held, "updated_at": now}
    if decision.reason is not None:
        values["cancel_reason"] = decision.reason
    if change.payment is not None:
        values["payment"] = {**(order.payment or {}), **change.payment}
    if decision.status not in (Status.RESERVATION_PENDING, Status.PAYMENT_PENDING):
        values["deadline_at"] = None
    elif change.deadline_at is not None:
        values["deadline_at"] = change.deadline_at
    if not await orders.step(order, **values):
        raise TransientConflict(f"order {order_id} changed while {trigger} was applied")
    StepRepository(session).add(OrderStep(order_id=order_id, outcome="moved" if decision.changes_status else "noted",
                                          trigger=trigger, status=decision.status, reason=decision.reason, at=now))
    if decision.confirm:
        await record_event(session, OrderConfirmedV1(order_id=order_id, customer_id=order.customer_id,
                                                     coupon_code=order.coupon_code, confirmed_at=now),
                           aggregate_id=order_id)
    if decision.cancel:
        assert decision.reason is not None
        await record_event(session, OrderCancelledV1(order_id=order_id, customer_id=order.customer_id,
                                                     reason=decision.reason, coupon_code=order.coupon_code,
                                                     cancelled_at=now), aggregate_id=order_id)
    if decision.release_stock:
        await record_event(session, InventoryReleaseRequestedV1(order_id=order_id, reason=str(decision.reason)),
                           aggregate_id=order_id)
    if decision.changes_status:
        log.info("orders.moved", order_id=str(order_id), trigger=trigger, to=decision.status, reason=decision.reason)
    if decision.confirm or decision.cancel:
        outcome = "confirmed" if decision.confirm else "cancelled"
        took = (now - order.created_at).total_seconds()

        def count() -> None:
            SAGA_OUTCOMES.labels(outcome, decision.reason or "").inc()
            SAGA_SECONDS.labels(outcome).observe(max(took, 0.0))

        _count_after_commit(session, count)
    return decision


def _count_after_commit(session: AsyncSession, count: Callable[[], None]) -> None:
    async def counted() -> None:
        count()

    after_commit(session, counted)


async def payment_requested(session: AsyncSession, event: PaymentRequestedV1, *, minutes: float) -> None:
    """Payments waits for the customer's money: the order shows how to pay, for `minutes`."""
    await advance(session, event.order_id, Trigger.PAYMENT_REQUESTED, change=Change(
        payment={"id": str(event.payment_id), "provider": event.provider, "status": "requested",
                 "client": dict(event.client)},
        deadline_at=utcnow() + dt.timedelta(minutes=minutes)))


async def payment_authorized(session: AsyncSession, event: PaymentAuthorizedV1) -> None:
    """The customer paid: the order is confirmed, if the money is what the order costs. Any other
    amount confirms nothing (recorded as ignored, logged as an error): the order waits on until its
    payment deadline cancels it, and payments refunds what it took for a cancelled order."""
    order = await OrderRepository(session).get(event.order_id)
    if order is not None and (event.amount.amount, event.amount.currency) != (order.total, order.currency):
        log.error("orders.payment_amount_mismatch", order_id=str(event.order_id), total=order.total,
                  currency=order.currency, paid=event.amount.amount, paid_currency=event.amount.currency)
        ignore(session, order, Trigger.PAYMENT_AUTHORIZED)
        return
    await advance(session, event.order_id, Trigger.PAYMENT_AUTHORIZED,
                  change=Change(payment={"id": str(event.payment_id), "provider": event.provider,
                                         "status": "authorized", "client": {}}))


def ignore(session: AsyncSession, order: Order, trigger: Trigger) -> None:
    """Record that `trigger` reached the order and changed nothing (a duplicate, late or out-of-order
    event, or one that does not fit the order)."""
    log.info("orders.trigger_ignored", order_id=str(order.id), trigger=trigger, status=order.status)
    StepRepository(session).add(OrderStep(order_id=order.id, outcome="ignored", trigger=trigger,
                                          status=order.status, at=utcnow()))


async def cancel(session: AsyncSession, principal: Principal, order_id: uuid.UUID, cipher: FieldCipher
                 ) -> schemas.Order:
    """The customer cancels their order (before it ships): stock released, payment voided or refunded."""
    order = await _own_order(session, principal, order_id, owner_only=True)
    decision = await advance(session, order.id, Trigger.CUSTOMER_CANCELLED, record_ignored=False)
    if decision is None:
        raise OrderNotCancellable(f"An order {order.status} cannot be cancelled", order_status=order.status)
    return await read_order(session, principal, order_id, cipher)


# Reading ------------------------------------------------------------------------------------------------

async def _own_order(session: AsyncSession, principal: Principal, order_id: uuid.UUID, *,
                     owner_only: bool = False) -> Order:
    """The order, if the caller may see it: its customer, or (unless `owner_only`) a tenant admin.
    Anyone else is told it does not exist."""
    order = await OrderRepository(session).get(order_id)
    is_owner = order is not None and principal.user_id is not None and str(order.customer_id) == principal.user_id
    if order is None or not (is_owner or (not owner_only and principal.has_any(ADMIN_ROLES))):
        raise OrderNotFound(f"There is no order {order_id}")
    return order


async def read_order(session: AsyncSession, principal: Principal, order_id: uuid.UUID, cipher: FieldCipher
                     ) -> schemas.Order:
    order = await _own_order(session, principal, order_id)
    steps = await StepRepository(session).of_order(order.id)
    return render(order, steps, cipher)


async def list_orders(session: AsyncSession, principal: Principal, cipher: FieldCipher, *, limit: int,
                      cursor: str | None) -> Page[schemas.Order]:
    """The caller's own orders, newest first."""
    assert principal.user_id is not None
    rows = list(await OrderRepository(session).page_of(uuid.UUID(principal.user_id), limit=limit + 1,
                                                       before=decode_id_cursor(cursor)))
    page = rows[:limit]
    steps = await StepRepository(session).of_orders([order.id for order in page])
    items = [render(order, [step for step in steps if step.order_id == order.id], cipher) for order in page]
    return Page[schemas.Order](items=items, next_cursor=encode_id_cursor(page[-1].id) if len(rows) > limit else None)


def render(order: Order, steps: Iterable[OrderStep], cipher: FieldCipher, *,
           moves: list[tuple[Status, CancelReason | None, dt.datetime]] | None = None) -> schemas.Order:
    currency = order.currency

    def money(amount: int) -> schemas.Money:
        return schemas.Money(amount=amount, currency=currency)

    if moves is None:
        moves = [(Status(step.status), CancelReason(step.reason) if step.reason else None, step.at)
                 for step in steps if step.outcome == "moved"]
    address = json.loads(cipher.decrypt(order.shipping_address_encrypted, tenant_id=order.tenant_id,
                                        column=ADDRESS_COLUMN, row_id=order.id))
    payment = None
    if order.payment is not None:
        waiting = order.status == Status.PAYMENT_PENDING
        payment = schemas.Payment(id=uuid.UUID(order.payment["id"]), provider=order.payment["provider"],
                                  status=order.payment["status"],
                                  client=order.payment.get("client", {}) if waiting else {},
                                  expires_at=order.deadline_at if waiting else None)
    return schemas.Order(
        id=order.id, status=Status(order.status),
        cancel_reason=CancelReason(order.cancel_reason) if order.cancel_reason else None,
        items=[schemas.OrderLine(sku=line["sku"], product_id=uuid.UUID(line["product_id"]), name=line["name"],
                                 quantity=line["quantity"], unit_price=money(line["unit_price"]),
                                 line_total=money(line["line_total"])) for line in order.lines],
        coupon_code=order.coupon_code, subtotal=money(order.subtotal), discount=money(order.discount),
        tax=money(order.tax), shipping=money(order.shipping), total=money(order.total),
        shipping_address=schemas.ShippingAddress.model_validate(address), payment_provider=order.payment_provider,
        payment=payment,
        history=[schemas.HistoryEntry(status=status, reason=reason, at=at) for status, reason, at in moves],
        created_at=order.created_at, updated_at=order.updated_at)
