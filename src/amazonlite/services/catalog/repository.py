from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from amazonlite.platform.tenancy import insert_together
from amazonlite.services.catalog.models import Brand, Category, Product, ProductAttributeValue, Variant, rating
from amazonlite.services.catalog.schemas import ProductSort

M = TypeVar("M", Category, Brand, Product)

# Each listing order: the column it sorts on and whether it descends; the id breaks ties.
SORT_COLUMNS: dict[str, tuple[InstrumentedAttribute[Any], bool]] = {
    "newest": (Product.created_at, True),
    "price_asc": (Product.min_price, False),
    "price_desc": (Product.min_price, True),
    "name": (Product.name, False),
    "rating": (Product.rating_average, True),
}


# Locks -------------------------------------------------------------------------------------------
# A write reads what it changes, and what the event it records carries, under a lock held until
# the transaction ends, so that two writes of one product take turns and each event is the state
# its transaction committed, recorded in commit order. The order is always: a category or brand
# being renamed, then its products (by id), then their variants; a product write that puts the
# product into a category or brand holds that row shared after the product's own lock.
#
# This reasoning is READ COMMITTED: each statement sees the latest commit, and a locking read locks
# the rows it returns and nothing else. The kernel runs PostgreSQL and MySQL/MariaDB engines at
# that level (MariaDB's REPEATABLE READ default would let a name read after waiting for a lock
# predate the write waited for, and lock index gaps too); `populate_existing` replaces any older
# copy of a locked row in the session. Rows are locked by primary key
# only (see `_lock_where`). SQLite has no row locks and its driver opens the transaction at the
# first write: there a write that changes nothing takes the database's write lock first.

def _holds_no_row_locks(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"


async def _hold_database(session: AsyncSession, model: type[M], where: ColumnElement[bool]) -> None:
    await session.execute(update(model).where(where).values(updated_at=model.updated_at)
                          .execution_options(synchronize_session=False))


async def _locked(session: AsyncSession, model: type[M], row_id: uuid.UUID, *, shared: bool = False) -> M | None:
    """The row read afresh, locked until the transaction ends: shared (others may read-lock it too,
    no one may change it) or exclusive. An exclusive lock lets foreign-key checks through."""
    if _holds_no_row_locks(session):
        await _hold_database(session, model, model.id == row_id)
    query = (select(model).where(model.id == row_id).with_for_update(read=shared, key_share=not shared)
             .execution_options(populate_existing=True))
    return await session.scalar(query)


C = TypeVar("C")


def _chunks(values: Sequence[C], size: int = 500) -> Iterable[Sequence[C]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


@dataclass(frozen=True)
class ProductQuery:
    """A page of `GET /products`: filters already resolved to column values."""

    sort: ProductSort
    limit: int
    status: str
    category_ids: Collection[uuid.UUID] | None = None
    brand_id: uuid.UUID | None = None
    min_price: int | None = None
    max_price: int | None = None
    # key → the normalised values it may take (any); every key must match.
    attributes: Mapping[str, Collection[str]] | None = None
    after: tuple[Any, uuid.UUID] | None = None


class CategoryRepository:
    """Every query on categories. The session's tenant scope applies to each one."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, category_id: uuid.UUID) -> Category | None:
        return await self.session.scalar(select(Category).where(Category.id == category_id))

    async def lock(self, category_id: uuid.UUID) -> Category | None:
        """The category to change or delete, locked until the transaction ends."""
        return await _locked(self.session, Category, category_id)

    async def share(self, category_id: uuid.UUID) -> Category | None:
        """The category a product is put in, kept from changing (a rename) until the transaction ends."""
        return await _locked(self.session, Category, category_id, shared=True)

    async def slugs_like(self, base: str) -> set[str]:
        """`base` and every `base-<suffix>` slug in use (a slug is [a-z0-9-]: no LIKE wildcards)."""
        query = select(Category.slug).where(or_(Category.slug == base, Category.slug.like(f"{base}-%")))
        return set((await self.session.scalars(query)).all())

    async def slug_taken(self, slug: str, *, other_than: uuid.UUID | None = None) -> bool:
        query = select(Category.id).where(Category.slug == slug)
        if other_than is not None:
            query = query.where(Category.id != other_than)
        return await self.session.scalar(query.limit(1)) is not None

    async def page(self, *, limit: int, after: tuple[str, uuid.UUID] | None) -> Sequence[Category]:
        query = select(Category)
        if after is not None:
            name, last_id = after
            query = query.where(or_(Category.name > name, and_(Category.name == name, Category.id > last_id)))
        return (await self.session.scalars(query.order_by(Category.name, Category.id).limit(limit))).all()

    async def lock_many(self, category_ids: Collection[uuid.UUID]) -> list[Category]:
        """Categories to change together (a subtree whose breadcrumbs change), locked in id order."""
        if _holds_no_row_locks(self.session):
            await _hold_database(self.session, Category, Category.id.in_(category_ids))
        locked: list[Category] = []
        for chunk in _chunks(sorted(category_ids)):
            query = (select(Category).where(Category.id.in_(chunk)).order_by(Category.id)
                     .with_for_update(key_share=True).execution_options(populate_existing=True))
            locked += (await self.session.scalars(query)).all()
        return locked

    async def definitions(self, category_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
        """The attribute definitions of those of `category_ids` that exist."""
        rows = await self.session.execute(select(Category.id, Category.attributes).where(Category.id.in_(category_ids)))
        return {row.id: row.attributes for row in rows}

    async def all(self) -> Sequence[Category]:
        """Every category of the tenant (categories are few)."""
        return (await self.session.scalars(select(Category))).all()

    async def parents(self) -> dict[uuid.UUID, uuid.UUID | None]:
        """The whole tree of the tenant as child → parent (categories are few)."""
        rows = await self.session.execute(select(Category.id, Category.parent_id))
        return {row.id: row.parent_id for row in rows}

    async def in_use(self, category_id: uuid.UUID) -> bool:
        # Each query selects its entity at the top level, where the tenant scope finds it.
        used = select(Product.id).where(Product.category_id == category_id).limit(1)
        child = select(Category.id).where(Category.parent_id == category_id).limit(1)
        return await self.session.scalar(used) is not None or await self.session.scalar(child) is not None

    def add(self, category: Category) -> Category:
        self.session.add(category)
        return category

    async def delete(self, category: Category) -> None:
        await self.session.delete(category)


class BrandRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, brand_id: uuid.UUID) -> Brand | None:
        return await self.session.scalar(select(Brand).where(Brand.id == brand_id))

    async def lock(self, brand_id: uuid.UUID) -> Brand | None:
        """The brand to change or delete, locked until the transaction ends."""
        return await _locked(self.session, Brand, brand_id)

    async def share(self, brand_id: uuid.UUID) -> Brand | None:
        """The brand a product is put in, kept from changing (a rename) until the transaction ends."""
        return await _locked(self.session, Brand, brand_id, shared=True)

    async def slugs_like(self, base: str) -> set[str]:
        """`base` and every `base-<suffix>` slug in use (a slug is [a-z0-9-]: no LIKE wildcards)."""
        query = select(Brand.slug).where(or_(Brand.slug == base, Brand.slug.like(f"{base}-%")))
        return set((await self.session.scalars(query)).all())

    async def slug_taken(self, slug: str, *, other_than: uuid.UUID | None = None) -> bool:
        query = select(Brand.id).where(Brand.slug == slug)
        if other_than is not None:
            query = query.where(Brand.id != other_than)
        return await self.session.scalar(query.limit(1)) is not None

    async def page(self, *, limit: int, after: tuple[str, uuid.UUID] | None) -> Sequence[Brand]:
        query = select(Brand)
        if after is not None:
            name, last_id = after
            query = query.where(or_(Brand.name > name, and_(Brand.name == name, Brand.id > last_id)))
        return (await self.session.scalars(query.order_by(Brand.name, Brand.id).limit(limit))).all()

    async def named(self, names: Collection[str]) -> Sequence[Brand]:
        """The brands with one of `names`, without regard to case."""
        if not names:
            return []
        return (await self.session.scalars(select(Brand).where(
            func.lower(Brand.name).in_({name.lower() for name in names})))).all()

    async def in_use(self, brand_id: uuid.UUID) -> bool:
        return await self.session.scalar(select(Product.id).where(Product.brand_id == brand_id).limit(1)) is not None

    def add(self, brand: Brand) -> Brand:
        self.session.add(brand)
        return brand

    async def delete(self, brand: Brand) -> None:
        await self.session.delete(brand)


def _with_everything() -> tuple[Any, ...]:
    return (joinedload(Product.brand), joinedload(Product.category), selectinload(Product.variants))


# A product as it reads, in one round trip: a row per variant (in order), or one row with no variant
# columns. Columns, not objects: the hot read skips the identity map and object loading (most of
# its cost). Built once, with the id bound per call, so SQLAlchemy computes its cache key once.
_DOCUMENT_COLUMNS = (
    select(Product.id, Product.name, Product.slug, Product.description, Product.status, Product.attributes,
           Product.media, Product.created_at, Product.updated_at, Product.rating_average, Product.rating_count,
           Brand.id.label("brand_id"), Brand.name.label("brand_name"),
           Category.id.label("category_id"), Category.name.label("category_name"), Category.path.label("category_path"),
           Variant.sku, Variant.name.label("variant_name"), Variant.options, Variant.price_amount,
           Variant.compare_at_amount, Variant.currency)
    .outerjoin(Brand, Brand.id == Product.brand_id)
    .outerjoin(Category, Category.id == Product.category_id)
    .outerjoin(Variant, Variant.product_id == Product.id)
)
_PRODUCT_DOCUMENT = _DOCUMENT_COLUMNS.where(Product.id == bindparam("product_id")).order_by(Variant.position)


def _document(rows: Sequence[Any]) -> dict[str, Any]:
    """A product's document from its rows of `_DOCUMENT_COLUMNS` (one per variant, in order)."""
    first = rows[0]
    return {
        "id": first.id, "name": first.name, "slug": first.slug, "description": first.description,
        "status": first.status, "attributes": first.attributes, "media": first.media,
        "created_at": first.created_at, "updated_at": first.updated_at,
        "rating": rating(first.rating_average, first.rating_count),
        "brand": {"id": first.brand_id, "name": first.brand_name} if first.brand_id else None,
        "category": {"id": first.category_id, "name": first.category_name} if first.category_id else None,
        "breadcrumbs": first.category_path or [],
        "variants": [{"sku": r.sku, "name": r.variant_name, "options": r.options,
                      "price": {"amount": r.price_amount, "currency": r.currency},
                      "compare_at_price": (None if r.compare_at_amount is None else
                                           {"amount": r.compare_at_amount, "currency": r.currency})}
                     for r in rows if r.sku is not None],
    }


class ProductRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def document(self, product_id: uuid.UUID) -> dict[str, Any] | None:
        """The product with its brand, category and variants, shaped as `schemas.Product` reads it."""
        rows = (await self.session.execute(_PRODUCT_DOCUMENT, {"product_id": product_id})).all()
        return _document(rows) if rows else None

    async def documents(self, product_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
        """The documents of those of `product_ids` that exist (`document` for many)."""
        found: dict[uuid.UUID, list[Any]] = defaultdict(list)
        for chunk in _chunks(sorted(product_ids)):
            query = _DOCUMENT_COLUMNS.where(Product.id.in_(chunk)).order_by(Product.id, Variant.position)
            for row in (await self.session.execute(query)).all():
                found[row.id].append(row)
        return {product_id: _document(rows) for product_id, rows in found.items()}

    async def page(self, q: ProductQuery) -> Sequence[Product]:
        """One page (plus one row, to tell whether another follows) with everything a product shows:
        two round trips whatever the page size."""
        column, descending = SORT_COLUMNS[q.sort]
        query = select(Product).where(Product.status == q.status).options(*_with_everything())
        if q.category_ids is not None:
            query = query.where(Product.category_id.in_(q.category_ids))
        if q.brand_id is not None:
            query = query.where(Product.brand_id == q.brand_id)
        if q.min_price is not None:
            query = query.where(Product.min_price >= q.min_price)
        if q.max_price is not None:
            query = query.where(Product.min_price <= q.max_price)
        for key, values in (q.attributes or {}).items():
            query = query.where(Product.id.in_(
                select(ProductAttributeValue.product_id)
                .where(ProductAttributeValue.key == key, ProductAttributeValue.value.in_(values))))
        if q.after is not None:
            value, last_id = q.after
            if descending:
                query = query.where(or_(column < value, and_(column == value, Product.id < last_id)))
            else:
                query = query.where(or_(column > value, and_(column == value, Product.id > last_id)))
        order = (column.desc(), Product.id.desc()) if descending else (column.asc(), Product.id.asc())
        return (await self.session.scalars(query.order_by(*order).limit(q.limit + 1))).all()

    async def lock(self, product_id: uuid.UUID) -> Product | None:
        """The product to change or delete, locked until the transaction ends, read afresh with
        its variants, brand and category (everything its event carries)."""
        product = await _locked(self.session, Product, product_id)
        if product is not None:
            await self._load_for_event([product])
        return product

    async def lock_in_categories(self, category_ids: Collection[uuid.UUID]) -> Sequence[Product]:
        """The products of categories whose breadcrumbs change (locked already), locked in id order."""
        wanted = set(category_ids)
        products = await self._lock_where(Product.category_id.in_(wanted))
        return await self._loaded_for_event([p for p in products if p.category_id in wanted])

    async def lock_of_brand(self, brand_id: uuid.UUID) -> Sequence[Product]:
        """The products of a brand being renamed (locked already), locked in id order."""
        products = await self._lock_where(Product.brand_id == brand_id)
        return await self._loaded_for_event([p for p in products if p.brand_id == brand_id])

    async def _lock_where(self, where: ColumnElement[bool]) -> list[Product]:
        """The products `where` selects, locked by primary key in id order and read afresh; the
        caller drops those a concurrent write moved away before the lock was granted.

        The ids come from a plain read: a product moving in holds its new category or brand
        shared, so it has committed before the caller's lock on that row was granted. Locking
        through the category or brand index instead would, on MariaDB, lock an index entry before
        the row, while a product's own update holds the row and then needs the entry: a deadlock."""
        if _holds_no_row_locks(self.session):
            await _hold_database(self.session, Product, where)
        ids = sorted((await self.session.scalars(select(Product.id).where(where))).all())
        products: list[Product] = []
        for chunk in _chunks(ids):
            query = (select(Product).where(Product.id.in_(chunk)).order_by(Product.id)
                     .with_for_update(key_share=True).execution_options(populate_existing=True))
            products += (await self.session.scalars(query)).all()
        return products

    async def _loaded_for_event(self, products: list[Product]) -> list[Product]:
        await self._load_for_event(products)
        return products

    async def _load_for_event(self, products: Sequence[Product]) -> None:
        """Load the variants (locking: they change only under their product's lock), brands and
        categories of products this transaction holds locked."""
        variants: dict[uuid.UUID, list[Variant]] = defaultdict(list)
        brands: dict[uuid.UUID, Brand] = {}
        categories: dict[uuid.UUID, Category] = {}
        fresh = {"populate_existing": True}
        for ids in _chunks([p.id for p in products]):
            rows = await self.session.scalars(
                select(Variant).where(Variant.product_id.in_(ids)).order_by(Variant.product_id, Variant.position)
                .with_for_update(key_share=True).execution_options(**fresh))
            for row in rows.all():
                variants[row.product_id].append(row)
        for ids in _chunks(sorted({p.brand_id for p in products if p.brand_id is not None})):
            found = await self.session.scalars(select(Brand).where(Brand.id.in_(ids)).execution_options(**fresh))
            brands.update((b.id, b) for b in found.all())
        for ids in _chunks(sorted({p.category_id for p in products if p.category_id is not None})):
            held = await self.session.scalars(select(Category).where(Category.id.in_(ids)).execution_options(**fresh))
            categories.update((c.id, c) for c in held.all())
        for product in products:
            set_committed_value(product, "variants", variants[product.id])
            set_committed_value(product, "brand", brands.get(product.brand_id) if product.brand_id else None)
            set_committed_value(product, "category",
                                categories.get(product.category_id) if product.category_id else None)

    async def index_attributes(self, product_id: uuid.UUID, rows: Collection[tuple[str, str]], *,
                               replace: bool) -> None:
        """Keep the product's filter rows (`attributes.filter_rows`): all of them replaced."""
        if replace:
            await self.session.execute(delete(ProductAttributeValue)
                                       .where(ProductAttributeValue.product_id == product_id)
                                       .execution_options(synchronize_session=False))
        await insert_together(self.session, [(ProductAttributeValue, [
            {"product_id": product_id, "key": key, "value": value} for key, value in sorted(rows)])])

    async def rate(self, product_id: uuid.UUID, *, average: float, count: int, as_of: dt.datetime) -> bool:
        """Store the product's rating unless it holds one as of `as_of` or later; whether it did
        (False: no such product, or a newer rating is stored)."""
        changed = await self.session.execute(
            update(Product)
            .where(Product.id == product_id,
                   or_(Product.rating_as_of.is_(None), Product.rating_as_of < as_of))
            .values(rating_average=average, rating_count=count, rating_as_of=as_of)
            .execution_options(synchronize_session=False))
        return bool(changed.rowcount)  # type: ignore[attr-defined]

    async def slugs_like(self, base: str) -> set[str]:
        """`base` and every `base-<suffix>` slug in use (a slug is [a-z0-9-]: no LIKE wildcards)."""
        query = select(Product.slug).where(or_(Product.slug == base, Product.slug.like(f"{base}-%")))
        return set((await self.session.scalars(query)).all())

    async def slug_taken(self, slug: str, *, other_than: uuid.UUID | None = None) -> bool:
        query = select(Product.id).where(Product.slug == slug)
        if other_than is not None:
            query = query.where(Product.id != other_than)
        return await self.session.scalar(query.limit(1)) is not None

    async def slugs_taken(self, slugs: Collection[str]) -> set[str]:
        """Those of `slugs` a product has."""
        taken: set[str] = set()
        for chunk in _chunks(sorted(slugs)):
            taken.update((await self.session.scalars(select(Product.slug).where(Product.slug.in_(chunk)))).all())
        return taken

    async def slugs_like_any(self, bases: Collection[str]) -> set[str]:
        """Each of `bases` and every `base-<suffix>` slug in use (`slugs_like` for many bases)."""
        found: set[str] = set()
        for chunk in _chunks(sorted(bases), size=100):  # two terms each: SQLite's expression depth is 1,000
            query = select(Product.slug).where(or_(*(or_(Product.slug == base, Product.slug.like(f"{base}-%"))
                                                     for base in chunk)))
            found.update((await self.session.scalars(query)).all())
        return found

    async def owners_of_skus(self, skus: Collection[str]) -> dict[str, uuid.UUID]:
        """The product each of `skus` that exists belongs to."""
        owners: dict[str, uuid.UUID] = {}
        for chunk in _chunks(sorted(set(skus))):
            rows = await self.session.execute(select(Variant.sku, Variant.product_id).where(Variant.sku.in_(chunk)))
            owners.update((row.sku, row.product_id) for row in rows)
        return owners

    async def skus_taken(self, skus: Collection[str], *, other_than: uuid.UUID | None = None) -> list[str]:
        """Those of `skus` that a variant of another product already has."""
        if not skus:
            return []
        query = select(Variant.sku).where(Variant.sku.in_(skus))
        if other_than is not None:
            query = query.where(Variant.product_id != other_than)
        return sorted((await self.session.scalars(query)).all())

    async def skus(self, skus: Collection[str], *, active_only: bool) -> Sequence[Any]:
        """The variants of `skus` with their product's name, status and change time: one Core
        select of columns (no objects loaded), in the order asked."""
        query = (select(Variant.sku, Variant.name.label("variant_name"), Variant.price_amount, Variant.currency,
                        Product.id.label("product_id"), Product.name.label("product_name"), Product.status,
                        Product.updated_at)
                 .join(Product, Product.id == Variant.product_id)
                 .where(Variant.sku.in_(skus)))
        if active_only:
            query = query.where(Product.status == "active")
        rows = {row.sku: row for row in (await self.session.execute(query)).all()}
        return [rows[sku] for sku in dict.fromkeys(skus) if sku in rows]

    async def any(self) -> bool:
        return await self.session.scalar(select(Product.id).limit(1)) is not None

    def add(self, product: Product) -> Product:
        self.session.add(product)
        return product

    async def delete(self, product: Product) -> None:
        await self.session.delete(product)
