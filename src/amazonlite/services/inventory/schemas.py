from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.json_schema import SkipJsonSchema

from amazonlite.platform.numbers import JSON_INTEGER
from amazonlite.platform.text import STRIPPED, NonBlankLine

MAX_QUANTITY = 1_000_000_000  # units of one SKU in one warehouse; far above any shelf, inside a BIGINT
MAX_SKUS_PER_LOOKUP = 100
DEFAULT_WAREHOUSE = "default"
SKU_LENGTH = 64  # as the catalog allows, and the columns hold

Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
WarehouseCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")]
Reason = Annotated[NonBlankLine, StringConstraints(min_length=1, max_length=200), STRIPPED]
Name = Annotated[NonBlankLine, StringConstraints(min_length=1, max_length=120), STRIPPED]
Quantity = Annotated[int, Field(ge=0, le=MAX_QUANTITY), JSON_INTEGER]
Delta = Annotated[int, Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY), JSON_INTEGER]
Priority = Annotated[int, Field(ge=0, le=1_000_000), JSON_INTEGER]
SkuQuery = Annotated[list[Sku], Field(min_length=1, max_length=MAX_SKUS_PER_LOOKUP)]

class WarehouseStock(BaseModel):
    id: str = Field(description="The warehouse's code")
    on_hand: int
    reserved: int
    available: int


class Availability(BaseModel):
    """What can be sold now; per-warehouse figures only for tenant and platform admins."""

    sku: str
    available: int
    warehouses: list[WarehouseStock] | None = None


class AvailabilityList(BaseModel):
    items: list[Availability]


class Warehouse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    priority: int


class WarehouseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: WarehouseCode
    name: Name
    priority: Priority


class StockChange(BaseModel):
    """Exactly one of `set` (the new on-hand count) and `adjust` (a signed change), with a reason."""

    # The document states the rule the validator enforces: one of the two, never null.
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "oneOf": [{"required": ["set"]}, {"required": ["adjust"]}]})

    set: Quantity | SkipJsonSchema[None] = None
    adjust: Delta | SkipJsonSchema[None] = None
    reason: Reason

    @model_validator(mode="after")
    def _exactly_one(self) -> StockChange:
        given = {"set", "adjust"} & self.model_fields_set
        if len(given) != 1 or getattr(self, given.pop()) is None:
            raise ValueError("give exactly one of set and adjust, a number")
        return self


class ThresholdChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: Quantity


class Threshold(BaseModel):
    sku: str
    threshold: int
    available: int


class LowStock(BaseModel):
    sku: str
    available: int
    threshold: int


class LedgerEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    sku: str
    warehouse: str
    kind: str
    on_hand_delta: int
    reserved_delta: int
    reason: str
    order_id: uuid.UUID | None
    created_at: dt.datetime
