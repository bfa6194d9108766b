from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, TypeVar

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.contracts.base import Money
from amazonlite.contracts.catalog import ProductDeletedV1, ProductUpdatedV1, ProductVariantV1
from amazonlite.contracts.reviews import ProductRatingUpdatedV1
from amazonlite.platform.db import after_commit, utcnow
from amazonlite.platform.errors import AppError
from amazonlite.platform.outbox import record_event
from amazonlite.platform.pagination import InvalidCursor, decode_cursor, encode_cursor
from amazonlite.platform.tenancy import TENANT_KEY
from amazonlite.services.catalog.cache import ProductCache
from amazonlite.services.catalog.errors import (
    BrandInUse,
    BrandNotFound,
    CatalogConflict,
    CategoryInUse,
    CategoryNotFound,
    DuplicateSku,
    DuplicateSlug,
    InvalidCategoryParent,
    InvalidPriceRange,
    ProductNotFound,
    StatusFilterForbidden,
    UnknownBrand,
    UnknownCategory,
)
from amazonlite.services.catalog.models import Brand, Category, Product, Variant
from amazonlite.services.catalog.repository import (
    BrandRepository,
    CategoryRepository,
    ProductQuery,
    ProductRepository,
)
from amazonlite.services.catalog.schemas import (
    MAX_MONEY,
    NAME_LENGTH,
    SHORT_NAME_LENGTH,
    BrandCreate,
    BrandUpdate,
    CategoryCreate,
    CategoryUpdate,
    MediaIn,
    ProductCreate,
    ProductFilter,
    ProductSort,
    ProductUpdate,
    VariantIn,
)
from amazonlite.services.catalog.schemas import Product as ProductDocument

log = structlog.get_logger("amazonlite.catalog")

T = TypeVar("T", Category, Brand)

PRODUCT_SLUG_BASE_LENGTH = 180  # leaves room for a "-<n>" suffix under the 200 of a slug
SHORT_SLUG_BASE_LENGTH = 130  # the same under the 140 of a category's or brand's slug


# Slugs ------------------------------------------------------------------------------------------

def slugify(text: str, *, max_length: int = PRODUCT_SLUG_BASE_LENGTH) -> str:
    """'Café Crème 500 g' → 'cafe-creme-500-g'; '' when nothing ASCII is left."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-")


def _first_free(base: str, taken: Collection[str]) -> str:
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


async def _free_product_slug(products: ProductRepository, name: str) -> str:
    base = slugify(name) or "product"
    return _first_free(base, await products.slugs_like(base))


async def _free_short_slug(repository: CategoryRepository | BrandRepository, name: str, fallback: str) -> str:
    """A category's or brand's slug derived from its name, with a suffix when the plain one is taken."""
    base = slugify(name, max_length=SHORT_SLUG_BASE_LENGTH) or fallback
    return _first_free(base, await repository.slugs_like(base))


# Writes -----------------------------------------------------------------------------------------

# The unique constraints by the names the metadata's naming convention gives them (as created by
# the migration), each with the problem a concurrent request that took the value first is told.
_UNIQUE_CONFLICTS: dict[str, Callable[[], AppError]] = {
    "uq_variants_tenant_id_sku": lambda: DuplicateSku("A SKU of this product was taken by a concurrent change"),
    **dict.fromkeys(
        ("uq_products_tenant_id_slug", "uq_categories_tenant_id_slug", "uq_brands_tenant_id_slug"),
        lambda: DuplicateSlug("The slug was taken by a concurrent change"),
    ),
}

_MYSQL_KEY = re.compile(r"for key '(?:[^']*\.)?([^'.]+)'$")  # the key's name ends MariaDB's message
_SQLITE_UNIQUE = "UNIQUE constraint failed: "  # then "table.column, table.column": no values


def violated_constraint(exc: IntegrityError) -> str | None:
    """The name of the constraint the database enforced, read from where each driver puts it and
    never from the values its message quotes (a slug may well contain "sku")."""
    error = exc.orig
    if error is None:
        return None
    name = getattr(error.__cause__, "constraint_name", None)  # asyncpg, under SQLAlchemy's adapter
    if isinstance(name, str):
        return name
    message = str(error.args[-1]) if error.args else ""
    if found := _MYSQL_KEY.search(message):
        return found.group(1)
    if message.startswith(_SQLITE_UNIQUE):  # SQLite names the columns: the convention gives the name
        columns = [part.partition(".") for part in message.removeprefix(_SQLITE_UNIQUE).split(", ")]
        tables = {table for table, _, _ in columns}
        if len(tables) == 1:
            return f"uq_{tables.pop()}_{'_'.join(column for _, _, column in columns)}"
    return None


async def _flush(session: AsyncSession, otherwise: AppError | None = None) -> None:
    """Flush; a unique or foreign-key violation that a concurrent request slipped past our checks
    becomes a 409 problem, never a 500."""
    try:
        await session.flush()
    except IntegrityError as exc:
        conflict = _UNIQUE_CONFLICTS.get(violated_constraint(exc) or "")
        raise (conflict() if conflict else otherwise or CatalogConflict()) from exc


# Cursors ----------------------------------------------------------------------------------------
# A cursor comes back from the client: each value is checked as strictly as a request body, so that
# nothing we would never have issued reaches the database (where it could overflow or be refused).

CURSOR_EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
CURSOR_LATEST = dt.datetime(3000, 1, 1, tzinfo=dt.UTC)


def _not_ours() -> InvalidCursor:
    return InvalidCursor("Use the next_cursor of a previous page")


def _cursor_id(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise _not_ours()
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise _not_ours() from exc


def _cursor_text(value: Any, *, max_length: int) -> str:
    if not isinstance(value, str) or len(value) > max_length or "\x00" in value:
        raise _not_ours()
    return value


def _cursor_moment(value: Any) -> dt.datetime:
    """An ISO 8601 time with an offset, as UTC, within the years a row of ours can carry."""
    if not isinstance(value, str) or len(value) > 64:
        raise _not_ours()
    try:
        moment = dt.datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise _not_ours()
        moment = moment.astimezone(dt.UTC)
    except (ValueError, OverflowError) as exc:  # not a time, or one that leaves the calendar in UTC
        raise _not_ours() from exc
    if not CURSOR_EARLIEST <= moment < CURSOR_LATEST:
        raise _not_ours()
    return moment


def _cursor_money(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_MONEY:
        raise _not_ours()
    return value


# Categories -------------------------------------------------------------------------------------

def _name_cursor_after(cursor: str | None) -> tuple[str, uuid.UUID] | None:
    if cursor is None:
        return None
    name, last_id = decode_cursor(cursor, length=2)
    return _cursor_text(name, max_length=SHORT_NAME_LENGTH), _cursor_id(last_id)


def _name_page(rows: Sequence[T], limit: int) -> tuple[Sequence[T], str | None]:
    """The page out of `limit + 1` rows, and a cursor when the extra row shows that more follow."""
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor([last.name, str(last.id)])


async def list_categories(session: AsyncSession, *, limit: int, cursor: str | None
                          ) -> tuple[Sequence[Category], str | None]:
    rows = await CategoryRepository(session).page(limit=limit + 1, after=_name_cursor_after(cursor))
    return _name_page(rows, limit)


async def _locked_category(categories: CategoryRepository, category_id: uuid.UUID) -> Category:
    category = await categories.lock(category_id)
    if category is None:
        raise CategoryNotFound()
    return category


async def create_category(session: AsyncSession, data: CategoryCreate) -> Category:
    categories = CategoryRepository(session)
    if data.slug is None:
        slug = await _free_short_slug(categories, data.name, "category")
    elif await categories.slug_taken(data.slug):
        raise DuplicateSlug(f"A category already has the slug {data.slug!r}")
    else:
        slug = data.slug
    if data.parent_id is not None and await categories.get(data.parent_id) is None:
        raise UnknownCategory("The parent category does not exist")
    category = categories.add(Category(name=data.name, slug=slug, parent_id=data.parent_id))
    await _flush(session)
    log.info("catalog.category_created", category_id=str(category.id))
    return category


async def update_category(session: AsyncSession, category_id: uuid.UUID, changes: CategoryUpdate, *,
                          cache: ProductCache | None = None) -> Category:
    categories = CategoryRepository(session)
    category = await _locked_category(categories, category_id)
    renamed = changes.name is not None and changes.name != category.name
    # A rename changes how its products read: lock them now, before any plain read (repository.py).
    products = await ProductRepository(session).lock_in_category(category.id) if renamed else ()
    fields = changes.model_fields_set
    if changes.slug is not None and changes.slug != category.slug:
        if await categories.slug_taken(changes.slug, other_than=category.id):
            raise DuplicateSlug(f"A category already has the slug {changes.slug!r}")
        category.slug = changes.slug
    if "parent_id" in fields and changes.parent_id != category.parent_id:
        if changes.parent_id is not None:
            await _check_parent(categories, category, changes.parent_id)
        category.parent_id = changes.parent_id
    if changes.name is not None:
        category.name = changes.name
    await _flush(session)
    await _republish(session, products, cache)
    return category


async def _check_parent(categories: CategoryRepository, category: Category, parent_id: uuid.UUID) -> None:
    parents = await categories.parents()
    if parent_id not in parents:
        raise UnknownCategory("The parent category does not exist")
    node: uuid.UUID | None = parent_id
    for _ in range(len(parents) + 1):  # bounded even if the stored tree were ever cyclic
        if node is None:
            return
        if node == category.id:
            raise InvalidCategoryParent()
        node = parents.get(node)


async def delete_category(session: AsyncSession, category_id: uuid.UUID) -> None:
    categories = CategoryRepository(session)
    category = await _locked_category(categories, category_id)
    if await categories.in_use(category.id):
        raise CategoryInUse("Move or delete its products and subcategories first")
    await categories.delete(category)
    await _flush(session, CategoryInUse("Move or delete its products and subcategories first"))


def _subtree(parents: dict[uuid.UUID, uuid.UUID | None], root: uuid.UUID) -> set[uuid.UUID]:
    children: dict[uuid.UUID | None, list[uuid.UUID]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    found = {root}
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), ()):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


# Brands -----------------------------------------------------------------------------------------

async def list_brands(session: AsyncSession, *, limit: int, cursor: str | None) -> tuple[Sequence[Brand], str | None]:
    rows = await BrandRepository(session).page(limit=limit + 1, after=_name_cursor_after(cursor))
    return _name_page(rows, limit)


async def _locked_brand(brands: BrandRepository, brand_id: uuid.UUID) -> Brand:
    brand = await brands.lock(brand_id)
    if brand is None:
        raise BrandNotFound()
    return brand


async def create_brand(session: AsyncSession, data: BrandCreate) -> Brand:
    brands = BrandRepository(session)
    if data.slug is None:
        slug = await _free_short_slug(brands, data.name, "brand")
    elif await brands.slug_taken(data.slug):
        raise DuplicateSlug(f"A brand already has the slug {data.slug!r}")
    else:
        slug = data.slug
    brand = brands.add(Brand(name=data.name, slug=slug))
    await _flush(session)
    log.info("catalog.brand_created", brand_id=str(brand.id))
    return brand


async def update_brand(session: AsyncSession, brand_id: uuid.UUID, changes: BrandUpdate, *,
                       cache: ProductCache | None = None) -> Brand:
    brands = BrandRepository(session)
    brand = await _locked_brand(brands, brand_id)
    renamed = changes.name is not None and changes.name != brand.name
    # A rename changes how its products read: lock them now, before any plain read (repository.py).
    products = await ProductRepository(session).lock_of_brand(brand.id) if renamed else ()
    if changes.slug is not None and changes.slug != brand.slug:
        if await brands.slug_taken(changes.slug, other_than=brand.id):
            raise DuplicateSlug(f"A brand already has the slug {changes.slug!r}")
        brand.slug = changes.slug
    if changes.name is not None:
        brand.name = changes.name
    await _flush(session)
    await _republish(session, products, cache)
    return brand


async def delete_brand(session: AsyncSession, brand_id: uuid.UUID) -> None:
    brands = BrandRepository(session)
    brand = await _locked_brand(brands, brand_id)
    if await brands.in_use(brand.id):
        raise BrandInUse("Move or delete its products first")
    await brands.delete(brand)
    await _flush(session, BrandInUse("Move or delete its products first"))


# Products: reads --------------------------------------------------------------------------------

def _sort_cursor(sort: ProductSort, product: Product) -> str:
    value: Any
    if sort == "newest":
        value = product.created_at.isoformat()
    elif sort == "name":
        value = product.name
    else:
        value = product.min_price
    return encode_cursor([sort, value, str(product.id)])


def _sort_after(sort: ProductSort, cursor: str | None) -> tuple[Any, uuid.UUID] | None:
    if cursor is None:
        return None
    made_for, value, last_id = decode_cursor(cursor, length=3)
    if made_for != sort:
        raise InvalidCursor("This cursor belongs to another sort order; start again without a cursor")
    return _cursor_key(sort, value), _cursor_id(last_id)


def _cursor_key(sort: ProductSort, value: Any) -> Any:
    """The sort key a cursor carries, typed as the column compares it; InvalidCursor when it does not fit."""
    if sort == "newest":
        return _cursor_moment(value)
    if sort == "name":
        return _cursor_text(value, max_length=NAME_LENGTH)
    return _cursor_money(value)


async def list_products(session: AsyncSession, filters: ProductFilter, *, sort: ProductSort, limit: int,
                        cursor: str | None, admin: bool) -> tuple[Sequence[Product], str | None]:
    """A page of products in `sort` order. Everyone sees active products; admins may ask for drafts
    or archived ones. A category includes its subcategories."""
    status = filters.status or "active"
    if status != "active" and not admin:
        raise StatusFilterForbidden()
    if filters.min_price is not None and filters.max_price is not None and filters.min_price > filters.max_price:
        raise InvalidPriceRange()
    category_ids = None
    if filters.category_id is not None:
        category_ids = _subtree(await CategoryRepository(session).parents(), filters.category_id)
    rows = await ProductRepository(session).page(ProductQuery(
        sort=sort, limit=limit, status=status, category_ids=category_ids, brand_id=filters.brand_id,
        min_price=filters.min_price, max_price=filters.max_price, after=_sort_after(sort, cursor),
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
    return Variant(sku=data.sku, name=data.name, options=dict(data.options), price_amount=data.price.amount,
                   currency=data.price.currency, position=position)


def media_json(media: Iterable[MediaIn]) -> list[dict[str, str]]:
    return [{"url": str(item.url), "alt": item.alt} for item in media]


def reprice(product: Product) -> None:
    """Keep the denormalised lowest price and currency in step with the variants."""
    product.min_price = min(v.price_amount for v in product.variants)
    product.currency = product.variants[0].currency


async def _category_for(session: AsyncSession, category_id: uuid.UUID | None) -> Category | None:
    """The category a product is put in, held shared so that a rename waits for this write and
    then republishes the product too."""
    if category_id is None:
        return None
    category = await CategoryRepository(session).share(category_id)
    if category is None:
        raise UnknownCategory(f"No category {category_id}")
    return category


async def _brand_for(session: AsyncSession, brand_id: uuid.UUID | None) -> Brand | None:
    """The brand a product is put in, held shared like its category."""
    if brand_id is None:
        return None
    brand = await BrandRepository(session).share(brand_id)
    if brand is None:
        raise UnknownBrand(f"No brand {brand_id}")
    return brand


async def _ensure_skus_free(products: ProductRepository, skus: Collection[str], *,
                            other_than: uuid.UUID | None = None) -> None:
    taken = await products.skus_taken(skus, other_than=other_than)
    if taken:
        raise DuplicateSku(f"Already in use: {', '.join(taken)}", skus=taken)


async def create_product(session: AsyncSession, data: ProductCreate) -> Product:
    products = ProductRepository(session)
    category = await _category_for(session, data.category_id)
    brand = await _brand_for(session, data.brand_id)
    await _ensure_skus_free(products, [v.sku for v in data.variants])
    if data.slug is not None:
        if await products.slug_taken(data.slug):
            raise DuplicateSlug(f"A product already has the slug {data.slug!r}")
        slug = data.slug
    else:
        slug = await _free_product_slug(products, data.name)
    now = utcnow()
    product = Product(
        name=data.name, slug=slug, description=data.description, status=data.status, brand=brand,
        category=category, attributes=dict(data.attributes), media=media_json(data.media),
        created_at=now, updated_at=now,
        variants=[new_variant(v, i) for i, v in enumerate(data.variants)],
    )
    reprice(product)
    products.add(product)
    await _flush(session)
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
        product.category = await _category_for(session, changes.category_id)
    if "brand_id" in fields and changes.brand_id != product.brand_id:
        product.brand = await _brand_for(session, changes.brand_id)
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
    if changes.media is not None:
        product.media = media_json(changes.media)
    product.updated_at = utcnow()
    await _flush(session)
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
        await _flush(session)
    rows = []
    for position, data in enumerate(variants):
        row = current.get(data.sku)
        if row is None:
            row = new_variant(data, position)
        else:
            row.name, row.options, row.position = data.name, dict(data.options), position
            row.price_amount, row.currency = data.price.amount, data.price.currency
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
    await _flush(session)
    await record_event(session, ProductDeletedV1(product_id=product.id, skus=skus), aggregate_id=product.id)
    forget_cached(session, cache, [product.id])
    log.info("catalog.product_deleted", product_id=str(product.id))


# Ratings (from reviews) -------------------------------------------------------------------------

async def apply_rating(session: AsyncSession, event: ProductRatingUpdatedV1, *, cache: ProductCache | None) -> None:
    """Keep the rating the product's reviews give it now; a late, older one changes nothing, and so
    does one for a product the catalog no longer has (deleted since)."""
    stored = await ProductRepository(session).rate(event.product_id, average=event.average, count=event.count,
                                                   as_of=event.as_of)
    if stored:
        forget_cached(session, cache, [event.product_id])
    else:
        log.info("catalog.rating_ignored", product_id=str(event.product_id), as_of=event.as_of.isoformat(),
                 reason="unknown product or a newer rating stored")


# Events -----------------------------------------------------------------------------------------

def product_updated(product: Product) -> ProductUpdatedV1:
    """The product's full state as the contract carries it (brand, category and variants loaded)."""
    return ProductUpdatedV1(
        product_id=product.id, name=product.name, slug=product.slug, description=product.description,
        status=product.status,
        brand_id=product.brand.id if product.brand else None,
        brand_name=product.brand.name if product.brand else None,
        category_id=product.category.id if product.category else None,
        category_name=product.category.name if product.category else None,
        attributes=product.attributes,
        variants=[
            ProductVariantV1(sku=v.sku, name=v.name, options=v.options,
                             price=Money(amount=v.price_amount, currency=v.currency))
            for v in product.variants
        ],
        updated_at=product.updated_at,
    )


async def publish_product(session: AsyncSession, product: Product) -> None:
    await record_event(session, product_updated(product), aggregate_id=product.id)


def forget_cached(session: AsyncSession, cache: ProductCache | None, product_ids: Sequence[uuid.UUID]) -> None:
    """Drop the cached documents of products this unit of work changed, once it commits."""
    if cache is None or not product_ids:
        return
    tenant = session.info[TENANT_KEY]
    changed = list(product_ids)

    async def drop() -> None:
        for product_id in changed:
            await cache.drop(tenant, product_id)

    after_commit(session, drop)


async def _republish(session: AsyncSession, products: Sequence[Product], cache: ProductCache | None) -> None:
    """A renamed category or brand changes how its products read: tell the read models. The
    products are locked (`lock_in_category`, `lock_of_brand`) since before the rename."""
    if not products:
        return
    now = utcnow()
    for product in products:
        product.updated_at = now
    await _flush(session)
    for product in products:
        await publish_product(session, product)
    forget_cached(session, cache, [p.id for p in products])
