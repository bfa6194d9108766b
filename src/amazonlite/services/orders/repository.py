"""Every query of the orders. Each runs in a session scoped to one tenant (the kernel adds the tenant
to every statement on these classes), except `OrderRepository.due`, which the deadline sweeper runs
in its one cross-tenant session.

An order changes only through `OrderRepository.step`: one conditional UPDATE over the version the
step was decided on, so two triggers of one order (an event, the customer, the sweeper) never both
apply on the same state, on any database; the one that loses finds the order moved and decides
again.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.services.orders.models import Order, OrderStep
from amazonlite.services.orders.saga import OPEN


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, order_id: uuid.UUID) -> Order | None:
        return await self.session.scalar(select(Order).where(Order.id == order_id)
                                         .execution_options(populate_existing=True))

    async def page_of(self, customer_id: uuid.UUID, *, limit: int, before: uuid.UUID | None) -> Sequence[Order]:
        """The customer's orders, newest first (ids are time-ordered), before the id `before`."""
        query = select(Order).where(Order.customer_id == customer_id)
        if before is not None:
            query = query.where(Order.id < before)
        return (await self.session.scalars(query.order_by(Order.id.desc()).limit(limit))).all()

    def add(self, order: Order) -> Order:
        self.session.add(order)
        return order

    async def step(self, order: Order, **values: Any) -> bool:
        """Write `values` to the order if it is still at the version it was read at (and count a
        version more); False when another step got there first (nothing written)."""
        result = cast(CursorResult[Any], await self.session.execute(
            update(Order).where(Order.id == order.id, Order.version == order.version)
            .values(version=Order.version + 1, **values)
            .execution_options(synchronize_session=False)))
        return result.rowcount == 1

    async def due(self, now: dt.datetime, *, limit: int) -> list[tuple[str, uuid.UUID]]:
        """Open orders past their deadline (tenant and id), the most overdue first."""
        query = (select(Order.tenant_id, Order.id)
                 .where(Order.status.in_(sorted(OPEN)), Order.deadline_at <= now)
                 .order_by(Order.deadline_at).limit(limit))
        return [(row.tenant_id, row.id) for row in await self.session.execute(query)]


class StepRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, step: OrderStep) -> OrderStep:
        self.session.add(step)
        return step

    async def of_order(self, order_id: uuid.UUID) -> Sequence[OrderStep]:
        """The order's steps in the order they happened."""
        return (await self.session.scalars(select(OrderStep).where(OrderStep.order_id == order_id)
                                           .order_by(OrderStep.id))).all()

    async def of_orders(self, order_ids: Sequence[uuid.UUID]) -> Sequence[OrderStep]:
        """The steps of these orders, each order's in the order they happened."""
        if not order_ids:
            return []
        return (await self.session.scalars(select(OrderStep).where(OrderStep.order_id.in_(order_ids))
                                           .order_by(OrderStep.id))).all()

