"""The cart's use cases: read a cart, change its lines, apply a coupon, merge a guest cart into a
customer's; and the replica of SKU prices they show.

A change reads the cart, checks it (If-Match, the catalog, inventory), re-snapshots every line's
price and stores it as the next version only if nobody changed it meanwhile (store.py); if somebody
did, it starts again from the newer cart, a bounded number of times."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from prometheus_client import Counter
from pydantic import AwareDatetime, BaseModel, Field, TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.contracts.catalog import ProductDeletedV1, ProductUpdatedV1
from amazonlite.contracts.orders import OrderCreatedV1
from amazonlite.platform.clients import ServiceDirectory
from amazonlite.platform.db import TransientConflict, utcnow
from amazonlite.platform.errors import AppError, Unauthorized
from amazonlite.platform.pagination import Page
from amazonlite.platform.security import Principal
from amazonlite.platform.tenant_settings import TenantSettings
from amazonlite.services.cart import coupons, schemas
from amazonlite.services.cart.errors import (
    AvailabilityUnavailable,
    CartBusy,
    CartItemNotFound,
    CartNotFound,
    CartVersionMismatch,
    CatalogUnavailable,
    CurrencyMismatch,
    InsufficientStock,
    QuantityOverLimit,
    SkuNotFound,
    TooManyLines,
    UnknownCoupon,
)
from amazonlite.services.cart.models import SkuPrice
from amazonlite.services.cart.repository import CouponRepository, SkuPriceRepository
from amazonlite.services.cart.settings import CartSettings
from amazonlite.services.cart.store import CartStore, Owner, StoredCart

log = structlog.get_logger("amazonlite.cart")

MUTATIONS = Counter("amazonlite_cart_mutations_total", "Cart changes by kind and outcome", ["kind", "outcome"])

GUEST_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
ETAG = re.compile(r'^(?:W/)?"(\d{1,18})"$')
# What an If-Match may be, as the OpenAPI document states it: one version as an entity tag, or `*`
# (a list of entity tags is taken too, as HTTP has it: any of them).
ANY_VERSION: frozenset[int] = frozenset({-1})  # `If-Match: *`, compared by identity
IF_MATCH_PATTERN = r'^\s*(\*|(W/)?"[0-9]{1,18}")\s*$'



# What a request's use cases need ------------------------------------------------------------------

@dataclass(frozen=True)
class CartRequest:
    principal: Principal
    store: CartStore
    services: ServiceDirectory
    settings: CartSettings
    shop: TenantSettings  # the tenant's currency and tax rate, read once per request
    # A unit of work of its own, for the replica's writes of a change stored in Redis (see _change).
    own_session: Callable[[], AbstractAsyncContextManager[AsyncSession]] | None = None
    cart_id: str | None = None  # X-Cart-Id
    if_match: str | None = None
    # What the catalog and inventory answered in this request, by SKU: a change that lost a race to a
    # concurrent one and starts again asks them nothing twice, so it is quick to try again.
    offers: dict[str, SkuOffer | None] = field(default_factory=dict)
    stock: dict[str, int] = field(default_factory=dict)
    # The catalog's offers a change used, for the replica (written before the change is stored).
    seen: dict[str, SkuOffer] = field(default_factory=dict)

    @property
    def customer(self) -> str | None:
        return self.principal.user_id

    def guest_owner(self) -> Owner | None:
        if self.cart_id is None or not GUEST_ID.fullmatch(self.cart_id):
            return None  # a malformed id names no cart of ours
        return Owner("guest", self.cart_id)


def parse_if_match(value: str | None) -> frozenset[int] | None:
    """The versions an If-Match header names (one entity tag "3" or W/"3", or a list of them), ANY
    for `*` (any stored version), None without the header. A value that is none of those names no
    version: its precondition fails (412), as an entity tag the cart never had would."""
    if value is None:
        return None
    if value.strip() == "*":
        return ANY_VERSION
    tags = [ETAG.fullmatch(tag.strip()) for tag in value.split(",")]
    return frozenset(int(tag.group(1)) for tag in tags if tag is not None) if all(tags) else frozenset()


def _check_version(wanted: frozenset[int] | None, cart: StoredCart) -> None:
    if wanted is None or (wanted is ANY_VERSION and cart.version > 0) or cart.version in wanted:
        return
    raise CartVersionMismatch(f"The cart is at version {cart.version}", headers={"ETag": f'"{cart.version}"'},
                              version=cart.version)


# Other services ------------------------------------------------------------------------------------

LOOKUP_BATCH = 100  # the most SKUs the catalog's and inventory's batch reads take at once


class _Price(BaseModel):
    amount: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)


class SkuOffer(BaseModel):
    """One item of the catalog's `GET /skus`, as the cart reads it."""

    sku: str
    product_id: uuid.UUID
    product_name: str
    variant_name: str
    status: str
    price: _Price
    updated_at: AwareDatetime


class SkuAvailability(BaseModel):
    """One item of inventory's `GET /inventory`, as the cart reads it."""

    sku: str
    available: int


_Item = TypeVar("_Item", bound=BaseModel)


async def _lookup(request: CartRequest, target: str, path: str, skus: list[str], item: type[_Item],
                  unavailable: type[AppError]) -> list[_Item]:
    """The `items` the target answers for `skus` (in batches); a target that is down, refuses (its
    breaker open, its bulkhead full) or answers anything but a 200 whose items read as `item` is
    `unavailable` (503)."""
    reader = TypeAdapter(Page[item])  # type: ignore[valid-type]
    items: list[_Item] = []
    client = request.services.client(target)
    for start in range(0, len(skus), LOOKUP_BATCH):
        page = await client.read(path, reader, principal=request.principal, unavailable=unavailable,
                                 params=[("sku", s) for s in skus[start:start + LOOKUP_BATCH]])
        items += page.items
    return items


async def _catalog(request: CartRequest, skus: Iterable[str]) -> dict[str, SkuOffer]:
    """The catalog's active offers of `skus` (those it does not sell are left out)."""
    skus = list(dict.fromkeys(skus))
    wanted = [s for s in skus if s not in request.offers]
    if wanted:
        items = await _lookup(request, "catalog", "/api/v1/skus", wanted, SkuOffer, CatalogUnavailable)
        found = {item.sku: item for item in items if item.status == "active"}
        request.offers.update({sku: found.get(sku) for sku in wanted})
    return {sku: offer for sku in skus if (offer := request.offers.get(sku)) is not None}


async def _availability(request: CartRequest, skus: Iterable[str]) -> dict[str, int]:
    """How many units of each of `skus` inventory can sell (0 for one it does not know)."""
    skus = list(dict.fromkeys(skus))
    wanted = [s for s in skus if s not in request.stock]
    if wanted:
        items = await _lookup(request, "inventory", "/api/v1/inventory", wanted, SkuAvailability,
                              AvailabilityUnavailable)
        found = {item.sku: max(item.available, 0) for item in items}
        request.stock.update({sku: found.get(sku, 0) for sku in wanted})
    return {sku: request.stock[sku] for sku in skus}


# The SKU replica -------------------------------------------------------------------------------------

async def _remember(session: AsyncSession, sku: str, *, product_id: uuid.UUID, product_name: str,
                    variant_name: str, status: str, amount: int, currency: str, updated_at: dt.datetime) -> None:
    """Replace what the replica holds of `sku` unless it holds something newer (a deleted product
    stays deleted)."""
    repository = SkuPriceRepository(session)
    values = {"product_id": product_id, "product_name": product_name[:200], "variant_name": variant_name[:200],
              "status": status, "price_amount": amount, "currency": currency, "updated_at": updated_at}
    for _ in range(2):
        row = (await repository.rows([sku])).get(sku)
        if row is None:
            if await repository.add(SkuPrice(sku=sku, **values)):
                return
            continue  # inserted concurrently: compare with it
        if row.product_id == product_id and (row.status == "deleted" or row.updated_at > updated_at):
            return
        if row.product_id != product_id and row.status not in ("deleted", "removed") and row.updated_at > updated_at:
            return
        for name, value in values.items():
            setattr(row, name, value)
        await session.flush()
        return


async def apply_product_updated(session: AsyncSession, event: ProductUpdatedV1) -> None:
    for variant in event.variants:
        await _remember(session, variant.sku, product_id=event.product_id, product_name=event.name,
                        variant_name=variant.name, status=event.status, amount=variant.price.amount,
                        currency=variant.price.currency, updated_at=event.updated_at)
    kept = {v.sku for v in event.variants}
    for row in await SkuPriceRepository(session).of_product(event.product_id):
        if row.sku not in kept and row.status != "deleted" and row.updated_at <= event.updated_at:
            row.status, row.updated_at = "removed", event.updated_at
    await session.flush()


async def apply_product_deleted(session: AsyncSession, event: ProductDeletedV1, *, at: dt.datetime) -> None:
    rows = await SkuPriceRepository(session).rows(event.skus)
    for sku in event.skus:
        row = rows.get(sku)
        if row is None:
            await _remember(session, sku, product_id=event.product_id, product_name="", variant_name="",
                            status="deleted", amount=0, currency="XXX", updated_at=at)
        elif row.product_id == event.product_id:
            row.status = "deleted"
    await session.flush()


async def _remember_catalog(session: AsyncSession, items: Iterable[SkuOffer]) -> None:
    for item in items:
        await _remember(session, item.sku, product_id=item.product_id, product_name=item.product_name,
                        variant_name=item.variant_name, status=item.status, amount=item.price.amount,
                        currency=item.price.currency, updated_at=item.updated_at)


def _line_name(product_name: str, variant_name: str) -> str:
    return product_name if not variant_name or variant_name == product_name else f"{product_name} ({variant_name})"


async def _resnapshot(session: AsyncSession, cart: StoredCart) -> None:
    """Every line takes the replica's current price and name: the customer sees the new totals."""
    current = await SkuPriceRepository(session).of([line["sku"] for line in cart.lines])
    for line in cart.lines:
        row = current.get(line["sku"])
        if row is not None and row.status == "active":
            line.update(price=row.price_amount, currency=row.currency, product_id=str(row.product_id),
                        name=_line_name(row.product_name, row.variant_name))


# Reading ---------------------------------------------------------------------------------------------

def _money(amount: int, currency: str) -> schemas.Money:
    return schemas.Money(amount=amount, currency=currency)


async def render(session: AsyncSession, request: CartRequest, cart: StoredCart) -> schemas.Cart:
    """The cart as the customer sees it: current prices (flagging those that changed since the line
    was last touched), lines no longer for sale, the coupon and whether it applies, the totals."""
    shop = request.shop
    current = await SkuPriceRepository(session).of([line["sku"] for line in cart.lines])
    items: list[schemas.CartLine] = []
    payable: list[int] = []
    for line in cart.lines:
        row = current.get(line["sku"])
        unit, currency, name = line["price"], line["currency"], line["name"]
        if row is not None and row.status == "active":
            unit, currency, name = row.price_amount, row.currency, _line_name(row.product_name, row.variant_name)
        # For sale, in the shop's currency (a tenant may change its currency under a cart).
        available = (row is None or row.status == "active") and currency == shop.currency
        line_total = unit * line["quantity"]
        if available:
            payable.append(line_total)
        items.append(schemas.CartLine(
            sku=line["sku"], product_id=uuid.UUID(line["product_id"]), name=name, quantity=line["quantity"],
            unit_price=_money(unit, currency), line_total=_money(line_total, currency),
            price_changed=unit != line["price"], available=available))
    subtotal = sum(payable)
    discount = 0
    coupon_view = None
    if cart.coupon is not None:
        coupon = await CouponRepository(session).get(cart.coupon)
        if coupon is None:
            coupon_view = schemas.CartCoupon(code=cart.coupon, kind=None, value=None, applies=False,
                                             reason="The coupon no longer exists")
        else:
            why = coupons.refusal(coupon, subtotal=subtotal, now=utcnow(),
                                  used_by_customer=await coupons.used_by(session, coupon, request.customer))
            if why is None:
                discount = coupons.discount_of(coupon.kind, coupon.value, subtotal)
            coupon_view = schemas.CartCoupon(code=coupon.code, kind=coupon.kind,
                                             value=coupon.value, applies=why is None,
                                             reason=why.detail if why else None)
    totals = coupons.compute_totals(payable, discount, shop.tax_rate_bp)
    return schemas.Cart(
        id=cart.owner.key if cart.owner.kind == "guest" and cart.owner.key else None, version=cart.version,
        currency=shop.currency,
        items=items, coupon=coupon_view, subtotal=_money(totals.subtotal, shop.currency),
        discount=_money(totals.discount, shop.currency), tax=_money(totals.tax, shop.currency),
        total=_money(totals.total, shop.currency))


async def read_cart(session: AsyncSession, request: CartRequest) -> schemas.Cart:
    """A customer's own cart (empty until they add something); a guest's cart by X-Cart-Id (an
    unknown or expired id is a 404 problem); no id at all is an empty cart, not stored."""
    if request.customer is not None:
        owner = Owner("user", request.customer)
        cart = await request.store.load(session, owner) or StoredCart(owner=owner)
    elif request.cart_id is None:
        return await render(session, request, StoredCart(owner=Owner("guest", "")))  # none yet: no id
    else:
        guest = request.guest_owner()
        found = await request.store.load(session, guest) if guest else None
        if found is None:
            raise CartNotFound("No cart has this X-Cart-Id (it may have expired or been merged)")
        cart = found
    return await render(session, request, cart)


# Changing ---------------------------------------------------------------------------------------------

# A change returns False when it leaves the cart as it was: nothing is stored, no version taken.
Change = Callable[[StoredCart], Awaitable[bool | None]]


async def _change(session: AsyncSession, request: CartRequest, kind: str, change: Change, *,
                  creates: bool, then: Callable[[], Awaitable[bool]] | None = None) -> schemas.Cart:
    """Apply `change` to the caller's cart and store it as the next version, again from the newer
    cart when a concurrent change won; a guest without a (live) cart gets a new one if `creates`.
    `then` runs with the save (see CartStore.save): False undoes it and the change starts again."""
    wanted = parse_if_match(request.if_match)
    try:
        known: StoredCart | None = None
        fresh = False  # a guest cart of a new id, absent until stored
        if request.customer is not None:
            owner = Owner("user", request.customer)
        else:
            owner = request.guest_owner() or Owner("guest", "")
            known = await request.store.load(session, owner, for_change=True) if owner.key else None
            if known is None:
                owner, fresh = _new_guest(creates), True
        for attempt in range(request.settings.mutation_attempts):
            if attempt:
                await asyncio.sleep(random.uniform(0, 0.002 * attempt))  # another change won: let it land
            cart = known or await request.store.load(session, owner, for_change=True)
            known = None
            if cart is None:
                if owner.kind == "guest" and not fresh:
                    # Merged or expired meanwhile: its id is dead, never stored again.
                    owner, fresh = _new_guest(creates), True
                cart = StoredCart(owner=owner)
            _check_version(wanted, cart)
            if await change(cart) is False:
                MUTATIONS.labels(kind, "ok").inc()
                return await render(session, request, cart)
            await _remember_seen(session, request, cart.owner)
            await _resnapshot(session, cart)
            if await request.store.save(session, cart, then=then):
                view = await render(session, request, cart)
                MUTATIONS.labels(kind, "ok").inc()
                return view
        raise CartBusy()
    except AppError as exc:
        MUTATIONS.labels(kind, exc.type).inc()
        raise


async def _remember_seen(session: AsyncSession, request: CartRequest, owner: Owner) -> None:
    """Put the offers the change used into the replica. For a cart stored in Redis, in a unit of
    work of its own committed now, before the Redis write: once Redis holds the change, the request
    has nothing left to commit that could fail and be answered "undone, retry" (the replica is a
    cache; an offer remembered for a change that is then refused is as true as any other)."""
    offers = list(request.seen.values())
    request.seen.clear()
    if not offers:
        return
    if request.store.in_redis(owner) and request.own_session is not None:
        async with request.own_session() as own:
            await _remember_catalog(own, offers)
    else:
        await _remember_catalog(session, offers)


def _new_guest(creates: bool) -> Owner:
    """A new guest cart's owner: the id is ours (never the client's), 192 random bits."""
    if not creates:
        raise CartNotFound("No cart has this X-Cart-Id (it may have expired or been merged)")
    return Owner("guest", secrets.token_urlsafe(24))


def _line(cart: StoredCart, sku: str) -> dict[str, Any] | None:
    return next((line for line in cart.lines if line["sku"] == sku), None)


async def _checked_offer(request: CartRequest, sku: str, quantity: int) -> SkuOffer:
    """The catalog's current offer of `sku` for `quantity` units: it exists, is for sale in the shop's
    currency, the quantity is within the line maximum, and inventory has that many."""
    if quantity > request.settings.max_line_quantity:
        raise QuantityOverLimit(f"A line holds at most {request.settings.max_line_quantity} units",
                                max_quantity=request.settings.max_line_quantity)
    # Both asked at once; their answers are judged in order (an unknown SKU is a 404 even while
    # inventory is down).
    offers, stock = await asyncio.gather(_catalog(request, [sku]), _availability(request, [sku]),
                                         return_exceptions=True)
    if isinstance(offers, BaseException):
        raise offers
    offer = offers.get(sku)
    if offer is None:
        raise SkuNotFound(f"No SKU {sku!r} is for sale", sku=sku)
    shop = request.shop
    if offer.price.currency != shop.currency:
        raise CurrencyMismatch(f"{sku} is priced in {offer.price.currency}, the shop in {shop.currency}")
    if isinstance(stock, BaseException):
        raise stock
    available = stock.get(sku, 0)
    if quantity > available:
        raise InsufficientStock(f"Only {available} of {sku} available", sku=sku, available=available)
    request.seen[sku] = offer
    return offer


def _put_line(cart: StoredCart, offer: SkuOffer, quantity: int) -> None:
    line = _line(cart, offer.sku)
    fields = {"sku": offer.sku, "product_id": str(offer.product_id), "quantity": quantity,
              "name": _line_name(offer.product_name, offer.variant_name),
              "price": offer.price.amount, "currency": offer.price.currency}
    if line is None:
        cart.lines.append(fields)
    else:
        line.update(fields)


async def add_item(session: AsyncSession, request: CartRequest, item: schemas.CartItemCreate) -> schemas.Cart:
    async def change(cart: StoredCart) -> None:
        line = _line(cart, item.sku)
        if line is None and len(cart.lines) >= request.settings.max_lines:
            raise TooManyLines(f"A cart holds at most {request.settings.max_lines} lines")
        quantity = (line["quantity"] if line else 0) + item.quantity
        _put_line(cart, await _checked_offer(request, item.sku, quantity), quantity)

    return await _change(session, request, "add", change, creates=True)


async def set_quantity(session: AsyncSession, request: CartRequest, sku: str,
                       data: schemas.CartItemUpdate) -> schemas.Cart:
    async def change(cart: StoredCart) -> None:
        if _line(cart, sku) is None:
            raise CartItemNotFound(f"The cart has no line of {sku}")
        _put_line(cart, await _checked_offer(request, sku, data.quantity), data.quantity)

    return await _change(session, request, "set", change, creates=False)


async def remove_item(session: AsyncSession, request: CartRequest, sku: str) -> schemas.Cart:
    async def change(cart: StoredCart) -> None:
        if _line(cart, sku) is None:
            raise CartItemNotFound(f"The cart has no line of {sku}")
        cart.lines = [line for line in cart.lines if line["sku"] != sku]

    return await _change(session, request, "remove", change, creates=False)


async def apply_coupon(session: AsyncSession, request: CartRequest, data: schemas.CouponApply) -> schemas.Cart:
    async def change(cart: StoredCart) -> None:
        coupon = await CouponRepository(session).get(data.code)
        if coupon is None:
            raise UnknownCoupon(f"There is no coupon {data.code!r}")
        why = coupons.refusal(coupon, subtotal=(await render(session, request, cart)).subtotal.amount,
                              now=utcnow(),
                              used_by_customer=await coupons.used_by(session, coupon, request.customer))
        if why is not None:
            raise why
        cart.coupon = coupon.code

    return await _change(session, request, "coupon_apply", change, creates=False)


async def remove_coupon(session: AsyncSession, request: CartRequest) -> schemas.Cart:
    async def change(cart: StoredCart) -> bool:
        if cart.coupon is None:
            return False  # nothing to remove: the cart (and its version) stays as it is
        cart.coupon = None
        return True

    return await _change(session, request, "coupon_remove", change, creates=False)


async def merge(session: AsyncSession, request: CartRequest, data: schemas.CartMerge) -> schemas.Cart:
    """Move a guest cart into the customer's: quantities summed, capped at the line maximum and at
    what inventory has; the guest cart is deleted. Merging the same guest cart again changes nothing."""
    if request.customer is None:
        raise Unauthorized("Sign in to merge a guest cart into your own")
    guest_owner = Owner("guest", data.guest_cart_id)
    merged_now: list[StoredCart] = []

    async def change(cart: StoredCart) -> None:
        merged_now.clear()
        if data.guest_cart_id in cart.merged:
            raise _AlreadyMerged(cart)
        guest = await request.store.load(session, guest_owner, for_change=True)
        if guest is None:
            raise CartNotFound("No guest cart has this id (it may have expired or been merged)")
        await _combine(session, request, cart, guest)
        cart.merged.append(data.guest_cart_id)
        merged_now.append(guest)

    async def remove_guest() -> bool:
        # Only the version merged: a guest change since then (or a concurrent merge) undoes this
        # save, and the merge starts again from the newer guest cart (or answers 404, it is gone).
        return await request.store.remove(session, merged_now[0])

    try:
        return await _change(session, request, "merge", change, creates=True, then=remove_guest)
    except _AlreadyMerged as done:
        MUTATIONS.labels("merge", "ok").inc()
        return await render(session, request, done.cart)


class _AlreadyMerged(Exception):  # a way out of the change, not an error
    def __init__(self, cart: StoredCart) -> None:
        super().__init__("already merged")
        self.cart = cart


async def _combine(session: AsyncSession, request: CartRequest, cart: StoredCart, guest: StoredCart) -> None:
    wanted = {line["sku"]: line["quantity"] for line in cart.lines}
    for line in guest.lines:
        wanted[line["sku"]] = wanted.get(line["sku"], 0) + line["quantity"]
    skus = list(wanted)
    offers = await _catalog(request, skus)
    shop = request.shop
    available = await _availability(request, [s for s in skus if s in offers])
    request.seen.update(offers)
    own = {line["sku"] for line in cart.lines}
    for sku in skus:
        offer = offers.get(sku)
        if sku not in own and (offer is None or offer.price.currency != shop.currency):
            continue  # a guest line no longer for sale is left behind
        quantity = min(wanted[sku], request.settings.max_line_quantity, available.get(sku, 0))
        if offer is None or quantity <= 0:
            continue  # the customer's own line stays as it was
        if sku not in own and len(cart.lines) >= request.settings.max_lines:
            continue
        _put_line(cart, offer, quantity)
    if cart.coupon is None and guest.coupon is not None:
        coupon = await CouponRepository(session).get(guest.coupon)
        if coupon is not None and not await coupons.used_by(session, coupon, request.customer):
            cart.coupon = coupon.code


# Checkout ---------------------------------------------------------------------------------------------

async def take_ordered(session: AsyncSession, store: CartStore, event: OrderCreatedV1) -> bool:
    """Take what an order was placed with out of its customer's cart, now that the order exists:
    each ordered SKU's quantity comes off its line (a line added or raised since stays, less what was
    ordered), and the order's coupon leaves the cart. False when there was nothing to take (no cart,
    or taken already). Raises `TransientConflict` when the cart changed meanwhile (done again)."""
    cart = await store.load(session, Owner("user", str(event.customer_id)), for_change=True)
    if cart is None:
        return False
    ordered: dict[str, int] = {}
    for item in event.lines:
        ordered[item.sku] = ordered.get(item.sku, 0) + item.quantity
    lines = []
    for line in cart.lines:
        left = int(line["quantity"]) - ordered.get(line["sku"], 0)
        if left > 0:
            lines.append({**line, "quantity": left})
    coupon = None if event.coupon_code is not None and cart.coupon == event.coupon_code else cart.coupon
    if lines == cart.lines and coupon == cart.coupon:
        return False
    cart.lines, cart.coupon = lines, coupon
    if not await store.save(session, cart):
        raise TransientConflict("the cart changed while the order's lines were taken out of it")
    log.info("cart.ordered_lines_taken", order_id=str(event.order_id), lines_left=len(lines))
    return True
