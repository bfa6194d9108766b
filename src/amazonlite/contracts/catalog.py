from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from amazonlite.contracts.base import EventPayload, Money


class ProductVariantV1(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    sku: str
    name: str
    options: dict[str, str]
    price: Money
    compare_at_price: Money | None = None


class CategoryRefV1(BaseModel):
    """One category of a product's path (root first): a read model filters by any of them."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: UUID
    name: str


class ProductMediaV1(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    url: str
    alt: str = ""


class ProductUpdatedV1(EventPayload):
    """The whole product as it is now: consumers replace what they hold (a read model) rather
    than apply a diff, so a missed or repeated event heals at the next one."""

    event_type: ClassVar[str] = "product.updated.v1"
    producer: ClassVar[str] = "catalog"
    summary: ClassVar[str] = "A product was created or changed; carries its full state. Key: product_id."

    product_id: UUID
    name: str
    slug: str
    description: str
    status: str
    brand_id: UUID | None
    brand_name: str | None
    category_id: UUID | None
    category_name: str | None
    attributes: dict[str, Any]
    variants: list[ProductVariantV1]
    updated_at: dt.datetime
    # Added within v1 (optional, so events recorded before them still read):
    category_path: list[CategoryRefV1] = Field(default_factory=list)
    media: list[ProductMediaV1] = Field(default_factory=list)
    created_at: dt.datetime | None = None


class ProductDeletedV1(EventPayload):
    event_type: ClassVar[str] = "product.deleted.v1"
    producer: ClassVar[str] = "catalog"
    summary: ClassVar[str] = "A product was deleted. Key: product_id."

    product_id: UUID
    skus: list[str]
