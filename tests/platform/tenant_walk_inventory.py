"""How the tenant-scope walk (test_tenant_scope_walk.py) calls each public method of the inventory
service's repositories. A method missing here fails `test_every_repository_method_has_a_plan`."""

from __future__ import annotations

from typing import Any

from amazonlite.services.inventory.models import Sku
from tests.platform.tenant_walk import Add, Insert, Plan, Read, Rows, World, Write, later


async def _held_reservation(r: Any, t: Rows, w: World) -> None:
    """The walk's reservation as one the sweeper looks for: held, with an expiry (a nullable column)."""
    reservation = await r.get(t.reservations.id)
    reservation.status, reservation.expires_at = "held", w.now


async def _figures_and_statuses(r: Any, t: Rows, w: World) -> list[Any]:
    figures, statuses = await r.figures_and_statuses([t.skus.sku], [t.reservations.order_id])
    return [*figures, *statuses.items()]


PLANS: dict[str, dict[str, Plan]] = {
    "WarehouseRepository": {
        "all": Read(lambda r, t, w: r.all()),
        "get": Read(lambda r, t, w: r.get(t.warehouses.code)),
        "add": Add("warehouses"),
    },
    "CatalogReplicaRepository": {
        "product": Read(lambda r, t, w: r.product(t.products.product_id)),
        "skus_named": Read(lambda r, t, w: r.skus_named([t.skus.sku])),
        "skus_of_product": Read(lambda r, t, w: r.skus_of_product(t.skus.product_id)),
        "known": Read(lambda r, t, w: r.known(t.skus.sku)),
        # The walk's SKU has a stock row (equal natural keys): each tenant gets one without.
        "reservable_without_stock": Read(lambda r, t, w: r.reservable_without_stock(), prepare=lambda r, t, w: r.add(
            Sku(sku="unstocked", product_id=t.skus.product_id, reservable=True))),
        "add": Add("skus"),
    },
    "StockRepository": {
        "figures": Read(lambda r, t, w: r.figures([t.skus.sku])),
        "figures_and_statuses": Read(_figures_and_statuses),
        "lock": Read(lambda r, t, w: r.lock(t.stock.sku, t.stock.warehouse)),
        "one": Read(lambda r, t, w: r.one(t.stock.sku, t.stock.warehouse)),
        "set_on_hand": Write(lambda r, t, w: r.set_on_hand(t.stock.sku, t.stock.warehouse, 5000)),
        # The walk's row has nothing available (on_hand = reserved): taking -1 still matches it.
        "take": Write(lambda r, t, w: r.take(t.stock.sku, t.stock.warehouse, -1)),
        "give_back": Write(lambda r, t, w: r.give_back(t.stock.sku, t.stock.warehouse, 1)),
        "deduct": Write(lambda r, t, w: r.deduct(t.stock.sku, t.stock.warehouse, 1)),
        "restock": Write(lambda r, t, w: r.restock(t.stock.sku, t.stock.warehouse, 1)),
        "totals": Read(lambda r, t, w: r.totals([t.stock.sku])),
        "add": Add("stock"),
    },
    "ThresholdRepository": {
        "get": Read(lambda r, t, w: r.get(t.thresholds.sku)),
        "with_totals": Read(lambda r, t, w: r.with_totals([t.thresholds.sku])),
        "arm": Write(lambda r, t, w: r.arm(t.thresholds.sku, armed=not t.thresholds.armed)),
        "low_page": Read(lambda r, t, w: r.low_page(limit=10, after=None)),
        "add": Add("thresholds"),
    },
    "ReservationRepository": {
        "of_order": Read(lambda r, t, w: r.of_order(t.reservations.order_id)),
        "get": Read(lambda r, t, w: r.get(t.reservations.id)),
        "move": Write(lambda r, t, w: r.move(t.reservations.id, from_status=t.reservations.status,
                                             to_status="expired", now=w.now)),
        "expired": Read(lambda r, t, w: r.expired(later(w), limit=10), prepare=_held_reservation),
        "insert_with": Insert("reservations", lambda r, values: r.insert_with([values], [], (None, [], None))),
        "add": Add("reservations"),
    },
    "LedgerRepository": {
        "add": Add("ledger"),
        "page": Read(lambda r, t, w: r.page(t.ledger.sku, limit=10, before=None)),
    },
}
