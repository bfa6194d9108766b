"""Products: the listing, a product's document (through the hot-product cache), writes with their
`product.updated.v1`, and the rating its reviews give it."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.contracts.catalog import ProductDeletedV1
from amazonlite.contracts.reviews import ProductRatingUpdatedV1
from amazonlite.platform.db import utcnow
from amazonlite.platform.outbox import record_event
from amazonlite.platform.pagination import InvalidCursor, decode_cursor, encode_cursor
from amazonlite.platform.tenancy import TENANT_KEY
from amazonlite.services.catalog import taxonomy
from amazonlite.services.catalog.attributes import check, effective, filter_rows, filter_value
from amazonlite.services.catalog.cache import ProductCache
from amazonlite.services.catalog.cursors import cursor_id, cursor_moment, cursor_money, cursor_rating, cursor_text
from amazonlite.services.catalog.errors import (
    DuplicateSku,
    DuplicateSlug,
    InvalidAttributeFilter,
    InvalidPriceRange,
    ProductNotFound,
    StatusFilterForbidden,
)
from amazonlite.services.catalog.integrity import flush
from amazonlite.services.catalog.models import Category, Product, Variant
from amazonlite.services.catalog.publishing import forget_cached, publish_product
from amazonlite.services.catalog.repository import CategoryRepository, ProductQuery, ProductRepository
from amazonlite.services.catalog.schemas import (
    NAME_LENGTH,
    MediaIn,
    ProductCreate,
    ProductFilter,
    ProductSort,
    ProductUpdate,
    VariantIn,
)
from amazonlite.services.catalog.schemas import Product as ProductDocument
from amazonlite.services.catalog.slugs import free_product_slug

log = structlog.get_logger("amazonlite.catalog")


# Products: reads --------------------------------------------------------------------------------

def _sort_cursor(sort: ProductSort, product: Product) -> str:
    value: Any
    if sort == "newest":
        value = product.created_at.isoformat()
    elif sort == "name":
        value = product.name
    elif sort == "rating":
        value = product.rating_average
    else:
        value = product.min_price
    return encode_cursor([sort, value, str(product.id)])


def _sort_after(sort: ProductSort, cursor: str | None) -> tuple[Any, uuid.UUID] | None:
    if cursor is None:
        return None
    made_for, value, last_id = decode_cursor(cursor, length=3)
    if made_for != sort:
        raise InvalidCursor("This cursor belongs to another sort order; start again without a cursor")
    return _cursor_key(sort, value), cursor_id(last_id)


def _cursor_key(sort: ProductSort, value: Any) -> Any:
    """The sort key a cursor carries, typed as the column compares it; InvalidCursor when it does not fit."""
    if sort == "newest":
        return cursor_moment(value)
    if sort == "name":
        return cursor_text(value, max_length=NAME_LENGTH)
    if sort == "rating":
        return cursor_rating(value)
    return cursor_money(value)


def _attribute_filters(given: Sequence[str]) -> dict[str, set[str]]:
    """`["colour:red", "colour:blue", "pages:320"]` → {"colour": {"red", "blue"}, "pages": {"320"}},
    each value normalised as the filter rows are (`attributes.filter_value`)."""
    wanted: dict[str, set[str]] = {}
    for item in given:
        key, colon, value = item.partition(":")
        if not colon or not key or not value.strip() or len(key) > 64 or "\x00" in item:
            raise InvalidAttributeFilter(f"Not key:value: {item[:100]!r}")
        wanted.setdefault(key, set()).add(filter_value(value))
    return wanted


async def list_products(session: AsyncSession, filters: ProductFilter, *, sort: ProductSort, limit: int,
                        cursor: str | None, admin: bool) -> tuple[Sequence[Product], str | None]:
    """A page of products in `sort` order. Everyone sees active products; admins may ask for drafts
    or archived ones. A category includes its subcategories. The keyset cursor resumes after the
    last product shown, so products added or removed meanwhile never repeat or skip another."""
    status = filters.status or "active"
    if status != "active" and not admin:
        raise StatusFilterForbidden()
    if filters.min_price is not None and filters.max_price is not None and filters.min_price > filters.max_price:
        raise InvalidPriceRange()
    category_ids = None
    if filters.category_id is not None:
        category_ids = taxonomy.subtree(await CategoryRepository(session).parents(), filters.category_id)
    rows = await ProductRepository(session).page(ProductQuery(
        sort=sort, limit=limit, status=status, category_ids=category_ids, brand_id=filters.brand_id,
        min_price=filters.min_price, max_price=filters.max_price,
        attributes=_attribute_filters(filters.attributes), after=_sort_after(sort, cursor),
    ))
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, _sort_cursor(sort, page[-1])


async def get_product(session: AsyncSession, product_id: uuid.UUID, *, admin: bool) -> dict[str, Any]:
    """A product's document by id; only admins see one that is not active."""
    product = await ProductRepository(session).document(product_id)
    if product is None or (product["status"] != "active" and not admin):
        raise ProductNotFound()
    return product


async def product_document(session: AsyncSession, product_id: uuid.UUID, *, admin: bool,
                           cache: ProductCache | None) -> bytes:
    """A product's document, serialised. An active one comes from the hot-product cache when it is
    there (and goes into it when not); admins, who also see drafts, always read the database."""
    tenant = session.info[TENANT_KEY]
    if cache is not None and not admin:
        cached = await cache.get(tenant, product_id)
        if cached is not None:
            return cached
    product = await get_product(session, product_id, admin=admin)
    document = ProductDocument.model_validate(product).model_dump_json().encode()
    if cache is not None and product["status"] == "active":
        await cache.put(tenant, product_id, document)
    return document


async def lookup_skus(session: AsyncSession, skus: Sequence[str], *, admin: bool) -> list[dict[str, Any]]:
    """The SKUs of `skus` that exist (only those of active products unless `admin`), in the order
    asked; a SKU asked twice is answered once, an unknown one is left out."""
    rows = await ProductRepository(session).skus(skus, active_only=not admin)
    return [{"sku": r.sku, "product_id": r.product_id, "product_name": r.product_name,
             "variant_name": r.variant_name, "status": r.status, "updated_at": r.updated_at,
             "price": {"amount": r.price_amount, "currency": r.currency}} for r in rows]


# Products: writes -------------------------------------------------------------------------------

def new_variant(data: VariantIn, position: int) -> Variant:
    row = Variant(sku=data.sku, position=position)
    set_variant(row, data)
    return row


def set_variant(row: Variant, data: VariantIn) -> None:
    row.name, row.options = data.name, dict(data.options)
    row.price_amount, row.currency = data.price.amount, data.price.currency
    row.compare_at_amount = data.compare_at_price.amount if data.compare_at_price else None


async def check_attributes(session: AsyncSession, attributes: dict[str, Any], category: Category | None) -> None:
    """Hold `attributes` to the definitions of `category` and its ancestors (422 naming the attribute)."""
    if category is None:
        return
    path = [uuid.UUID(crumb["id"]) for crumb in category.path]
    found = await CategoryRepository(session).definitions(path)
    check(attributes, effective(found.get(category_id, []) for category_id in path), category=category.name)


def media_json(media: Iterable[MediaIn]) -> list[dict[str, str]]:
    return [{"url": str(item.url), "alt": item.alt} for item in media]


def reprice(product: Product) -> None:
    """Keep the denormalised lowest price and currency in step with the variants."""
    product.min_price = min(v.price_amount for v in product.variants)
    product.currency = product.variants[0].currency


async def _ensure_skus_free(products: ProductRepository, skus: Collection[str], *,
                            other_than: uuid.UUID | None = None) -> None:
    taken = await products.skus_taken(skus, other_than=other_than)
    if taken:
        raise DuplicateSku(f"Already in use: {', '.join(taken)}", skus=taken)


async def create_product(session: AsyncSession, data: ProductCreate) -> Product:
    products = ProductRepository(session)
    category = await taxonomy.category_for(session, data.category_id)
    brand = await taxonomy.brand_for(session, data.brand_id)
    await check_attributes(session, data.attributes, category)
    await _ensure_skus_free(products, [v.sku for v in data.variants])
    if data.slug is not None:
        if await products.slug_taken(data.slug):
            raise DuplicateSlug(f"A product already has the slug {data.slug!r}")
        slug = data.slug
    else:
        slug = await free_product_slug(products, data.name)
    now = utcnow()
    product = Product(
        name=data.name, slug=slug, description=data.description, status=data.status, brand=brand,
        category=category, attributes=dict(data.attributes), media=media_json(data.media),
        created_at=now, updated_at=now,
        variants=[new_variant(v, i) for i, v in enumerate(data.variants)],
    )
    reprice(product)
    products.add(product)
    await flush(session)
    await products.index_attributes(product.id, filter_rows(product.attributes), replace=False)
    await publish_product(session, product)
    log.info("catalog.product_created", product_id=str(product.id))
    return product


async def update_product(session: AsyncSession, product_id: uuid.UUID, changes: ProductUpdate, *,
                         cache: ProductCache | None = None) -> Product:
    """Change a product; its row stays locked until the transaction ends, so concurrent changes of
    one product take turns and each records the state it committed."""
    products = ProductRepository(session)
    product = await products.lock(product_id)
    if product is None:
        raise ProductNotFound()
    fields = changes.model_fields_set
    # A new category or brand is held shared (after the product: the lock order of repository.py);
    # the current ones need no lock, since their renames lock this product first.
    if "category_id" in fields and changes.category_id != product.category_id:
        product.category = await taxonomy.category_for(session, changes.category_id)
    if "brand_id" in fields and changes.brand_id != product.brand_id:
        product.brand = await taxonomy.brand_for(session, changes.brand_id)
    if changes.slug is not None and changes.slug != product.slug:
        if await products.slug_taken(changes.slug, other_than=product.id):
            raise DuplicateSlug(f"A product already has the slug {changes.slug!r}")
        product.slug = changes.slug
    if changes.variants is not None:
        await _replace_variants(session, products, product, changes.variants)
    if changes.name is not None:
        product.name = changes.name
    if changes.description is not None:
        product.description = changes.description
    if changes.status is not None:
        product.status = changes.status
    if changes.attributes is not None:
        product.attributes = dict(changes.attributes)
    if changes.attributes is not None or "category_id" in fields:
        await check_attributes(session, product.attributes, product.category)
        await products.index_attributes(product.id, filter_rows(product.attributes), replace=True)
    if changes.media is not None:
        product.media = media_json(changes.media)
    product.updated_at = utcnow()
    await flush(session)
    await publish_product(session, product)
    forget_cached(session, cache, [product.id])
    log.info("catalog.product_updated", product_id=str(product.id))
    return product


async def _replace_variants(session: AsyncSession, products: ProductRepository, product: Product,
                            variants: Sequence[VariantIn]) -> None:
    """Replace the variant list; a SKU that reappears keeps its row (its id), the others go."""
    wanted = {v.sku for v in variants}
    await _ensure_skus_free(products, wanted, other_than=product.id)
    current = {v.sku: v for v in product.variants}
    if any(sku not in wanted for sku in current):
        # Delete first: under a case-insensitive collation a new SKU may equal a removed one.
        product.variants = [v for v in product.variants if v.sku in wanted]
        await flush(session)
    rows = []
    for position, data in enumerate(variants):
        row = current.get(data.sku)
        if row is None:
            row = new_variant(data, position)
        else:
            row.position = position
            set_variant(row, data)
        rows.append(row)
    product.variants = rows
    reprice(product)


async def delete_product(session: AsyncSession, product_id: uuid.UUID, *,
                         cache: ProductCache | None = None) -> None:
    products = ProductRepository(session)
    product = await products.lock(product_id)  # after any change in flight: product.deleted comes last
    if product is None:
        raise ProductNotFound()
    skus = [v.sku for v in product.variants]
    await products.delete(product)
    await flush(session)
    await record_event(session, ProductDeletedV1(product_id=product.id, skus=skus), aggregate_id=product.id)
    forget_cached(session, cache, [product.id])
    log.info("catalog.product_deleted", product_id=str(product.id))


# Ratings (from reviews) -------------------------------------------------------------------------

async def apply_rating(session: AsyncSession, event: ProductRatingUpdatedV1, *, cache: ProductCache | None) -> None:
    """Keep the rating the product's reviews give it now; a late, older one changes nothing, and so
    does one for a product the catalog no longer has (deleted since)."""
    stored = await ProductRepository(session).rate(event.product_id, average=event.average or 0.0,
                                                   count=event.count, as_of=event.as_of)
    if stored:
        forget_cached(session, cache, [event.product_id])
    else:
        log.info("catalog.rating_ignored", product_id=str(event.product_id), as_of=event.as_of.isoformat(),
                 reason="unknown product or a newer rating stored")
