"""The search service's use cases: keep the index in step with the catalog's events, rebuild it from
the catalog's public listing, and answer searches and suggestions.

The index never reads catalog tables. Its writes are versioned by the engine (a product's
`updated_at`, a rating's `as_of`, a deletion for good), so an event applied twice, late or out of
order changes nothing, and a rebuild that runs while events arrive loses none of them: what the
listing shows is older than, or the same as, what an event since has put there.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import structlog
from pydantic import BaseModel, TypeAdapter

from amazonlite.contracts.catalog import ProductDeletedV1, ProductUpdatedV1
from amazonlite.contracts.reviews import ProductRatingUpdatedV1
from amazonlite.platform.clients import ServiceDirectory
from amazonlite.platform.security import Principal, Role
from amazonlite.platform.tenancy import DEFAULT_TENANT
from amazonlite.services.search.engine.base import (
    CategoryRef,
    IndexedProduct,
    InvalidQuery,
    SearchEngine,
    SearchFilters,
    SearchQuery,
    SearchResult,
    SearchSort,
    Suggestion,
)
from amazonlite.services.search.errors import CatalogUnavailable, InvalidSearch

log = structlog.get_logger("amazonlite.search")


# From the catalog ---------------------------------------------------------------------------------

def from_event(event: ProductUpdatedV1) -> IndexedProduct:
    prices = [v.price for v in event.variants]
    cheapest = min(prices, key=lambda money: money.amount) if prices else None
    return IndexedProduct(
        product_id=event.product_id, name=event.name, slug=event.slug, description=event.description,
        status=event.status, min_price=cheapest.amount if cheapest else 0,
        currency=cheapest.currency if cheapest else "", created_at=event.created_at or event.updated_at,
        updated_at=event.updated_at, brand_id=event.brand_id, brand_name=event.brand_name,
        category_id=event.category_id, category_name=event.category_name,
        category_path=tuple(CategoryRef(c.id, c.name) for c in event.category_path),
        attributes=event.attributes, image=event.media[0].url if event.media else None,
    )


class _Listed(BaseModel):
    """A product as the catalog's `GET /products` lists it: the fields the index keeps."""

    id: uuid.UUID
    name: str
    slug: str
    description: str
    status: str
    brand: dict[str, Any] | None
    category: dict[str, Any] | None
    breadcrumbs: list[dict[str, Any]] = []
    attributes: dict[str, Any]
    media: list[dict[str, Any]]
    variants: list[dict[str, Any]]
    rating: dict[str, Any]
    created_at: Any
    updated_at: Any


class _ListedPage(BaseModel):
    items: list[_Listed]
    next_cursor: str | None


class _Tenant(BaseModel):
    id: str


class _TenantPage(BaseModel):
    items: list[_Tenant]
    next_cursor: str | None


def from_listing(item: _Listed) -> IndexedProduct:
    """A listed product as the index keeps it: what its `product.updated.v1` says, and its rating."""
    event = ProductUpdatedV1.model_validate({
        "product_id": item.id, "name": item.name, "slug": item.slug, "description": item.description,
        "status": item.status, "brand_id": (item.brand or {}).get("id"), "brand_name": (item.brand or {}).get("name"),
        "category_id": (item.category or {}).get("id"), "category_name": (item.category or {}).get("name"),
        "category_path": item.breadcrumbs, "attributes": item.attributes, "media": item.media,
        "variants": item.variants, "created_at": item.created_at, "updated_at": item.updated_at,
    })
    return replace(from_event(event), rating_average=item.rating.get("average"),
                   rating_count=int(item.rating.get("count") or 0))


# Events -------------------------------------------------------------------------------------------

async def apply_updates(engine: SearchEngine, tenant_id: str, events: Sequence[ProductUpdatedV1]) -> None:
    """Index a run of product changes at once (one commit of the index for the run)."""
    await engine.upsert(tenant_id, [from_event(event) for event in events])


async def apply_deletions(engine: SearchEngine, tenant_id: str, events: Sequence[ProductDeletedV1]) -> None:
    await engine.delete(tenant_id, [event.product_id for event in events])


async def apply_ratings(engine: SearchEngine, tenant_id: str, events: Sequence[ProductRatingUpdatedV1]) -> None:
    for event in events:
        if not await engine.set_rating(tenant_id, event.product_id, event.average, event.count, event.as_of):
            log.info("search.rating_ignored", product_id=str(event.product_id), as_of=event.as_of.isoformat())


# Searching ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SearchParams:
    q: str
    category_id: uuid.UUID | None = None
    brand_ids: Sequence[uuid.UUID] = ()
    min_price: int | None = None
    max_price: int | None = None
    attributes: Sequence[str] = ()
    in_stock: bool | None = None
    sort: SearchSort = "relevance"
    limit: int = 20
    cursor: str | None = None


def _attribute_filters(given: Sequence[str]) -> dict[str, list[str]]:
    wanted: dict[str, list[str]] = {}
    for item in given:
        key, colon, value = item.partition(":")
        if not colon or not key or not value.strip():
            raise InvalidSearch(f"An attribute filter is key:value, not {item[:100]!r}")
        wanted.setdefault(key, []).append(value.strip())
    return wanted


async def search(engine: SearchEngine, tenant_id: str, params: SearchParams) -> SearchResult:
    query = SearchQuery(
        q=params.q, sort=params.sort, limit=params.limit, cursor=params.cursor,
        filters=SearchFilters(category_id=params.category_id, brand_ids=tuple(params.brand_ids),
                              min_price=params.min_price, max_price=params.max_price,
                              attributes=_attribute_filters(params.attributes), in_stock=params.in_stock))
    try:
        return await engine.search(tenant_id, query)
    except InvalidQuery as exc:
        raise InvalidSearch(str(exc)) from exc


async def suggest(engine: SearchEngine, tenant_id: str, prefix: str, limit: int) -> list[Suggestion]:
    try:
        return await engine.suggest(tenant_id, prefix, limit)
    except InvalidQuery as exc:
        raise InvalidSearch(str(exc)) from exc


# Rebuilding ---------------------------------------------------------------------------------------

# Who the rebuild is to the tenants service (which lists tenants to platform admins only).
REBUILDER = Principal(tenant_id=DEFAULT_TENANT, user_id="search-rebuild", roles=frozenset({Role.PLATFORM_ADMIN}),
                      token_id="search-rebuild")


@dataclass
class Rebuild:
    """What a replica's rebuild has done, for its readiness: "ok" once every tenant is indexed."""

    state: str = "pending"
    tenants_done: int = 0
    products: int = 0
    errors: list[str] = field(default_factory=list)


async def tenants(services: ServiceDirectory) -> list[str]:
    found: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = await services.client("tenants").read("/api/v1/admin/tenants", TypeAdapter(_TenantPage),
                                                     principal=REBUILDER, unavailable=CatalogUnavailable,
                                                     params=params)
        found += [tenant.id for tenant in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return found


async def rebuild_tenant(engine: SearchEngine, services: ServiceDirectory, tenant_id: str, *,
                         page_size: int = 100) -> int:
    """Index every active product of the tenant, read page by page from the catalog's public
    listing as any shopper of the tenant reads it; how many. Events keep flowing meanwhile."""
    anonymous = Principal(tenant_id=tenant_id)
    indexed = 0
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": page_size, **({"cursor": cursor} if cursor else {})}
        page = await services.client("catalog").read("/api/v1/products", TypeAdapter(_ListedPage),
                                                      principal=anonymous, unavailable=CatalogUnavailable,
                                                      params=params)
        if page.items:
            await engine.upsert(tenant_id, [from_listing(item) for item in page.items])
            indexed += len(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return indexed


async def rebuild_empty(engine: SearchEngine, services: ServiceDirectory, progress: Rebuild, *,
                        page_size: int = 100, retry_after: float = 2.0) -> None:
    """Rebuild the index of every tenant that has none (a new replica, an emptied index), until it
    has: the catalog or the tenants service being down only delays it."""
    progress.state = "rebuilding"
    while True:
        try:
            for tenant_id in await tenants(services):
                if await engine.count(tenant_id) == 0:
                    progress.products += await rebuild_tenant(engine, services, tenant_id, page_size=page_size)
                progress.tenants_done += 1
            progress.state = "ok"
            log.info("search.index_rebuilt", tenants=progress.tenants_done, products=progress.products)
            return
        except Exception as exc:  # the catalog or tenants down, or not known yet: try again
            progress.tenants_done = 0
            detail = exc.detail if isinstance(exc, CatalogUnavailable) else f"{type(exc).__name__}: {exc}"
            progress.errors = [detail[:300]]
            log.warning("search.rebuild_waiting", error=detail[:300])
            await asyncio.sleep(retry_after)
