"""Every query of the inventory. Each runs in a session scoped to one tenant (the kernel adds the
tenant to every statement on these classes, joins included), except `ReservationRepository.expired`,
which the sweeper runs in its one cross-tenant session.

Stock rows change only through single conditional UPDATEs (`take`, `give_back`, `deduct`,
`set_on_hand` after `lock`): the database checks the condition on the latest committed row under
the row's lock, so no interleaving oversells, and a caller that changes several rows does so in
(sku, warehouse) order, so two such callers never wait on each other in a cycle.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    CursorResult,
    String,
    Uuid,
    and_,
    bindparam,
    func,
    null,
    select,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.platform.tenancy import insert_together
from amazonlite.services.inventory.models import (
    LedgerEntry,
    Product,
    Reservation,
    Sku,
    Stock,
    Threshold,
    Warehouse,
)

QUIET = {"synchronize_session": False}


async def _changed(session: AsyncSession, statement: Any, parameters: dict[str, Any] | None = None) -> int:
    if parameters is None:
        statement = statement.execution_options(**QUIET)
    result = cast(CursorResult[Any], await session.execute(statement, parameters))
    return result.rowcount


# The reservation path's statements, built once with bound parameters (named apart from the columns,
# which an UPDATE's parameters would otherwise set): the same statement objects each time, so
# SQLAlchemy neither rebuilds them nor recomputes their cache keys per order. The kernel still adds
# the tenant criteria to each when it runs.
_FIGURES = (select(Sku.sku, Sku.reservable, Threshold.armed, Stock.warehouse, Stock.on_hand, Stock.reserved,
                   Warehouse.priority)
            .select_from(Sku)
            .outerjoin(Threshold, and_(Threshold.sku == Sku.sku, Threshold.tenant_id == Sku.tenant_id))
            .outerjoin(Stock, and_(Stock.sku == Sku.sku, Stock.tenant_id == Sku.tenant_id))
            .outerjoin(Warehouse, and_(Warehouse.code == Stock.warehouse, Warehouse.tenant_id == Stock.tenant_id))
            .where(Sku.sku.in_(bindparam("b_skus", expanding=True))))
# The reservation path's one read: the figures, and under them the reservation status of each order
# of the run that inventory has answered already (rows with an order id).
_FIGURES_AND_STATUSES: Any = union_all(
    _FIGURES.add_columns(type_coerce(null(), Uuid()).label("order_id"), type_coerce(null(), String()).label("status")),
    select(*(null() for _ in range(7)), Reservation.order_id, Reservation.status)
    .where(Reservation.order_id.in_(bindparam("b_order_ids", expanding=True))))
_QUANTITY = bindparam("b_quantity", type_=BigInteger)
_TAKE = update(Stock).where(
    Stock.sku == bindparam("b_sku", type_=String), Stock.warehouse == bindparam("b_warehouse", type_=String),
    Stock.on_hand - Stock.reserved >= _QUANTITY,
).values(reserved=Stock.reserved + _QUANTITY).execution_options(**QUIET)


class WarehouseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all(self) -> Sequence[Warehouse]:
        return (await self.session.scalars(select(Warehouse).order_by(Warehouse.priority, Warehouse.code))).all()

    async def get(self, code: str) -> Warehouse | None:
        return await self.session.scalar(select(Warehouse).where(Warehouse.code == code))

    def add(self, warehouse: Warehouse) -> Warehouse:
        self.session.add(warehouse)
        return warehouse


class CatalogReplicaRepository:
    """The products and SKUs inventory learnt from the catalog's events."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def product(self, product_id: uuid.UUID) -> Product | None:
        return await self.session.scalar(select(Product).where(Product.product_id == product_id))

    async def skus_named(self, skus: Collection[str]) -> dict[str, Sku]:
        if not skus:
            return {}
        found = await self.session.scalars(select(Sku).where(Sku.sku.in_(skus)))
        return {s.sku: s for s in found.all()}

    async def skus_of_product(self, product_id: uuid.UUID) -> Sequence[Sku]:
        return (await self.session.scalars(select(Sku).where(Sku.product_id == product_id))).all()

    async def known(self, sku: str) -> Any:
        """The SKU's product and whether it is reservable, or None if inventory never heard of it."""
        return (await self.session.execute(select(Sku.product_id, Sku.reservable).where(Sku.sku == sku))).first()

    async def reservable_without_stock(self) -> list[str]:
        """Reservable SKUs that no warehouse has a stock row for, in SKU order."""
        stocked = select(Stock.id).where(Stock.sku == Sku.sku, Stock.tenant_id == Sku.tenant_id).exists()
        query = select(Sku.sku).where(Sku.reservable.is_(True), ~stocked).order_by(Sku.sku)
        return list((await self.session.scalars(query)).all())

    def add(self, row: Product | Sku) -> None:
        self.session.add(row)


class StockRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def figures(self, skus: Collection[str]) -> Sequence[Any]:
        """For each known SKU among `skus`: whether it is reservable, whether its restock threshold is
        armed (None without one), and each of its stock rows with its warehouse's priority (None for
        `default`); a SKU without stock has one row with no warehouse. One Core statement: no
        objects are loaded."""
        return (await self.session.execute(_FIGURES, {"b_skus": list(skus)})).all()

    async def figures_and_statuses(self, skus: Collection[str], order_ids: Collection[uuid.UUID]
                                   ) -> tuple[list[Any], dict[uuid.UUID, str]]:
        """`figures(skus)`, and the status of each of these orders' reservations that inventory has,
        in one Core statement: the reservation path reads all it needs in one round trip."""
        figures: list[Any] = []
        statuses: dict[uuid.UUID, str] = {}
        for row in await self.session.execute(_FIGURES_AND_STATUSES, {"b_skus": list(skus),
                                                                       "b_order_ids": list(order_ids)}):
            if row.order_id is None:
                figures.append(row)
            else:
                statuses[row.order_id] = row.status
        return figures, statuses

    async def lock(self, sku: str, warehouse: str) -> bool:
        """Lock the row until the transaction ends (a write that changes nothing); False if none."""
        return await _changed(self.session, update(Stock).where(Stock.sku == sku, Stock.warehouse == warehouse)
                              .values(on_hand=Stock.on_hand)) > 0

    async def one(self, sku: str, warehouse: str) -> Any:
        query = select(Stock.on_hand, Stock.reserved).where(Stock.sku == sku, Stock.warehouse == warehouse)
        return (await self.session.execute(query)).first()

    async def set_on_hand(self, sku: str, warehouse: str, on_hand: int) -> None:
        """Under the row's lock (`lock`), by its owner, after checking `on_hand` covers what is reserved."""
        await _changed(self.session, update(Stock).where(Stock.sku == sku, Stock.warehouse == warehouse)
                       .values(on_hand=on_hand))

    async def take(self, sku: str, warehouse: str, quantity: int) -> bool:
        """Reserve `quantity` if that many are available now; False (nothing changed) otherwise."""
        return await _changed(self.session, _TAKE, {"b_sku": sku, "b_warehouse": warehouse,
                                                     "b_quantity": quantity}) == 1

    async def give_back(self, sku: str, warehouse: str, quantity: int) -> bool:
        return await _changed(self.session, update(Stock).where(
            Stock.sku == sku, Stock.warehouse == warehouse, Stock.reserved >= quantity,
        ).values(reserved=Stock.reserved - quantity)) == 1

    async def restock(self, sku: str, warehouse: str, quantity: int) -> None:
        """Units that had left the warehouse (a deducted order, cancelled) are on hand again."""
        await _changed(self.session, update(Stock).where(Stock.sku == sku, Stock.warehouse == warehouse)
                       .values(on_hand=Stock.on_hand + quantity))

    async def deduct(self, sku: str, warehouse: str, quantity: int) -> bool:
        """A held quantity leaves the warehouse: on hand and reserved both go down."""
        return await _changed(self.session, update(Stock).where(
            Stock.sku == sku, Stock.warehouse == warehouse, Stock.reserved >= quantity, Stock.on_hand >= quantity,
        ).values(on_hand=Stock.on_hand - quantity, reserved=Stock.reserved - quantity)) == 1

    async def totals(self, skus: Collection[str]) -> dict[str, int]:
        """Available units per SKU over every warehouse (SKUs without stock are left out)."""
        query = (select(Stock.sku, func.sum(Stock.on_hand - Stock.reserved).label("available"))
                 .where(Stock.sku.in_(skus)).group_by(Stock.sku))
        return {row.sku: int(row.available or 0) for row in await self.session.execute(query)}

    def add(self, stock: Stock) -> Stock:
        self.session.add(stock)
        return stock


class ThresholdRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, sku: str) -> Threshold | None:
        return await self.session.scalar(select(Threshold).where(Threshold.sku == sku))

    async def with_totals(self, skus: Collection[str]) -> Sequence[Any]:
        """Each threshold among `skus` with the SKU's product and its available units now."""
        totals = (select(Stock.sku, func.sum(Stock.on_hand - Stock.reserved).label("available"))
                  .where(Stock.sku.in_(skus)).group_by(Stock.sku).subquery())
        query = (select(Threshold.sku, Threshold.threshold, Threshold.armed, Sku.product_id,
                        func.coalesce(totals.c.available, 0).label("available"))
                 .outerjoin(totals, totals.c.sku == Threshold.sku)
                 .outerjoin(Sku, and_(Sku.sku == Threshold.sku, Sku.tenant_id == Threshold.tenant_id))
                 .where(Threshold.sku.in_(skus)).order_by(Threshold.sku))
        return (await self.session.execute(query)).all()

    async def arm(self, sku: str, *, armed: bool) -> bool:
        """Flip the SKU's flag; False when it already was `armed` (another transaction flipped it)."""
        return await _changed(self.session, update(Threshold).where(
            Threshold.sku == sku, Threshold.armed.is_(not armed)).values(armed=armed)) == 1

    async def low_page(self, *, limit: int, after: str | None) -> Sequence[Any]:
        """SKUs whose available units are at or below their threshold, in SKU order, from `after`."""
        totals = (select(Stock.sku, func.sum(Stock.on_hand - Stock.reserved).label("available"))
                  .group_by(Stock.sku).subquery())
        available = func.coalesce(totals.c.available, 0)
        query = (select(Threshold.sku, Threshold.threshold, available.label("available"))
                 .outerjoin(totals, totals.c.sku == Threshold.sku)
                 .where(available <= Threshold.threshold))
        if after is not None:
            query = query.where(Threshold.sku > after)
        return (await self.session.execute(query.order_by(Threshold.sku).limit(limit))).all()

    def add(self, threshold: Threshold) -> Threshold:
        self.session.add(threshold)
        return threshold


class ReservationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session


    async def of_order(self, order_id: uuid.UUID) -> Reservation | None:
        return await self.session.scalar(select(Reservation).where(Reservation.order_id == order_id))

    async def get(self, reservation_id: uuid.UUID) -> Reservation | None:
        return await self.session.scalar(select(Reservation).where(Reservation.id == reservation_id))

    async def move(self, reservation_id: uuid.UUID, *, from_status: str, to_status: str, now: dt.datetime,
                   expired_by: dt.datetime | None = None) -> bool:
        """Change the status if it still is `from_status` (and, with `expired_by`, the reservation
        expired by then): True for the one transaction that does it, however many try at once."""
        query = update(Reservation).where(Reservation.id == reservation_id, Reservation.status == from_status)
        if expired_by is not None:
            query = query.where(Reservation.expires_at <= expired_by)
        return await _changed(self.session, query.values(status=to_status, updated_at=now)) == 1

    async def expired(self, now: dt.datetime, *, limit: int) -> list[tuple[str, uuid.UUID]]:
        """Held reservations whose time is up (tenant and id), oldest expiry first."""
        query = (select(Reservation.tenant_id, Reservation.id)
                 .where(Reservation.status == "held", Reservation.expires_at <= now)
                 .order_by(Reservation.expires_at).limit(limit))
        return [(row.tenant_id, row.id) for row in await self.session.execute(query)]

    def add(self, reservation: Reservation) -> Reservation:
        self.session.add(reservation)
        return reservation

    async def insert_with(self, reservations: Sequence[dict[str, Any]], ledger: Sequence[dict[str, Any]],
                          outbox: tuple[Any, Sequence[dict[str, Any]], Any]) -> None:
        """Insert new reservations, their ledger entries and their events at once (one statement
        on PostgreSQL, stamped with the session's tenant; no object enters the session; every row
        of a table names the same columns): the reservation path's write."""
        table, events, _envelopes = outbox
        await insert_together(self.session, [(Reservation, reservations), (LedgerEntry, ledger), (table, events)])


class LedgerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, *entries: LedgerEntry) -> None:
        self.session.add_all(entries)

    async def page(self, sku: str, *, limit: int, before: uuid.UUID | None,
                   warehouse: str | None = None) -> Sequence[LedgerEntry]:
        """The SKU's entries, newest first (ids are time-ordered), before the id `before`."""
        query = select(LedgerEntry).where(LedgerEntry.sku == sku)
        if warehouse is not None:
            query = query.where(LedgerEntry.warehouse == warehouse)
        if before is not None:
            query = query.where(LedgerEntry.id < before)
        return (await self.session.scalars(query.order_by(LedgerEntry.id.desc()).limit(limit))).all()


