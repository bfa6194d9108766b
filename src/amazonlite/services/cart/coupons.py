"""Coupons: the tenant admin's CRUD, whether one applies to a cart, the discount it gives, the
totals (with tax) a cart shows, and counting uses from order events."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.platform.errors import AppError
from amazonlite.platform.pagination import InvalidCursor, decode_cursor, encode_cursor
from amazonlite.services.cart.errors import (
    CouponAlreadyUsed,
    CouponExhausted,
    CouponExpired,
    CouponMinimumNotMet,
    CouponNotFound,
    CouponNotStarted,
    DuplicateCoupon,
    InvalidCoupon,
)
from amazonlite.services.cart.models import Coupon, CouponRedemption
from amazonlite.services.cart.repository import CouponRepository
from amazonlite.services.cart.schemas import CouponCreate, CouponUpdate, terms_problem

log = structlog.get_logger("amazonlite.cart")


# Totals -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Totals:
    subtotal: int
    discount: int
    tax: int
    total: int
    line_discounts: tuple[int, ...]
    line_taxes: tuple[int, ...]


def allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """Split `amount` across lines in proportion to `weights` (largest remainder): each line gets
    the floor of its exact share, then the units left over go one each to the lines with the largest
    remainders (the earlier line first on a tie), so the parts sum to `amount` exactly."""
    total = sum(weights)
    if total == 0 or amount == 0:
        return [0] * len(weights)
    shares = [divmod(amount * w, total) for w in weights]
    parts = [q for q, _ in shares]
    left = amount - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-shares[i][1], i))
    for i in order[:left]:
        parts[i] += 1
    return parts


def round_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator to the nearest integer, halves to the even one (exact)."""
    return int((Decimal(numerator) / Decimal(denominator)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def compute_totals(line_totals: Sequence[int], discount: int, tax_rate_bp: int) -> Totals:
    """A cart's money, in integer minor units. The discount (at most the subtotal) is allocated
    across the lines in proportion to their totals (largest remainder); each line's tax is
    round_half_even((line total - its discount) * bp / 10000); tax is their sum; total = subtotal -
    discount + tax."""
    subtotal = sum(line_totals)
    discount = max(0, min(discount, subtotal))
    discounts = allocate(discount, line_totals)
    taxes = [round_half_even((amount - off) * tax_rate_bp, 10_000) for amount, off in zip(line_totals, discounts,
                                                                                       strict=True)]
    tax = sum(taxes)
    return Totals(subtotal, discount, tax, subtotal - discount + tax, tuple(discounts), tuple(taxes))


def discount_of(kind: str, value: int, subtotal: int) -> int:
    """percent: round_half_even(subtotal * value / 100); fixed: the value, never more than the subtotal."""
    if kind == "percent":
        return min(subtotal, round_half_even(subtotal * value, 100))
    return min(subtotal, value)


# Whether a coupon applies -----------------------------------------------------------------------

def refusal(coupon: Coupon, *, subtotal: int, now: dt.datetime, used_by_customer: bool) -> AppError | None:
    """Why the coupon cannot be applied to a cart with this subtotal now, or None."""
    if coupon.starts_at is not None and now < coupon.starts_at:
        return CouponNotStarted(f"{coupon.code} is valid from {coupon.starts_at.isoformat()}")
    if coupon.ends_at is not None and now >= coupon.ends_at:
        return CouponExpired(f"{coupon.code} expired at {coupon.ends_at.isoformat()}")
    if coupon.usage_limit is not None and coupon.used_count >= coupon.usage_limit:
        return CouponExhausted(f"{coupon.code} has no uses left")
    if coupon.once_per_customer and used_by_customer:
        return CouponAlreadyUsed(f"{coupon.code} can be used once per customer")
    if subtotal < coupon.min_subtotal:
        return CouponMinimumNotMet(f"{coupon.code} needs a subtotal of at least {coupon.min_subtotal}",
                                   min_subtotal=coupon.min_subtotal)
    return None


async def used_by(session: AsyncSession, coupon: Coupon, customer_id: str | None) -> bool:
    if not coupon.once_per_customer or customer_id is None:
        return False
    try:
        customer = uuid.UUID(customer_id)
    except ValueError:
        return False  # not a customer id of ours: no order of it can have used the coupon
    return await CouponRepository(session).used_by(coupon.id, customer)


# Admin ------------------------------------------------------------------------------------------

async def list_coupons(session: AsyncSession, *, limit: int, cursor: str | None
                       ) -> tuple[Sequence[Coupon], str | None]:
    after = None
    if cursor is not None:
        (after,) = decode_cursor(cursor, length=1)
        if not isinstance(after, str) or len(after) > 32:
            raise InvalidCursor("Use the next_cursor of a previous page")
    rows = await CouponRepository(session).page(limit=limit + 1, after=after)
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], encode_cursor([rows[limit - 1].code])


async def get_coupon(session: AsyncSession, code: str) -> Coupon:
    coupon = await CouponRepository(session).get(code.upper())
    if coupon is None:
        raise CouponNotFound(f"There is no coupon {code.upper()!r}")
    return coupon


async def create_coupon(session: AsyncSession, data: CouponCreate) -> Coupon:
    coupon = Coupon(code=data.code, kind=data.kind, value=data.value, min_subtotal=data.min_subtotal,
                    starts_at=data.starts_at, ends_at=data.ends_at, usage_limit=data.usage_limit,
                    once_per_customer=data.once_per_customer, used_count=0)
    repository = CouponRepository(session)
    if await repository.get(data.code) is not None or not await repository.add(coupon):
        raise DuplicateCoupon(f"A coupon already has the code {data.code!r}")
    log.info("cart.coupon_created", code=coupon.code)
    return coupon


async def update_coupon(session: AsyncSession, code: str, changes: CouponUpdate) -> Coupon:
    coupon = await get_coupon(session, code)
    if changes.once_per_customer and not coupon.once_per_customer and coupon.used_count > 0:
        # The uses counted so far carry no once-per-customer key: the flag would not cover them.
        raise InvalidCoupon("once_per_customer cannot be turned on after uses were counted; "
                            "create a new coupon instead")
    for name in changes.model_fields_set:
        setattr(coupon, name, getattr(changes, name))
    problem = terms_problem(coupon.kind, coupon.value, coupon.starts_at, coupon.ends_at)
    if problem is not None:
        raise InvalidCoupon(problem)
    await session.flush()
    return coupon


async def delete_coupon(session: AsyncSession, code: str) -> None:
    coupon = await get_coupon(session, code)
    await CouponRepository(session).delete(coupon)
    await session.flush()
    log.info("cart.coupon_deleted", code=coupon.code)


# Counting uses from order events ----------------------------------------------------------------

async def record_confirmation(session: AsyncSession, *, order_id: uuid.UUID, customer_id: uuid.UUID,
                              code: str) -> str:
    """order.confirmed.v1 with a coupon: record the order's redemption once and count it if a use is
    left (and, for a once-per-customer coupon, the customer has no counted use). Returns the outcome,
    or "duplicate" when the order was recorded before."""
    repository = CouponRepository(session)
    coupon = await repository.lock(code.upper())
    if coupon is None:
        log.warning("cart.coupon_confirmation_unknown", code=code, order_id=str(order_id))
        return "unknown_coupon"
    once_key = str(customer_id) if coupon.once_per_customer else None
    redemption = CouponRedemption(coupon_id=coupon.id, order_id=order_id, customer_id=customer_id,
                                  outcome="counted", once_key=once_key)
    if not await repository.record(redemption):
        if await repository.redemption(order_id) is not None:
            return "duplicate"  # this order was recorded (confirmed, or cancelled first) already
        # The customer has a counted use of this once-per-customer coupon: record, do not count.
        if not await repository.record(CouponRedemption(coupon_id=coupon.id, order_id=order_id,
                                                        customer_id=customer_id, outcome="already_used")):
            return "duplicate"
        log.warning("cart.coupon_used_again", code=coupon.code, order_id=str(order_id),
                    customer_id=str(customer_id))
        return "already_used"
    if not await repository.take_use(coupon.id):
        await repository.release(redemption.id, outcome="over_limit", from_outcome="counted")
        log.warning("cart.coupon_over_limit", code=coupon.code, order_id=str(order_id))
        return "over_limit"
    log.info("cart.coupon_counted", code=coupon.code, order_id=str(order_id))
    return "counted"


async def record_cancellation(session: AsyncSession, *, order_id: uuid.UUID, customer_id: uuid.UUID,
                              code: str) -> str:
    """order.cancelled.v1 with a coupon: give a counted use back, once. An order cancelled before
    its confirmation arrived is recorded as such, so that a late confirmation counts nothing."""
    repository = CouponRepository(session)
    coupon = await repository.lock(code.upper())  # the same order as a confirmation: coupon, then redemption
    if coupon is None:
        return "unknown_coupon"
    redemption = await repository.redemption(order_id)
    if redemption is None:
        if await repository.record(CouponRedemption(coupon_id=coupon.id, order_id=order_id,
                                                    customer_id=customer_id, outcome="cancelled")):
            return "cancelled"
        redemption = await repository.redemption(order_id)  # recorded meanwhile
        if redemption is None:
            return "cancelled"
    if redemption.outcome != "counted":
        return "unchanged"
    if await repository.release(redemption.id, outcome="released", from_outcome="counted"):
        await repository.give_use_back(redemption.coupon_id)
        log.info("cart.coupon_released", order_id=str(order_id))
        return "released"
    return "unchanged"
