from __future__ import annotations

import dataclasses
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Response

from amazonlite.platform.errors import AppError, Forbidden, Unauthorized, ValidationFailed, problem_responses
from amazonlite.platform.idempotency import GuestScope, IdempotentRoute
from amazonlite.platform.pagination import CursorParam, InvalidCursor, Limit, Page
from amazonlite.platform.service import RuntimeDep, SessionDep
from amazonlite.platform.tenant_settings import CurrentTenantSettings, TenantNotKnown, TenantSettingsUnavailable
from amazonlite.services.cart import coupons, schemas, service
from amazonlite.services.cart.auth import CouponAdmin, Shopper
from amazonlite.services.cart.errors import (
    AvailabilityUnavailable,
    CartBusy,
    CartItemNotFound,
    CartNotFound,
    CartStoreUnavailable,
    CartVersionMismatch,
    CatalogUnavailable,
    CouponAlreadyUsed,
    CouponExhausted,
    CouponExpired,
    CouponMinimumNotMet,
    CouponNotFound,
    CouponNotStarted,
    CurrencyMismatch,
    DuplicateCoupon,
    InsufficientStock,
    InvalidCoupon,
    QuantityOverLimit,
    SkuNotFound,
    TooManyLines,
    UnknownCoupon,
)

# Every change honours Idempotency-Key (platform/idempotency.py): a retry gets the first answer.
CART_ID_HEADER = "X-Cart-Id"


class CartRoute(IdempotentRoute):
    """A guest's Idempotency-Key is scoped by its cart (a well-formed X-Cart-Id), whose id an
    answer's replay carries."""

    guest_scope = GuestScope(CART_ID_HEADER, service.GUEST_ID)


router = APIRouter(prefix="/api/v1", route_class=CartRoute)
CartIdHeader = Annotated[str | None, Header(alias=CART_ID_HEADER, max_length=200, description=(
    "A guest's cart id, as the service answered it; ignored for a signed-in customer (but see merge)"))]
# The pattern tells clients what to send; any other value names no version, so its precondition
# fails (412), as a version the cart never had does (service.parse_if_match).
IfMatchHeader = Annotated[str | None, Header(alias="If-Match", description=(
    'The cart version the change is meant for, as its ETag ("3", or W/"3"; * for any stored version): '
    "another one answers 412"), json_schema_extra={"pattern": service.IF_MATCH_PATTERN})]
SkuPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
CodePath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$", description="Case-insensitive")]

SETTINGS_ERRORS = (TenantSettingsUnavailable, TenantNotKnown, CartStoreUnavailable)
READ_ERRORS = (*SETTINGS_ERRORS, CartNotFound)
CHANGE_ERRORS = (*SETTINGS_ERRORS, CartVersionMismatch, CartBusy)
OFFER_ERRORS = (SkuNotFound, InsufficientStock, QuantityOverLimit, CurrencyMismatch, CatalogUnavailable,
                AvailabilityUnavailable)
ADD_ERRORS = (*CHANGE_ERRORS, *OFFER_ERRORS, TooManyLines)  # a guest without a live cart gets a new one
SET_ERRORS = (*CHANGE_ERRORS, *OFFER_ERRORS, CartNotFound, CartItemNotFound)
REMOVE_ERRORS = (*CHANGE_ERRORS, CartNotFound, CartItemNotFound)
COUPON_ERRORS = (UnknownCoupon, CouponExpired, CouponNotStarted, CouponMinimumNotMet, CouponExhausted,
                 CouponAlreadyUsed)
COUPON_APPLY_ERRORS = (*CHANGE_ERRORS, CartNotFound, *COUPON_ERRORS)
COUPON_REMOVE_ERRORS = (*CHANGE_ERRORS, CartNotFound)
MERGE_ERRORS = (*CHANGE_ERRORS, CartNotFound, Unauthorized, CatalogUnavailable, AvailabilityUnavailable)
ADMIN_ERRORS = (Forbidden, ValidationFailed)  # the kernel documents the 401 of a caller not signed in

_ETAG = {"description": 'The cart\'s version as an entity tag ("3"), for If-Match', "schema": {"type": "string"}}
_CART_ID = {"description": "A guest cart's id: send it as X-Cart-Id (absent for a customer's cart)",
            "schema": {"type": "string"}}
_REPLAYED = {"description": "`true` when this is the stored answer of an earlier request with the same "
                            "Idempotency-Key", "schema": {"type": "string", "enum": ["true"]}}


def cart_responses(*errors: type[AppError], changes: bool = True) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a cart operation: its problems, and the headers its answers carry (ETag and,
    for a guest, X-Cart-Id; a 412's ETag names the current version; a change's replay is marked)."""
    responses = problem_responses(*errors)
    headers = {"ETag": _ETAG, CART_ID_HEADER: _CART_ID}
    if changes:
        headers["Idempotent-Replayed"] = _REPLAYED
    responses[200] = {"headers": headers}
    if CartVersionMismatch in errors:
        responses[str(CartVersionMismatch.status)]["headers"] = {"ETag": {**_ETAG, "description": (
            "The cart's current version as an entity tag")}}
    return responses

async def cart_reader(principal: Shopper, runtime: RuntimeDep, shop: CurrentTenantSettings,
                      cart_id: CartIdHeader = None) -> service.CartRequest:
    return service.CartRequest(principal=principal, store=runtime.state.carts, services=runtime.services,
                               settings=runtime.settings, shop=shop,  # type: ignore[arg-type]
                               own_session=partial(runtime.db.session, tenant_id=principal.tenant_id),
                               cart_id=cart_id)


async def cart_writer(reader: Annotated[service.CartRequest, Depends(cart_reader)],
                      if_match: IfMatchHeader = None) -> service.CartRequest:
    return dataclasses.replace(reader, if_match=if_match)


CartReader = Annotated[service.CartRequest, Depends(cart_reader)]
CartWriter = Annotated[service.CartRequest, Depends(cart_writer)]


def _answer(response: Response, cart: schemas.Cart) -> schemas.Cart:
    response.headers["ETag"] = f'"{cart.version}"'
    if cart.id is not None:
        response.headers[CART_ID_HEADER] = cart.id
    return cart


# The cart ---------------------------------------------------------------------------------------

@router.get("/cart", response_model=schemas.Cart, tags=["cart"], responses=cart_responses(*READ_ERRORS, changes=False))
async def read_cart(session: SessionDep, request: CartReader, response: Response) -> schemas.Cart:
    return _answer(response, await service.read_cart(session, request))


@router.post("/cart/items", response_model=schemas.Cart, tags=["cart"], responses=cart_responses(*ADD_ERRORS))
async def add_item(session: SessionDep, request: CartWriter, item: schemas.CartItemCreate,
                   response: Response) -> schemas.Cart:
    """Add units of a SKU (to its line if there is one). A guest without a live cart gets a new one:
    its id comes back in the body and in X-Cart-Id."""
    return _answer(response, await service.add_item(session, request, item))


@router.patch("/cart/items/{sku}", response_model=schemas.Cart, tags=["cart"],
              responses=cart_responses(*SET_ERRORS))
async def set_quantity(session: SessionDep, request: CartWriter, sku: SkuPath, data: schemas.CartItemUpdate,
                       response: Response) -> schemas.Cart:
    return _answer(response, await service.set_quantity(session, request, sku, data))


@router.delete("/cart/items/{sku}", response_model=schemas.Cart, tags=["cart"],
               responses=cart_responses(*REMOVE_ERRORS))
async def remove_item(session: SessionDep, request: CartWriter, sku: SkuPath, response: Response) -> schemas.Cart:
    return _answer(response, await service.remove_item(session, request, sku))


@router.post("/cart/coupon", response_model=schemas.Cart, tags=["cart"],
             responses=cart_responses(*COUPON_APPLY_ERRORS))
async def apply_coupon(session: SessionDep, request: CartWriter, data: schemas.CouponApply,
                       response: Response) -> schemas.Cart:
    return _answer(response, await service.apply_coupon(session, request, data))


@router.delete("/cart/coupon", response_model=schemas.Cart, tags=["cart"],
               responses=cart_responses(*COUPON_REMOVE_ERRORS))
async def remove_coupon(session: SessionDep, request: CartWriter, response: Response) -> schemas.Cart:
    return _answer(response, await service.remove_coupon(session, request))


@router.post("/cart/merge", response_model=schemas.Cart, tags=["cart"],
             responses=cart_responses(*MERGE_ERRORS))
async def merge(session: SessionDep, request: CartWriter, data: schemas.CartMerge, response: Response
                ) -> schemas.Cart:
    """Move a guest cart into the signed-in customer's (quantities summed, capped at the line maximum
    and at availability); the guest cart is deleted. Merging it again answers the cart unchanged."""
    return _answer(response, await service.merge(session, request, data))


# Coupons (tenant admins) ------------------------------------------------------------------------

@router.get("/coupons", response_model=Page[schemas.Coupon], tags=["coupons"],
            responses=problem_responses(*ADMIN_ERRORS, InvalidCursor))
async def list_coupons(_admin: CouponAdmin, session: SessionDep, limit: Limit = 50, cursor: CursorParam = None
                       ) -> Page[schemas.Coupon]:
    items, next_cursor = await coupons.list_coupons(session, limit=limit, cursor=cursor)
    return Page[schemas.Coupon](items=[schemas.Coupon.model_validate(c) for c in items], next_cursor=next_cursor)


@router.post("/coupons", status_code=201, response_model=schemas.Coupon, tags=["coupons"],
             responses=problem_responses(*ADMIN_ERRORS, DuplicateCoupon))
async def create_coupon(_admin: CouponAdmin, data: schemas.CouponCreate, session: SessionDep) -> schemas.Coupon:
    return schemas.Coupon.model_validate(await coupons.create_coupon(session, data))


@router.get("/coupons/{code}", response_model=schemas.Coupon, tags=["coupons"],
            responses=problem_responses(*ADMIN_ERRORS, CouponNotFound))
async def read_coupon(_admin: CouponAdmin, code: CodePath, session: SessionDep) -> schemas.Coupon:
    return schemas.Coupon.model_validate(await coupons.get_coupon(session, code))


@router.patch("/coupons/{code}", response_model=schemas.Coupon, tags=["coupons"],
              responses=problem_responses(*ADMIN_ERRORS, CouponNotFound, InvalidCoupon))
async def update_coupon(_admin: CouponAdmin, code: CodePath, changes: schemas.CouponUpdate, session: SessionDep
                        ) -> schemas.Coupon:
    return schemas.Coupon.model_validate(await coupons.update_coupon(session, code, changes))


@router.delete("/coupons/{code}", status_code=204, tags=["coupons"],
               responses=problem_responses(*ADMIN_ERRORS, CouponNotFound))
async def delete_coupon(_admin: CouponAdmin, code: CodePath, session: SessionDep) -> None:
    await coupons.delete_coupon(session, code)
