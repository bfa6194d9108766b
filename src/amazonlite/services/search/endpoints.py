from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import StringConstraints

from amazonlite.platform.errors import UriTooLong, ValidationFailed, problem_responses
from amazonlite.platform.service import RuntimeDep
from amazonlite.services.search import schemas, service
from amazonlite.services.search.auth import SearchReader
from amazonlite.services.search.engine.base import (
    MAX_FILTER_ATTRIBUTES,
    MAX_FILTER_VALUES,
    MAX_QUERY_LENGTH,
    SearchSort,
)
from amazonlite.services.search.engine.base import SearchEngine as Engine
from amazonlite.services.search.errors import InvalidSearch

router = APIRouter(prefix="/api/v1/search", tags=["search"])

MAX_MONEY = 10**13
Q = Annotated[str, Query(min_length=1, max_length=MAX_QUERY_LENGTH, description=(
    "Words to find in names, brands, categories, attributes and descriptions; typos are forgiven "
    "(one in a word of 4+ letters, two from 8), the last word may be the start of one"))]
Price = Annotated[int | None, Query(ge=0, le=MAX_MONEY, description="Minor units, on the lowest variant price")]


async def _engine(runtime: RuntimeDep) -> Engine:
    engine: Engine = runtime.state.index  # set at start-up (commands.on_startup)
    return engine


EngineDep = Annotated[Engine, Depends(_engine)]


# Many repeated filters can make a URL longer than the server takes (8 KB by default): 414.
@router.get("", response_model=schemas.SearchResults,
            responses=problem_responses(InvalidSearch, ValidationFailed, UriTooLong))
async def search(
    engine: EngineDep, principal: SearchReader, q: Q,
    category: Annotated[uuid.UUID | None, Query(description="A category id; includes its subcategories")] = None,
    brand: Annotated[list[uuid.UUID], Query(max_length=MAX_FILTER_VALUES, description=(
        "Brand ids, repeatable: any of them"))] = [],  # noqa: B006 (FastAPI copies it)
    min_price: Price = None,
    max_price: Price = None,
    attribute: Annotated[list[Annotated[str, StringConstraints(max_length=200)]], Query(
        max_length=MAX_FILTER_ATTRIBUTES, description=(
            "key:value, repeatable: one of the values given for each key, every key"))] = [],  # noqa: B006
    in_stock: Annotated[bool | None, Query(description="Only products known to be in stock")] = None,
    sort: Annotated[SearchSort, Query()] = "relevance",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")] = None,
) -> schemas.SearchResults:
    """Products of the caller's tenant that match `q`, best first (better rated among equals), with
    facet counts for categories, brands and price bands, and a highlighted snippet per hit."""
    result = await service.search(engine, principal.tenant_id, service.SearchParams(
        q=q, category_id=category, brand_ids=brand, min_price=min_price, max_price=max_price, attributes=attribute,
        in_stock=in_stock, sort=sort, limit=limit, cursor=cursor))
    return schemas.SearchResults.model_validate({"items": result.hits, "total": result.total,
                                                 "facets": result.facets, "next_cursor": result.next_cursor})


@router.get("/autocomplete", response_model=schemas.Suggestions,
            responses=problem_responses(InvalidSearch, ValidationFailed))
async def autocomplete(
    engine: EngineDep, principal: SearchReader,
    q: Annotated[str, Query(min_length=1, max_length=100, description="What the shopper has typed so far")],
    limit: Annotated[int, Query(ge=1, le=20)] = 8,
) -> schemas.Suggestions:
    """Product names, brands and categories that start with what was typed (typos forgiven from 4
    letters), the most relevant first."""
    found = await service.suggest(engine, principal.tenant_id, q, limit)
    return schemas.Suggestions.model_validate({"items": found})
