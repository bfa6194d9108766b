"""What `GET /search` and `GET /search/autocomplete` answer."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Price(BaseModel):
    """Money: integer minor units and an ISO 4217 currency."""

    model_config = ConfigDict(from_attributes=True)

    amount: int
    currency: str


class Rating(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    average: float | None
    count: int


class Hit(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    product_id: uuid.UUID
    name: str = Field(description="Plain text")
    slug: str
    price: Price = Field(description="Its lowest variant price")
    rating: Rating
    image: str | None
    snippet: str = Field(description="HTML: the matched text escaped, the matches in <mark>")


class FacetCount(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    count: int


class PriceBand(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    label: str
    min_amount: int
    max_amount: int | None = Field(description="Excluded; none for the top band")
    count: int


class Facets(BaseModel):
    """Counts over everything the search matches, every filter applied; a category counts the
    products of its subcategories too."""

    model_config = ConfigDict(from_attributes=True)

    categories: list[FacetCount]
    brands: list[FacetCount]
    price_bands: list[PriceBand]


class SearchResults(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    items: list[Hit]
    total: int = Field(description="How many products match")
    facets: Facets
    next_cursor: str | None


class Suggestion(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    text: str
    kind: Literal["product", "brand", "category"]
    id: uuid.UUID | None


class Suggestions(BaseModel):
    items: list[Suggestion]
