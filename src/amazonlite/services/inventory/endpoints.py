from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from amazonlite.platform.errors import Forbidden, Unauthorized, ValidationFailed, problem_responses
from amazonlite.platform.pagination import CursorParam, InvalidCursor, Limit, Page
from amazonlite.platform.service import SessionDep
from amazonlite.services.inventory import schemas, service
from amazonlite.services.inventory.auth import InventoryAdmin, InventoryReader, sees_warehouses
from amazonlite.services.inventory.errors import (
    BelowReserved,
    NegativeStock,
    QuantityTooLarge,
    SkuNotFound,
    StockConflict,
    WarehouseExists,
    WarehouseNotFound,
)

router = APIRouter(prefix="/api/v1/inventory", tags=["inventory"])

ADMIN_ERRORS = (Unauthorized, Forbidden, ValidationFailed)
SkuPath = Annotated[schemas.Sku, Path(description="A SKU, as the catalog names it")]
WarehousePath = Annotated[schemas.WarehouseCode, Path(description="A warehouse's code")]


@router.get("", response_model=schemas.AvailabilityList, response_model_exclude_none=True,
            responses=problem_responses(ValidationFailed))
async def batch_availability(
    session: SessionDep, principal: InventoryReader,
    sku: Annotated[schemas.SkuQuery, Query(description="1-100 SKUs; answered in this order")],
) -> schemas.AvailabilityList:
    """Availability of several SKUs at once; one inventory does not know or cannot sell has 0."""
    items = await service.availabilities(session, sku, admin=sees_warehouses(principal))
    return schemas.AvailabilityList(items=items)


@router.get("/warehouses", response_model=Page[schemas.Warehouse], responses=problem_responses(*ADMIN_ERRORS))
async def list_warehouses(_admin: InventoryAdmin, session: SessionDep) -> Page[schemas.Warehouse]:
    """Every warehouse in allocation order (priority, then code); `default` is always there."""
    return Page[schemas.Warehouse](items=await service.list_warehouses(session))


@router.post("/warehouses", status_code=201, response_model=schemas.Warehouse,
             responses=problem_responses(*ADMIN_ERRORS, WarehouseExists))
async def create_warehouse(_admin: InventoryAdmin, data: schemas.WarehouseCreate, session: SessionDep
                           ) -> schemas.Warehouse:
    return await service.create_warehouse(session, data)


@router.get("/low-stock", response_model=Page[schemas.LowStock],
            responses=problem_responses(*ADMIN_ERRORS, InvalidCursor))
async def low_stock(_admin: InventoryAdmin, session: SessionDep, limit: Limit = 50, cursor: CursorParam = None
                    ) -> Page[schemas.LowStock]:
    """SKUs whose available units (every warehouse) are at or below their restock threshold."""
    return await service.low_stock_page(session, limit=limit, cursor=cursor)


@router.get("/{sku}", response_model=schemas.Availability, response_model_exclude_none=True,
            responses=problem_responses(SkuNotFound, ValidationFailed))
async def read_availability(sku: SkuPath, session: SessionDep, principal: InventoryReader) -> schemas.Availability:
    return await service.availability(session, sku, admin=sees_warehouses(principal))


@router.put("/{sku}/warehouses/{warehouse}", response_model=schemas.Availability,
            responses=problem_responses(*ADMIN_ERRORS, SkuNotFound, WarehouseNotFound, NegativeStock,
                                        BelowReserved, StockConflict, QuantityTooLarge))
async def change_stock(_admin: InventoryAdmin, sku: SkuPath, warehouse: WarehousePath, change: schemas.StockChange,
                       session: SessionDep) -> schemas.Availability:
    """Set (`{"set": n}`) or adjust (`{"adjust": ±n}`) the units on hand, with a reason for the ledger."""
    return await service.change_stock(session, sku, warehouse, change)


@router.put("/{sku}/threshold", response_model=schemas.Threshold,
            responses=problem_responses(*ADMIN_ERRORS, SkuNotFound, StockConflict))
async def set_threshold(_admin: InventoryAdmin, sku: SkuPath, data: schemas.ThresholdChange, session: SessionDep
                        ) -> schemas.Threshold:
    """Publish `inventory.low_stock.v1` when the SKU's available units fall to this or below."""
    return await service.set_threshold(session, sku, data.threshold)


@router.get("/{sku}/ledger", response_model=Page[schemas.LedgerEntry],
            responses=problem_responses(*ADMIN_ERRORS, SkuNotFound, InvalidCursor))
async def ledger(_admin: InventoryAdmin, sku: SkuPath, session: SessionDep,
                 warehouse: Annotated[schemas.WarehouseCode | None, Query(description="Only this warehouse")] = None,
                 limit: Limit = 50, cursor: CursorParam = None) -> Page[schemas.LedgerEntry]:
    """Every change of the SKU's stock, newest first."""
    return await service.ledger_page(session, sku, limit=limit, cursor=cursor, warehouse=warehouse)
