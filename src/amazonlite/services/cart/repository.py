"""Every query of the cart service; each runs in a tenant-scoped session."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.services.cart.models import Cart, Coupon, CouponRedemption, SkuPrice


class CartRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, owner: str, *, now: dt.datetime) -> Any | None:
        """The cart's version, document and expiry (a column read), unless it expired."""
        query = (select(Cart.version, Cart.document, Cart.expires_at)
                 .where(Cart.owner == owner, or_(Cart.expires_at.is_(None), Cart.expires_at > now)))
        return (await self.session.execute(query)).one_or_none()

    async def add(self, cart: Cart) -> bool:
        """Store a new cart; False when a concurrent request created the owner's cart first."""
        try:
            async with self.session.begin_nested():
                self.session.add(cart)
        except IntegrityError:
            return False
        return True

    async def replace(self, owner: str, expected_version: int, document: dict[str, Any], *, now: dt.datetime,
                      expires_at: dt.datetime | None) -> bool:
        """Compare-and-set: write version `expected_version + 1` only if the cart is still at
        `expected_version` (a single conditional update; a concurrent writer makes it match nothing)."""
        result = await self.session.execute(
            update(Cart).where(Cart.owner == owner, Cart.version == expected_version)
            .values(version=expected_version + 1, document=document, updated_at=now, expires_at=expires_at)
            .execution_options(synchronize_session=False))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def delete(self, owner: str, version: int) -> bool:
        """Delete the owner's cart if it is still at `version`; False when it is gone or changed (a
        concurrent request merged or changed it)."""
        result = await self.session.execute(delete(Cart).where(Cart.owner == owner, Cart.version == version)
                                            .execution_options(synchronize_session=False))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def touch(self, owner: str, *, expires_at: dt.datetime) -> None:
        await self.session.execute(update(Cart).where(Cart.owner == owner).values(expires_at=expires_at)
                                   .execution_options(synchronize_session=False))

    async def purge_expired(self, *, now: dt.datetime, limit: int = 500) -> int:
        """Delete up to `limit` expired carts; how many went."""
        ids = (await self.session.scalars(select(Cart.id).where(Cart.expires_at.is_not(None), Cart.expires_at <= now)
                                          .limit(limit))).all()
        if not ids:
            return 0
        await self.session.execute(delete(Cart).where(Cart.id.in_(ids), Cart.expires_at <= now)
                                   .execution_options(synchronize_session=False))
        return len(ids)


class SkuPriceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of(self, skus: Collection[str]) -> dict[str, Any]:
        """The replica's rows of `skus` as columns, by SKU."""
        if not skus:
            return {}
        query = select(SkuPrice.sku, SkuPrice.product_id, SkuPrice.product_name, SkuPrice.variant_name,
                       SkuPrice.status, SkuPrice.price_amount, SkuPrice.currency, SkuPrice.updated_at
                       ).where(SkuPrice.sku.in_(list(skus)))
        return {row.sku: row for row in (await self.session.execute(query)).all()}

    async def rows(self, skus: Collection[str]) -> dict[str, SkuPrice]:
        if not skus:
            return {}
        found = await self.session.scalars(select(SkuPrice).where(SkuPrice.sku.in_(list(skus))))
        return {row.sku: row for row in found.all()}

    async def of_product(self, product_id: uuid.UUID) -> Sequence[SkuPrice]:
        return (await self.session.scalars(select(SkuPrice).where(SkuPrice.product_id == product_id))).all()

    async def add(self, row: SkuPrice) -> bool:
        """Insert a new SKU; False when a concurrent writer inserted it first."""
        try:
            async with self.session.begin_nested():
                self.session.add(row)
        except IntegrityError:
            return False
        return True


class CouponRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, code: str) -> Coupon | None:
        return await self.session.scalar(select(Coupon).where(Coupon.code == code))

    async def lock(self, code: str) -> Coupon | None:
        """The coupon, locked until the transaction ends: the uses of one coupon are counted one
        transaction at a time (and a redemption's foreign-key check then needs no lock of its own
        that a concurrent count could wait on: MariaDB's deadlock of two inserts' shared locks on
        the parent row, each waiting to update it)."""
        query = (select(Coupon).where(Coupon.code == code).with_for_update()
                 .execution_options(populate_existing=True))
        return await self.session.scalar(query)

    async def page(self, *, limit: int, after: str | None) -> Sequence[Coupon]:
        query = select(Coupon)
        if after is not None:
            query = query.where(Coupon.code > after)
        return (await self.session.scalars(query.order_by(Coupon.code).limit(limit))).all()

    async def add(self, coupon: Coupon) -> bool:
        try:
            async with self.session.begin_nested():
                self.session.add(coupon)
        except IntegrityError:
            return False
        return True

    async def delete(self, coupon: Coupon) -> None:
        await self.session.delete(coupon)

    async def take_use(self, coupon_id: uuid.UUID) -> bool:
        """Count one use, only while uses are left: one conditional update, so concurrent
        confirmations never count past the limit."""
        result = await self.session.execute(
            update(Coupon).where(Coupon.id == coupon_id,
                                 or_(Coupon.usage_limit.is_(None), Coupon.used_count < Coupon.usage_limit))
            .values(used_count=Coupon.used_count + 1).execution_options(synchronize_session=False))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def give_use_back(self, coupon_id: uuid.UUID) -> None:
        await self.session.execute(
            update(Coupon).where(Coupon.id == coupon_id, Coupon.used_count > 0)
            .values(used_count=Coupon.used_count - 1).execution_options(synchronize_session=False))

    async def used_by(self, coupon_id: uuid.UUID, customer_id: uuid.UUID) -> bool:
        """Whether the customer has a counted use of the coupon."""
        query = select(func.count()).select_from(CouponRedemption).where(
            CouponRedemption.coupon_id == coupon_id, CouponRedemption.customer_id == customer_id,
            CouponRedemption.outcome == "counted")
        return bool(await self.session.scalar(query))

    async def redemption(self, order_id: uuid.UUID) -> CouponRedemption | None:
        return await self.session.scalar(select(CouponRedemption).where(CouponRedemption.order_id == order_id))


    async def record(self, redemption: CouponRedemption) -> bool:
        """Insert the order's redemption; False when the order already has one, or (with a
        `once_key`) the customer already has a counted use of this coupon."""
        try:
            async with self.session.begin_nested():
                self.session.add(redemption)
        except IntegrityError:
            return False
        return True

    async def release(self, redemption_id: uuid.UUID, *, outcome: str, from_outcome: str) -> bool:
        """Move a redemption from one outcome to another (once: a conditional update)."""
        result = await self.session.execute(
            update(CouponRedemption)
            .where(and_(CouponRedemption.id == redemption_id, CouponRedemption.outcome == from_outcome))
            .values(outcome=outcome, once_key=None).execution_options(synchronize_session=False))
        return bool(result.rowcount)  # type: ignore[attr-defined]
