from __future__ import annotations

import uuid
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Path

from amazonlite.platform.crypto import FieldCipher
from amazonlite.platform.errors import problem_responses
from amazonlite.platform.idempotency import IdempotencyRequiredRoute, IdempotentRoute
from amazonlite.platform.pagination import CursorParam, InvalidCursor, Limit, Page
from amazonlite.platform.service import RuntimeDep, SessionDep
from amazonlite.services.orders import schemas, service
from amazonlite.services.orders.auth import Customer, OrderReader
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
from amazonlite.services.orders.settings import OrdersSettings

# Reads and the cancel honour an optional Idempotency-Key; a checkout requires one (one order per
# attempt, however often the client sends it).
router = APIRouter(prefix="/api/v1", route_class=IdempotentRoute)

OrderId = Annotated[uuid.UUID, Path(description="The order's id")]

CHECKOUT_ERRORS = (UnknownPaymentProvider, CartEmpty, SkuNotForSale, PricesChanged, InsufficientStock,
                   AddressNotFound, CheckoutDependencyUnavailable)


async def _cipher(runtime: RuntimeDep) -> FieldCipher:
    cipher: FieldCipher = runtime.state.address_cipher
    return cipher


AddressCipher = Annotated[FieldCipher, Depends(_cipher)]


async def _checkout_request(customer: Customer, runtime: RuntimeDep, cipher: AddressCipher
                            ) -> service.CheckoutRequest:
    return service.CheckoutRequest(principal=customer, services=runtime.services,
                                   settings=cast(OrdersSettings, runtime.settings), cipher=cipher)


CheckoutDep = Annotated[service.CheckoutRequest, Depends(_checkout_request)]


async def place_order(session: SessionDep, request: CheckoutDep, data: schemas.Checkout) -> schemas.Order:
    """Check out the customer's cart: the order is placed in `RESERVATION_PENDING` (202) and moves
    on by itself (stock reserved, then payment: `GET /orders/{id}` shows how to pay). The cart is
    emptied once the order exists."""
    return await service.checkout(session, request, data)


# A route of `router` itself (an included router's routes would be known by their path without the
# prefix, in metrics and traces).
router.add_api_route("/orders", place_order, methods=["POST"], status_code=202, response_model=schemas.Order,
                     tags=["orders"], responses=problem_responses(*CHECKOUT_ERRORS),
                     route_class_override=IdempotencyRequiredRoute)


@router.get("/orders", response_model=Page[schemas.Order], tags=["orders"],
            responses=problem_responses(InvalidCursor))
async def list_orders(session: SessionDep, customer: Customer, cipher: AddressCipher, limit: Limit = 20,
                      cursor: CursorParam = None) -> Page[schemas.Order]:
    """The caller's own orders, newest first."""
    return await service.list_orders(session, customer, cipher, limit=limit, cursor=cursor)


@router.get("/orders/{order_id}", response_model=schemas.Order, tags=["orders"],
            responses=problem_responses(OrderNotFound))
async def read_order(session: SessionDep, reader: OrderReader, cipher: AddressCipher, order_id: OrderId
                     ) -> schemas.Order:
    """One order, to its customer or a tenant admin, with its history; while it waits for payment,
    `payment.client` says how to pay."""
    return await service.read_order(session, reader, order_id, cipher)


@router.post("/orders/{order_id}/cancel", response_model=schemas.Order, tags=["orders"],
             responses=problem_responses(OrderNotFound, OrderNotCancellable))
async def cancel_order(session: SessionDep, customer: Customer, cipher: AddressCipher, order_id: OrderId
                       ) -> schemas.Order:
    """The customer cancels their order before it ships: its stock is released and its payment voided
    or refunded."""
    return await service.cancel(session, customer, order_id, cipher)

