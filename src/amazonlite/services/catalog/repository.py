from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, joinedload, selectinload

from amazonlite.services.catalog.models import Brand, Category, Product, Variant
from amazonlite.services.catalog.schemas import ProductSort

# Each listing order: the column it sorts on and whether it descends; the id breaks ties.
SORT_COLUMNS: dict[str, tuple[InstrumentedAttribute[Any], bool]] = {
    "newest": (Product.created_at, True),
    "price_asc": (Product.min_price, False),
    "price_desc": (Product.min_price, True),
    "name": (Product.name, False),
}


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
    after: tuple[Any, uuid.UUID] | None = None


class CategoryRepository:
    """Every query on categories. The session's tenant scope applies to each one."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, category_id: uuid.UUID) -> Category | None:
        return await self.session.scalar(select(Category).where(Category.id == category_id))

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

    async def in_use(self, brand_id: uuid.UUID) -> bool:
        return await self.session.scalar(select(Product.id).where(Product.brand_id == brand_id).limit(1)) is not None

    def add(self, brand: Brand) -> Brand:
        self.session.add(brand)
        return brand

    async def delete(self, brand: Brand) -> None:
        await self.session.delete(brand)


def _with_everything() -> tuple[Any, ...]:
    return (joinedload(Product.brand), joinedload(Product.category), selectinload(Product.variants))


class ProductRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, product_id: uuid.UUID) -> Product | None:
        """The product with its brand, category and variants, in one round trip."""
        query = (select(Product).where(Product.id == product_id)
                 .options(joinedload(Product.brand), joinedload(Product.category), joinedload(Product.variants)))
        return (await self.session.scalars(query)).unique().one_or_none()

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
        if q.after is not None:
            value, last_id = q.after
            if descending:
                query = query.where(or_(column < value, and_(column == value, Product.id < last_id)))
            else:
                query = query.where(or_(column > value, and_(column == value, Product.id > last_id)))
        order = (column.desc(), Product.id.desc()) if descending else (column.asc(), Product.id.asc())
        return (await self.session.scalars(query.order_by(*order).limit(q.limit + 1))).all()

    async def in_category(self, category_id: uuid.UUID) -> Sequence[Product]:
        query = select(Product).where(Product.category_id == category_id).options(*_with_everything())
        return (await self.session.scalars(query.order_by(Product.id))).all()

    async def of_brand(self, brand_id: uuid.UUID) -> Sequence[Product]:
        query = select(Product).where(Product.brand_id == brand_id).options(*_with_everything())
        return (await self.session.scalars(query.order_by(Product.id))).all()

    async def slugs_like(self, base: str) -> set[str]:
        """`base` and every `base-<suffix>` slug in use (a slug is [a-z0-9-]: no LIKE wildcards)."""
        query = select(Product.slug).where(or_(Product.slug == base, Product.slug.like(f"{base}-%")))
        return set((await self.session.scalars(query)).all())

    async def slug_taken(self, slug: str, *, other_than: uuid.UUID | None = None) -> bool:
        query = select(Product.id).where(Product.slug == slug)
        if other_than is not None:
            query = query.where(Product.id != other_than)
        return await self.session.scalar(query.limit(1)) is not None

    async def skus_taken(self, skus: Collection[str], *, other_than: uuid.UUID | None = None) -> list[str]:
        """Those of `skus` that a variant of another product already has."""
        if not skus:
            return []
        query = select(Variant.sku).where(Variant.sku.in_(skus))
        if other_than is not None:
            query = query.where(Variant.product_id != other_than)
        return sorted((await self.session.scalars(query)).all())

    async def any(self) -> bool:
        return await self.session.scalar(select(Product.id).limit(1)) is not None

    def add(self, product: Product) -> Product:
        self.session.add(product)
        return product

    async def delete(self, product: Product) -> None:
        await self.session.delete(product)
