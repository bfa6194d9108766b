from __future__ import annotations

from amazonlite.platform.errors import Conflict, NotFound, ValidationFailed


class SkuNotFound(NotFound):
    type = "sku-not-found"
    title = "Inventory knows no such SKU"


class WarehouseNotFound(NotFound):
    type = "warehouse-not-found"
    title = "No such warehouse"


class WarehouseExists(Conflict):
    type = "warehouse-exists"
    title = "A warehouse with this code already exists"


class NegativeStock(Conflict):
    type = "negative-stock"
    title = "The change would make the stock on hand negative"


class BelowReserved(Conflict):
    type = "stock-below-reserved"
    title = "The change would leave less stock on hand than is reserved in this warehouse"


class StockConflict(Conflict):
    type = "stock-conflict"
    title = "The stock changed at the same moment; try again"


class QuantityTooLarge(ValidationFailed):
    type = "quantity-too-large"
    title = "The stock on hand would be larger than inventory can count"
