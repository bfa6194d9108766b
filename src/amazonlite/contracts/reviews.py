from __future__ import annotations

import datetime as dt
from typing import ClassVar
from uuid import UUID

from pydantic import Field

from amazonlite.contracts.base import EventPayload


class ProductRatingUpdatedV1(EventPayload):
    """A product's rating as its visible reviews give it now, whole (not a change): a consumer keeps
    the one with the latest `as_of` and ignores an older one that arrives late."""

    event_type: ClassVar[str] = "product.rating.updated.v1"
    producer: ClassVar[str] = "reviews"
    summary: ClassVar[str] = ("A product's rating changed; carries its whole aggregate (average, count, "
                              "histogram) as of a moment. Key: product_id.")

    product_id: UUID
    average: float | None = Field(ge=1, le=5, description="None when no visible review rates it")
    count: int = Field(ge=0)
    histogram: dict[str, int] = Field(description='Visible reviews per star: {"1": n, …, "5": n}')
    as_of: dt.datetime
