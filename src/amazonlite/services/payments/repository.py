"""Every query of payments. Each runs in a session scoped to one tenant (the kernel adds the tenant to
every statement on these classes).

A payment changes only through `PaymentRepository.step`: one conditional UPDATE over the version the
change was decided on, so two triggers of one payment (a webhook, its redelivery racing it, the
order's cancellation, the customer's callback) never both apply on the same state, on any database;
the one that loses finds the payment moved and decides again.
"""

from __future__ import annotations

import datetime as dt
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
        """Write the order's row; False when it has one already (another delivery of its creation, or
        an event about it that arrived first). A concurrent writer of the row waits for this unit of
        work to end, then finds it."""
        try:
            async with self.session.begin_nested():
                self.session.add(order)
        except IntegrityError:
            return False
        return True

    async def write_before_creation(self, order: KnownOrder, **values: Any) -> bool:
        """Write `values` on a row written early (the creation's details, or an event noted before
        the creation), if the order's creation has not completed it yet; False when it has (then
        nothing is written)."""
        result = cast(CursorResult[Any], await self.session.execute(
            update(KnownOrder).where(KnownOrder.id == order.id, KnownOrder.customer_id.is_(None))
            .values(**values).execution_options(synchronize_session=False)))
        return result.rowcount == 1


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

    async def awaiting_webhooks(self, provider: str, chosen_before: dt.datetime, *,
                                limit: int) -> list[Payment]:
        """Payments of `provider` (every tenant: an unscoped session) whose customer chose an outcome
        on the hosted page before `chosen_before` and that no webhook has moved since, oldest first."""
        return list((await self.session.scalars(
            select(Payment).where(Payment.status == "requested", Payment.provider == provider,
                                  Payment.hosted_outcome.is_not(None), Payment.updated_at < chosen_before)
            .order_by(Payment.updated_at).limit(limit))).all())

    async def due_for_capture(self, *, limit: int) -> list[tuple[str, uuid.UUID]]:
        """Payments of confirmed orders whose money is still to be captured (tenant and id; every
        tenant: an unscoped session), the longest waiting first."""
        query = (select(Payment.tenant_id, Payment.id).where(Payment.status == "capture_due")
                 .order_by(Payment.updated_at).limit(limit))
        return [(row.tenant_id, row.id) for row in await self.session.execute(query)]

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
