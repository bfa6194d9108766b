"""Every query of payments. Each runs in a session scoped to one tenant (the kernel adds the tenant to
every statement on these classes).

A payment changes only through `PaymentRepository.step`: one conditional UPDATE over the version the
change was decided on, so two triggers of one payment (a webhook, its redelivery racing it, the
order's cancellation, the customer's callback) never both apply on the same state, on any database;
the one that loses finds the payment moved and decides again.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.services.payments.models import KnownOrder, Payment, Refund, WebhookReceipt


class KnownOrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, order_id: uuid.UUID) -> KnownOrder | None:
        return await self.session.scalar(select(KnownOrder).where(KnownOrder.order_id == order_id)
                                         .execution_options(populate_existing=True))

    async def add(self, order: KnownOrder) -> bool:
        """Remember a new order; False when it was known already (another delivery of its creation)."""
        try:
            async with self.session.begin_nested():
                self.session.add(order)
        except IntegrityError:
            return False
        return True


class PaymentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, payment_id: uuid.UUID) -> Payment | None:
        return await self.session.scalar(select(Payment).where(Payment.id == payment_id)
                                         .execution_options(populate_existing=True))

    async def of_order(self, order_id: uuid.UUID) -> Payment | None:
        return await self.session.scalar(select(Payment).where(Payment.order_id == order_id)
                                         .execution_options(populate_existing=True))

    async def by_reference(self, provider: str, reference: str) -> Payment | None:
        return await self.session.scalar(select(Payment).where(Payment.provider == provider,
                                                               Payment.reference == reference)
                                         .execution_options(populate_existing=True))

    async def by_provider_payment_id(self, provider: str, provider_payment_id: str) -> Payment | None:
        return await self.session.scalar(select(Payment).where(Payment.provider == provider,
                                                               Payment.provider_payment_id == provider_payment_id)
                                         .order_by(Payment.id).limit(1)
                                         .execution_options(populate_existing=True))

    async def add(self, payment: Payment) -> bool:
        """Store the order's new payment; False when the order has one already (a concurrent delivery
        opened it first)."""
        try:
            async with self.session.begin_nested():
                self.session.add(payment)
        except IntegrityError:
            return False
        return True

    async def step(self, payment: Payment, **values: Any) -> bool:
        """Write `values` to the payment if it is still at the version it was read at (and count a
        version more); False when another change got there first (nothing written)."""
        result = cast(CursorResult[Any], await self.session.execute(
            update(Payment).where(Payment.id == payment.id, Payment.version == payment.version)
            .values(version=Payment.version + 1, **values)
            .execution_options(synchronize_session=False)))
        return result.rowcount == 1


class ReceiptRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, receipt: WebhookReceipt) -> bool:
        """Record a webhook event as applied; False when it was recorded before (a redelivery, or a
        concurrent delivery of the same event that committed first)."""
        try:
            async with self.session.begin_nested():
                self.session.add(receipt)
        except IntegrityError:
            return False
        return True


class RefundRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, refund: Refund) -> Refund:
        self.session.add(refund)
        return refund

    async def of_payment(self, payment_id: uuid.UUID) -> list[Refund]:
        return list((await self.session.scalars(select(Refund).where(Refund.payment_id == payment_id)
                                                .order_by(Refund.id))).all())

    async def mark_processed(self, payment_id: uuid.UUID) -> int:
        """The payment's issued refunds went through (the provider's webhook said so); how many."""
        result = cast(CursorResult[Any], await self.session.execute(
            update(Refund).where(Refund.payment_id == payment_id, Refund.status == "issued")
            .values(status="processed").execution_options(synchronize_session=False)))
        return result.rowcount
