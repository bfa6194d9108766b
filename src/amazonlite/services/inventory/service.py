"""The inventory's use cases: warehouses, stock changes with their ledger, availability, restock
thresholds, the SKU replica of the catalog, and the reservations the order saga drives.

Everything here runs in the caller's unit of work and only flushes; events go to the outbox in it.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import structlog
from prometheus_client import Counter, Histogram
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.contracts import (
    InventoryLowStockV1,
    InventoryRejectedV1,
    InventoryReleasedV1,
    InventoryReservedV1,
    OrderCreatedV1,
    ProductDeletedV1,
    ProductUpdatedV1,
)
from amazonlite.contracts.inventory import ReleasedLineV1, ReservedLineV1, ShortLineV1, WarehouseAllocationV1
from amazonlite.platform.db import TransientConflict, after_commit, utcnow
from amazonlite.platform.ids import new_id
from amazonlite.platform.outbox import outbox_rows, record_event
from amazonlite.platform.pagination import (
    InvalidCursor,
    Page,
    decode_cursor,
    decode_id_cursor,
    encode_cursor,
    encode_id_cursor,
)
from amazonlite.platform.text import as_one_line
from amazonlite.services.inventory import schemas
from amazonlite.services.inventory.errors import (
    BelowReserved,
    NegativeStock,
    QuantityTooLarge,
    SkuNotFound,
    StockConflict,
    WarehouseExists,
    WarehouseNotFound,
)
from amazonlite.services.inventory.models import LedgerEntry, Product, Reservation, Sku, Stock, Threshold, Warehouse
from amazonlite.services.inventory.repository import (
    CatalogReplicaRepository,
    LedgerRepository,
    ReservationRepository,
    StockRepository,
    ThresholdRepository,
    WarehouseRepository,
)
from amazonlite.services.inventory.schemas import DEFAULT_WAREHOUSE, MAX_QUANTITY, SKU_LENGTH

log = structlog.get_logger("amazonlite.inventory")

RESERVATIONS = Counter("amazonlite_inventory_reservations_total", "Orders inventory reserved or rejected",
                       ["outcome"])
RELEASES = Counter("amazonlite_inventory_releases_total", "Reservations whose stock went back", ["reason"])
RESERVATION_SECONDS = Histogram("amazonlite_inventory_reservation_seconds",
                                "One run of order.created.v1 reservations, from its first read to its commit",
                                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))

HELD, REJECTED, DEDUCTED, RELEASED, EXPIRED, CANCELLED = "held", "rejected", "deducted", "released", "expired", \
    "cancelled"
RESTOCKED = "restocked"  # deducted for a confirmed order, then back on the shelf when it was cancelled
ReleaseReason = Literal["cancelled", "release_requested", "expired"]


# Warehouses -------------------------------------------------------------------------------------

DEFAULT = schemas.Warehouse(code=DEFAULT_WAREHOUSE, name="Default", priority=0)


async def list_warehouses(session: AsyncSession) -> list[schemas.Warehouse]:
    """Every warehouse of the tenant in allocation order (priority, then code); `default` always."""
    stored = [schemas.Warehouse.model_validate(w) for w in await WarehouseRepository(session).all()]
    return sorted([DEFAULT, *stored], key=lambda w: (w.priority, w.code))


async def create_warehouse(session: AsyncSession, data: schemas.WarehouseCreate) -> schemas.Warehouse:
    repository = WarehouseRepository(session)
    if data.code == DEFAULT_WAREHOUSE or await repository.get(data.code) is not None:
        raise WarehouseExists(f"The warehouse {data.code!r} already exists")
    warehouse = repository.add(Warehouse(code=data.code, name=data.name, priority=data.priority))
    try:
        await session.flush()
    except IntegrityError as exc:
        raise WarehouseExists(f"The warehouse {data.code!r} already exists") from exc
    return schemas.Warehouse.model_validate(warehouse)


async def _require_warehouse(session: AsyncSession, code: str) -> None:
    if code != DEFAULT_WAREHOUSE and await WarehouseRepository(session).get(code) is None:
        raise WarehouseNotFound(f"There is no warehouse {code!r}")


# Availability -----------------------------------------------------------------------------------

@dataclass
class _Known:
    reservable: bool
    armed: bool
    # (priority, warehouse, on_hand, reserved), in allocation order.
    rows: list[tuple[int, str, int, int]]


async def _stock_of(session: AsyncSession, skus: Iterable[str]) -> dict[str, _Known]:
    return _known(await StockRepository(session).figures(sorted(set(skus))))


def _known(figures: Iterable[Any]) -> dict[str, _Known]:
    known: dict[str, _Known] = {}
    for row in figures:
        entry = known.setdefault(row.sku, _Known(bool(row.reservable), bool(row.armed), []))
        if row.warehouse is not None:
            entry.rows.append((row.priority or 0, row.warehouse, int(row.on_hand), int(row.reserved)))
    for entry in known.values():
        entry.rows.sort()
    return known


def _availability(sku: str, known: _Known | None, *, admin: bool) -> schemas.Availability:
    if known is None:
        return schemas.Availability(sku=sku, available=0, warehouses=[] if admin else None)
    total = sum(max(on_hand - reserved, 0) for _p, _w, on_hand, reserved in known.rows)
    warehouses = None
    if admin:
        warehouses = [schemas.WarehouseStock(id=code, on_hand=on_hand, reserved=reserved,
                                             available=max(on_hand - reserved, 0))
                      for _p, code, on_hand, reserved in known.rows]
    return schemas.Availability(sku=sku, available=total if known.reservable else 0, warehouses=warehouses)


async def availability(session: AsyncSession, sku: str, *, admin: bool) -> schemas.Availability:
    known = (await _stock_of(session, [sku])).get(sku)
    if known is None:
        raise SkuNotFound(f"Inventory knows no SKU {sku!r}")
    return _availability(sku, known, admin=admin)


async def availabilities(session: AsyncSession, skus: Sequence[str], *, admin: bool) -> list[schemas.Availability]:
    """In the order asked; a SKU inventory does not know, or cannot sell, has 0 available."""
    known = await _stock_of(session, skus)
    return [_availability(sku, known.get(sku), admin=admin) for sku in skus]


# Stock changes ----------------------------------------------------------------------------------

async def _require_sku(session: AsyncSession, sku: str) -> None:
    if await CatalogReplicaRepository(session).known(sku) is None:
        raise SkuNotFound(f"Inventory knows no SKU {sku!r} (it learns SKUs from the catalog)")


async def change_stock(session: AsyncSession, sku: str, warehouse: str, change: schemas.StockChange,
                       ) -> schemas.Availability:
    """Set or adjust the units on hand of `sku` in `warehouse`, recorded in the ledger; the SKU's
    availability afterwards (admin view)."""
    await _require_sku(session, sku)
    await _require_warehouse(session, warehouse)
    stock = StockRepository(session)
    if not await stock.lock(sku, warehouse):
        stock.add(Stock(sku=sku, warehouse=warehouse, on_hand=0, reserved=0))
        try:
            await session.flush()
        except IntegrityError as exc:  # another request created it at the same moment
            raise StockConflict() from exc
    current = await stock.one(sku, warehouse)
    assert current is not None
    on_hand, reserved = int(current.on_hand), int(current.reserved)
    if change.set is not None:
        new, kind = change.set, "set"
    else:
        new, kind = on_hand + (change.adjust or 0), "adjust"
    if new < 0:
        raise NegativeStock(f"{sku} has {on_hand} on hand in {warehouse}; {new} is below zero")
    if new < reserved:
        raise BelowReserved(f"{sku} has {reserved} reserved in {warehouse}; {new} on hand would not cover them",
                            reserved=reserved)
    if new > MAX_QUANTITY:
        raise QuantityTooLarge(f"At most {MAX_QUANTITY} units of one SKU in one warehouse")
    await stock.set_on_hand(sku, warehouse, new)
    LedgerRepository(session).add(LedgerEntry(sku=sku, warehouse=warehouse, kind=kind, on_hand_delta=new - on_hand,
                                              reserved_delta=0, reason=change.reason))
    await session.flush()
    await check_thresholds(session, [sku])
    return await availability(session, sku, admin=True)


async def ledger_page(session: AsyncSession, sku: str, *, limit: int, cursor: str | None,
                      warehouse: str | None) -> Page[schemas.LedgerEntry]:
    await _require_sku(session, sku)
    rows = await LedgerRepository(session).page(sku, limit=limit + 1, before=decode_id_cursor(cursor),
                                                warehouse=warehouse)
    items = [schemas.LedgerEntry.model_validate(r) for r in rows[:limit]]
    return Page[schemas.LedgerEntry](items=items,
                                     next_cursor=encode_id_cursor(items[-1].id) if len(rows) > limit else None)


# Thresholds -------------------------------------------------------------------------------------

async def set_threshold(session: AsyncSession, sku: str, value: int) -> schemas.Threshold:
    """Set the SKU's restock threshold. Armed if available is above it now: setting a threshold is
    no crossing, so a SKU already at or below it publishes nothing until it has gone above."""
    await _require_sku(session, sku)
    available = (await StockRepository(session).totals([sku])).get(sku, 0)
    repository = ThresholdRepository(session)
    threshold = await repository.get(sku)
    if threshold is None:
        threshold = repository.add(Threshold(sku=sku, threshold=value, armed=available > value))
    else:
        threshold.threshold, threshold.armed = value, available > value
    try:
        await session.flush()
    except IntegrityError as exc:
        raise StockConflict() from exc
    return schemas.Threshold(sku=sku, threshold=value, available=available)


async def check_thresholds(session: AsyncSession, skus: Iterable[str]) -> None:
    """After stock of `skus` changed: a SKU whose available fell to or below its threshold since it
    was last above publishes `inventory.low_stock.v1` (once: the flag flips in one transaction only);
    one back above is armed again."""
    rows = await ThresholdRepository(session).with_totals(sorted(set(skus)))
    repository = ThresholdRepository(session)
    for row in rows:
        available, threshold = int(row.available), int(row.threshold)
        if row.armed and available <= threshold:
            if await repository.arm(row.sku, armed=False):
                await record_event(session, InventoryLowStockV1(
                    sku=row.sku, product_id=row.product_id, available=available, threshold=threshold),
                    aggregate_id=row.sku)
                log.info("inventory.low_stock", sku=row.sku, available=available, threshold=threshold)
        elif not row.armed and available > threshold:
            await repository.arm(row.sku, armed=True)


async def low_stock_page(session: AsyncSession, *, limit: int, cursor: str | None) -> Page[schemas.LowStock]:
    after = None
    if cursor is not None:
        (after,) = decode_cursor(cursor, length=1)
        if not isinstance(after, str):
            raise InvalidCursor("Use the next_cursor of a previous page")
    rows = await ThresholdRepository(session).low_page(limit=limit + 1, after=after)
    items = [schemas.LowStock(sku=r.sku, available=int(r.available), threshold=int(r.threshold)) for r in rows[:limit]]
    return Page[schemas.LowStock](items=items,
                                  next_cursor=encode_cursor([items[-1].sku]) if len(rows) > limit else None)


# The catalog's SKUs -----------------------------------------------------------------------------

async def apply_product(session: AsyncSession, event: ProductUpdatedV1) -> None:
    """Replace what inventory knows of the product by the event's full state; an event older than
    the last one applied (by `updated_at`), or about a deleted product, changes nothing."""
    replica = CatalogReplicaRepository(session)
    product = await replica.product(event.product_id)
    if product is not None and (product.deleted or (product.updated_at is not None
                                                    and product.updated_at >= event.updated_at)):
        log.info("inventory.product_event_ignored", product_id=str(event.product_id), deleted=product.deleted)
        return
    if product is None:
        replica.add(Product(product_id=event.product_id, status=event.status, updated_at=event.updated_at))
    else:
        product.status, product.updated_at = event.status, event.updated_at
    reservable = event.status == "active"
    listed = {v.sku for v in event.variants if len(v.sku) <= SKU_LENGTH}
    if len(listed) < len({v.sku for v in event.variants}):
        log.warning("inventory.sku_too_long_ignored", product_id=str(event.product_id))
    existing = await replica.skus_named(listed)
    for sku in sorted(listed):
        row = existing.get(sku)
        if row is None:
            replica.add(Sku(sku=sku, product_id=event.product_id, reservable=reservable))
        else:
            row.product_id, row.reservable = event.product_id, reservable
    for row in await replica.skus_of_product(event.product_id):
        if row.sku not in listed:
            row.reservable = False  # a variant the product no longer has
    await session.flush()


async def forget_product(session: AsyncSession, event: ProductDeletedV1) -> None:
    """A deleted product's SKUs stop being reservable, for good (its stock stays, for the record)."""
    replica = CatalogReplicaRepository(session)
    product = await replica.product(event.product_id)
    if product is None:
        replica.add(Product(product_id=event.product_id, status="deleted", deleted=True))
    else:
        product.deleted = True
    for row in await replica.skus_of_product(event.product_id):
        row.reservable = False
    await session.flush()


# Reservations -----------------------------------------------------------------------------------

def _allocate(wanted: dict[str, int], known: dict[str, _Known], available: dict[tuple[str, str], int]
              ) -> tuple[list[tuple[str, str, int]], list[ShortLineV1]]:
    """Take each SKU's units from its warehouses in priority order, out of `available` per (sku,
    warehouse) (what earlier orders of the same run left); the (sku, warehouse, quantity) allocations,
    or the lines that cannot be covered, and then nothing is taken."""
    allocations: list[tuple[str, str, int]] = []
    short: list[ShortLineV1] = []
    for sku, quantity in sorted(wanted.items()):
        warehouses = [warehouse for _priority, warehouse, _on_hand, _reserved in known[sku].rows]
        total = sum(available[sku, warehouse] for warehouse in warehouses)
        if total < quantity:
            short.append(ShortLineV1(sku=sku, requested=quantity, available=total))
            continue
        remaining = quantity
        for warehouse in warehouses:
            take = min(remaining, available[sku, warehouse])
            if take:
                allocations.append((sku, warehouse, take))
                remaining -= take
            if not remaining:
                break
    if short:
        return [], short
    for sku, warehouse, quantity in allocations:
        available[sku, warehouse] -= quantity
    return allocations, short


RejectReason = Literal["insufficient_stock", "unknown_sku"]


async def reserve(session: AsyncSession, events: Sequence[OrderCreatedV1], *, minutes: float) -> list[str]:
    """Hold every line of each order (all or none) for `minutes`, in the order given: for each,
    'reserved', 'rejected', or 'duplicate' when inventory has answered the order already (or it was
    cancelled first).

    The stock and what inventory answered these orders before are read without locks (one
    statement for the whole run), every order planned on it in
    turn, every insert made (reservations, ledger, outbox: one statement on PostgreSQL), and only then each
    stock row taken once for the whole run, with one conditional update, in (sku, warehouse) order:
    the hot rows are locked for the shortest time, never in a cycle, and a flash sale's orders share
    one update per row. An update that no longer applies (a concurrent run took the units first)
    raises `TransientConflict`: the consumer rolls the run back and does it again on fresh figures."""
    started = time.perf_counter()
    wanted: dict[uuid.UUID, dict[str, int]] = {}
    outcomes: dict[uuid.UUID, str] = {}
    for event in events:
        if event.order_id in wanted:
            continue  # the same order twice in one run: the first answers it
        lines: dict[str, int] = defaultdict(int)
        for line in event.lines:
            lines[line.sku] += line.quantity
        wanted[event.order_id] = lines
    every_sku = {sku for lines in wanted.values() for sku in lines}
    figures, statuses = await StockRepository(session).figures_and_statuses(sorted(every_sku), list(wanted))
    known = _known(figures)
    for order_id, status in statuses.items():
        log.info("inventory.order_already_answered", order_id=str(order_id), status=status)
        outcomes[order_id] = "duplicate"
    available = {(sku, warehouse): max(on_hand - reserved, 0)
                 for sku, entry in known.items() for _p, warehouse, on_hand, reserved in entry.rows}

    now = utcnow()
    expires_at = now + dt.timedelta(minutes=minutes)
    reservations: list[dict[str, Any]] = []
    ledger: list[dict[str, Any]] = []
    published: list[tuple[Any, object]] = []
    taken: dict[tuple[str, str], int] = defaultdict(int)
    rejected: list[tuple[uuid.UUID, RejectReason, list[ShortLineV1]]] = []
    for order_id, lines in wanted.items():
        if order_id in outcomes:
            continue
        unknown = [sku for sku in sorted(lines) if sku not in known or not known[sku].reservable]
        if unknown:
            rejected.append((order_id, "unknown_sku", [ShortLineV1(sku=sku, requested=lines[sku], available=0)
                                                       for sku in unknown]))
            continue
        allocations, short = _allocate(lines, known, available)
        if short:
            rejected.append((order_id, "insufficient_stock", short))
            continue
        reservation_id = new_id()
        reservations.append({
            "id": reservation_id, "order_id": order_id, "status": HELD, "expires_at": expires_at,
            "created_at": now, "updated_at": now,
            "allocations": [{"sku": s, "warehouse": w, "quantity": q} for s, w, q in allocations]})
        ledger.extend({"sku": s, "warehouse": w, "kind": "reserve", "on_hand_delta": 0, "reserved_delta": q,
                       "reason": "order.created.v1", "order_id": order_id, "created_at": now}
                      for s, w, q in allocations)
        published.append((InventoryReservedV1(order_id=order_id, reservation_id=reservation_id,
                                              lines=_reserved_lines(allocations), expires_at=expires_at), order_id))
        for sku, warehouse, quantity in allocations:
            taken[sku, warehouse] += quantity
        outcomes[order_id] = "reserved"
    for order_id, reason, short in rejected:
        reservations.append({"id": new_id(), "order_id": order_id, "status": REJECTED, "expires_at": None,
                             "created_at": now, "updated_at": now, "allocations": []})
        published.append((InventoryRejectedV1(order_id=order_id, reason=reason, short=short), order_id))
        log.info("inventory.order_rejected", order_id=str(order_id), reason=reason, skus=[s.sku for s in short])
        outcomes[order_id] = "rejected"

    await ReservationRepository(session).insert_with(reservations, ledger, outbox_rows(session, published))
    stock = StockRepository(session)
    for (sku, warehouse), quantity in sorted(taken.items()):
        if not await stock.take(sku, warehouse, quantity):
            raise TransientConflict(f"{sku} in {warehouse} no longer has {quantity} available")
    armed = [sku for sku in every_sku if sku in known and known[sku].armed]
    if taken and armed:
        await check_thresholds(session, armed)
    answered = [outcome for outcome in outcomes.values() if outcome != "duplicate"]
    if answered:
        _count_after_commit(session, answered, started)
    # A repeat of an order within the run is a duplicate of its first.
    firsts: set[uuid.UUID] = set()
    results = []
    for event in events:
        results.append(outcomes[event.order_id] if event.order_id not in firsts else "duplicate")
        firsts.add(event.order_id)
    return results


def _reserved_lines(allocations: Sequence[tuple[str, str, int]]) -> list[ReservedLineV1]:
    by_sku: dict[str, list[WarehouseAllocationV1]] = defaultdict(list)
    for sku, warehouse, quantity in allocations:  # in each SKU's priority order
        by_sku[sku].append(WarehouseAllocationV1(warehouse=warehouse, quantity=quantity))
    return [ReservedLineV1(sku=sku, quantity=sum(a.quantity for a in parts), allocations=parts)
            for sku, parts in by_sku.items()]


def _count_after_commit(session: AsyncSession, outcomes: Sequence[str], started: float) -> None:
    async def count() -> None:
        for outcome in outcomes:
            RESERVATIONS.labels(outcome).inc()
        RESERVATION_SECONDS.observe(time.perf_counter() - started)

    after_commit(session, count)


async def confirm(session: AsyncSession, order_id: uuid.UUID) -> bool:
    """The held units leave the warehouses (on hand and reserved both go down). A confirmation of
    an order that holds nothing (released, expired, rejected, unknown, or already deducted) changes
    nothing."""
    reservations = ReservationRepository(session)
    reservation = await reservations.of_order(order_id)
    if reservation is None or reservation.status != HELD or not await reservations.move(
            reservation.id, from_status=HELD, to_status=DEDUCTED, now=utcnow()):
        log.warning("inventory.confirmation_ignored", order_id=str(order_id),
                    status=reservation.status if reservation else None)
        return False
    allocations = _allocations(reservation)
    LedgerRepository(session).add(*(
        LedgerEntry(sku=s, warehouse=w, kind="deduct", on_hand_delta=-q, reserved_delta=-q,
                    reason="order.confirmed.v1", order_id=order_id) for s, w, q in allocations))
    await session.flush()
    stock = StockRepository(session)
    for sku, warehouse, quantity in allocations:
        if not await stock.deduct(sku, warehouse, quantity):
            raise RuntimeError(f"{sku} in {warehouse} holds less than the {quantity} reserved for {order_id}")
    log.info("inventory.reservation_deducted", order_id=str(order_id))
    return True


async def release(session: AsyncSession, order_id: uuid.UUID, reason: Literal["cancelled", "release_requested"],
                  detail: str | None) -> bool:
    """Give back what the order holds; for an order confirmed (its stock deducted) and then cancelled
    before it shipped, put the stock back on hand. An order inventory has not seen yet gets a
    tombstone, so its late order.created.v1 reserves nothing; one that holds nothing any more
    (released, expired, restocked, rejected) changes nothing."""
    reservations = ReservationRepository(session)
    reservation = await reservations.of_order(order_id)
    if reservation is None:
        now = utcnow()
        reservations.add(Reservation(order_id=order_id, status=CANCELLED, allocations=[], created_at=now,
                                     updated_at=now))
        await session.flush()
        log.info("inventory.order_cancelled_before_reservation", order_id=str(order_id))
        return False
    if reservation.status == DEDUCTED and await reservations.move(
            reservation.id, from_status=DEDUCTED, to_status=RESTOCKED, now=utcnow()):
        await _give_back(session, reservation, reason, detail, restock=True)
        return True
    if reservation.status != HELD or not await reservations.move(
            reservation.id, from_status=HELD, to_status=RELEASED, now=utcnow()):
        log.info("inventory.release_ignored", order_id=str(order_id), status=reservation.status)
        return False
    await _give_back(session, reservation, reason, detail)
    return True


async def expire(session: AsyncSession, reservation_id: uuid.UUID, now: dt.datetime) -> bool:
    """Release a held reservation whose time is up; False if another sweeper (or a confirmation or a
    cancel) got to it first."""
    reservations = ReservationRepository(session)
    reservation = await reservations.get(reservation_id)
    if reservation is None or not await reservations.move(reservation_id, from_status=HELD, to_status=EXPIRED,
                                                          now=now, expired_by=now):
        return False
    await _give_back(session, reservation, "expired", None)
    return True


def _allocations(reservation: Reservation) -> list[tuple[str, str, int]]:
    return sorted((a["sku"], a["warehouse"], int(a["quantity"])) for a in reservation.allocations)


async def _give_back(session: AsyncSession, reservation: Reservation, reason: ReleaseReason,
                     detail: str | None, *, restock: bool = False) -> None:
    """The reservation's units are available again: no longer reserved (held), or back on hand
    (`restock`: they had been deducted)."""
    allocations = _allocations(reservation)
    kind = "restock" if restock else "expire" if reason == "expired" else "release"
    LedgerRepository(session).add(*(
        LedgerEntry(sku=s, warehouse=w, kind=kind, on_hand_delta=q if restock else 0,
                    reserved_delta=0 if restock else -q,
                    reason=as_one_line(f"{reason}: {detail}")[:200] if detail else reason,
                    order_id=reservation.order_id)
        for s, w, q in allocations))
    await session.flush()
    stock = StockRepository(session)
    for sku, warehouse, quantity in allocations:
        if restock:
            await stock.restock(sku, warehouse, quantity)
        elif not await stock.give_back(sku, warehouse, quantity):
            raise RuntimeError(f"{sku} in {warehouse} holds less than the {quantity} reserved")
    released: dict[str, int] = defaultdict(int)
    for sku, _warehouse, quantity in allocations:
        released[sku] += quantity
    await record_event(session, InventoryReleasedV1(
        order_id=reservation.order_id, reservation_id=reservation.id, reason=reason, detail=detail,
        lines=[ReleasedLineV1(sku=s, quantity=q) for s, q in sorted(released.items())]),
        aggregate_id=reservation.order_id)
    await check_thresholds(session, released)
    log.info("inventory.reservation_released", order_id=str(reservation.order_id), reason=reason)

    async def count() -> None:
        RELEASES.labels(reason).inc()

    after_commit(session, count)


# Seed -------------------------------------------------------------------------------------------

SEED_WAREHOUSE = schemas.WarehouseCreate(code="east", name="East", priority=1)


async def seed_stock(session: AsyncSession, amounts: Any) -> int:
    """The demo warehouse `east`, and stock in `default` and `east` for every reservable SKU that
    has none yet (`amounts(sku)` → the two counts); how many SKUs were stocked."""
    if await WarehouseRepository(session).get(SEED_WAREHOUSE.code) is None:
        await create_warehouse(session, SEED_WAREHOUSE)
    skus = await CatalogReplicaRepository(session).reservable_without_stock()
    for sku in skus:
        in_default, in_east = amounts(sku)
        for warehouse, count in ((DEFAULT_WAREHOUSE, in_default), (SEED_WAREHOUSE.code, in_east)):
            await change_stock(session, sku, warehouse, schemas.StockChange(set=count, reason="seed"))
    return len(skus)
