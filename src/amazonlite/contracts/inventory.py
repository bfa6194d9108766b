"""What inventory tells the saga and the shop about stock (ARCHITECTURE.md §5).

Warehouses are named by their code (a slug unique in the tenant; every tenant has `default`).
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from amazonlite.contracts.base import EventPayload


class WarehouseAllocationV1(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    warehouse: str
    quantity: int = Field(gt=0)


class ReservedLineV1(BaseModel):
    """One order line and where its units are held, in the warehouses' priority order."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sku: str
    quantity: int = Field(gt=0)
    allocations: list[WarehouseAllocationV1] = Field(min_length=1)


class ShortLineV1(BaseModel):
    """A line that could not be held: what was asked and what was available then."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sku: str
    requested: int
    available: int


class ReleasedLineV1(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    sku: str
    quantity: int


class InventoryReservedV1(EventPayload):
    event_type: ClassVar[str] = "inventory.reserved.v1"
    producer: ClassVar[str] = "inventory"
    summary: ClassVar[str] = ("Every line of an order is held until expires_at, with its per-warehouse "
                              "allocation. Key: order_id.")

    order_id: UUID
    reservation_id: UUID
    lines: list[ReservedLineV1] = Field(min_length=1)
    expires_at: dt.datetime


class InventoryRejectedV1(EventPayload):
    event_type: ClassVar[str] = "inventory.rejected.v1"
    producer: ClassVar[str] = "inventory"
    summary: ClassVar[str] = ("An order could not be reserved (nothing is held): the short SKUs, or SKUs "
                              "that are not for sale. Key: order_id.")

    order_id: UUID
    reason: Literal["insufficient_stock", "unknown_sku"]
    short: list[ShortLineV1]


class InventoryReleasedV1(EventPayload):
    event_type: ClassVar[str] = "inventory.released.v1"
    producer: ClassVar[str] = "inventory"
    summary: ClassVar[str] = ("The stock held for an order went back to available: the order was cancelled, "
                              "a release was requested, or the reservation expired. Key: order_id.")

    order_id: UUID
    reservation_id: UUID
    reason: Literal["cancelled", "release_requested", "expired"]
    detail: str | None = None
    lines: list[ReleasedLineV1]


class InventoryLowStockV1(EventPayload):
    event_type: ClassVar[str] = "inventory.low_stock.v1"
    producer: ClassVar[str] = "inventory"
    summary: ClassVar[str] = ("A SKU's available stock (all warehouses) fell to or below its restock "
                              "threshold; once per crossing. Key: sku.")

    sku: str
    product_id: UUID | None = None
    available: int
    threshold: int
