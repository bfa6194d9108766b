"""Categories (a tree per tenant) and brands: the names products are filed under."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.platform.ids import new_id
from amazonlite.services.catalog import publishing
from amazonlite.services.catalog.cache import ProductCache
from amazonlite.services.catalog.cursors import name_cursor_after, name_page
from amazonlite.services.catalog.errors import (
    BrandInUse,
    BrandNotFound,
    CategoryInUse,
    CategoryNotFound,
    DuplicateSlug,
    InvalidCategoryParent,
    UnknownBrand,
    UnknownCategory,
)
from amazonlite.services.catalog.integrity import flush
from amazonlite.services.catalog.models import Brand, Category, Product
from amazonlite.services.catalog.repository import BrandRepository, CategoryRepository, ProductRepository
from amazonlite.services.catalog.schemas import (
    AttributeDefinition,
    BrandCreate,
    BrandUpdate,
    CategoryCreate,
    CategoryUpdate,
)
from amazonlite.services.catalog.slugs import free_short_slug

log = structlog.get_logger("amazonlite.catalog")


# Categories -------------------------------------------------------------------------------------

async def list_categories(session: AsyncSession, *, limit: int, cursor: str | None
                          ) -> tuple[Sequence[Category], str | None]:
    rows = await CategoryRepository(session).page(limit=limit + 1, after=name_cursor_after(cursor))
    return name_page(rows, limit)


async def get_category(session: AsyncSession, category_id: uuid.UUID) -> Category:
    category = await CategoryRepository(session).get(category_id)
    if category is None:
        raise CategoryNotFound()
    return category


async def _locked_category(categories: CategoryRepository, category_id: uuid.UUID) -> Category:
    category = await categories.lock(category_id)
    if category is None:
        raise CategoryNotFound()
    return category


def crumb(category: Category) -> dict[str, str]:
    """The category as its own and its descendants' breadcrumbs name it."""
    return {"id": str(category.id), "name": category.name, "slug": category.slug}


async def create_category(session: AsyncSession, data: CategoryCreate) -> Category:
    categories = CategoryRepository(session)
    if data.slug is None:
        slug = await free_short_slug(categories, data.name, "category")
    elif await categories.slug_taken(data.slug):
        raise DuplicateSlug(f"A category already has the slug {data.slug!r}")
    else:
        slug = data.slug
    parent = None
    if data.parent_id is not None:
        # Held shared: its breadcrumbs start ours, and its rename or move waits for this write.
        parent = await categories.share(data.parent_id)
        if parent is None:
            raise UnknownCategory("The parent category does not exist")
    category = Category(id=new_id(), name=data.name, slug=slug, parent_id=data.parent_id,
                        attributes=[d.model_dump() for d in data.attributes])
    category.path = [*(parent.path if parent else []), crumb(category)]
    categories.add(category)
    await flush(session)
    log.info("catalog.category_created", category_id=str(category.id))
    return category


async def update_category(session: AsyncSession, category_id: uuid.UUID, changes: CategoryUpdate, *,
                          cache: ProductCache | None = None) -> Category:
    """Change a category. A new name, slug or parent changes the breadcrumbs of the category, of
    every category under it and of all their products, which are republished: the subtree's
    categories are locked (in id order), then their products, before anything else is read."""
    categories = CategoryRepository(session)
    category = await _locked_category(categories, category_id)
    fields = changes.model_fields_set
    moved = "parent_id" in fields and changes.parent_id != category.parent_id
    renamed = (changes.name is not None and changes.name != category.name) or (
        changes.slug is not None and changes.slug != category.slug)
    subtree_rows: dict[uuid.UUID, Category] = {}
    products: Sequence[Product] = ()
    parents: dict[uuid.UUID, uuid.UUID | None] = {}
    if moved or renamed:
        subtree_rows[category.id] = category
        while True:  # until no subcategory was added under a locked one while we waited for it
            parents = await categories.parents()
            below = subtree(parents, category.id) - subtree_rows.keys()
            locked = await categories.lock_many(below) if below else []
            if not locked:
                break
            subtree_rows.update((c.id, c) for c in locked)
        products = await ProductRepository(session).lock_in_categories(subtree_rows)
    if changes.slug is not None and changes.slug != category.slug:
        if await categories.slug_taken(changes.slug, other_than=category.id):
            raise DuplicateSlug(f"A category already has the slug {changes.slug!r}")
        category.slug = changes.slug
    parent_path = None
    if moved:
        parent_path = []
        if changes.parent_id is not None:
            parent_path = (await _new_parent(categories, category, changes.parent_id, parents)).path
        category.parent_id = changes.parent_id
    if changes.name is not None:
        category.name = changes.name
    if changes.attributes is not None:
        category.attributes = [d.model_dump() for d in changes.attributes]
    if subtree_rows:
        start = parent_path if parent_path is not None else category.path[:-1]
        _rewrite_paths(subtree_rows, category, start)
    await flush(session)
    await publishing.republish(session, products, cache)
    return category


def _rewrite_paths(rows: dict[uuid.UUID, Category], top: Category, above: list[dict[str, str]]) -> None:
    """New breadcrumbs for `top` (under `above`) and every category of `rows` below it, top down."""
    children: dict[uuid.UUID | None, list[Category]] = {}
    for row in rows.values():
        children.setdefault(row.parent_id, []).append(row)
    top.path = [*above, crumb(top)]
    pending = [top]
    while pending:
        node = pending.pop()
        for child in children.get(node.id, ()):
            if child is not top:
                child.path = [*node.path, crumb(child)]
                pending.append(child)


async def _new_parent(categories: CategoryRepository, category: Category, parent_id: uuid.UUID,
                      parents: dict[uuid.UUID, uuid.UUID | None]) -> Category:
    """The category `category` moves under, held shared; never itself or one below it."""
    if parent_id not in parents:
        raise UnknownCategory("The parent category does not exist")
    node: uuid.UUID | None = parent_id
    for _ in range(len(parents) + 1):  # bounded even if the stored tree were ever cyclic
        if node is None:
            break
        if node == category.id:
            raise InvalidCategoryParent()
        node = parents.get(node)
    parent = await categories.share(parent_id)
    if parent is None:  # deleted since the tree was read
        raise UnknownCategory("The parent category does not exist")
    return parent


async def delete_category(session: AsyncSession, category_id: uuid.UUID) -> None:
    categories = CategoryRepository(session)
    category = await _locked_category(categories, category_id)
    if await categories.in_use(category.id):
        raise CategoryInUse("Move or delete its products and subcategories first")
    await categories.delete(category)
    await flush(session, CategoryInUse("Move or delete its products and subcategories first"))


async def ensure_categories(session: AsyncSession,
                            tree: Sequence[tuple[tuple[str, ...], Sequence[dict[str, Any]]]]) -> None:
    """Make each category of `tree` (its names from the root, and its attribute definitions) that is
    missing, parents before children; an existing one gets the definitions given."""
    categories = CategoryRepository(session)
    known = {(c.parent_id, c.name): c for c in await categories.all()}
    for path, definitions in tree:
        parent: Category | None = None
        for depth, name in enumerate(path, start=1):
            found = known.get((parent.id if parent else None, name))
            wanted = [AttributeDefinition.model_validate(d) for d in definitions] if depth == len(path) else None
            if found is None:
                found = await create_category(session, CategoryCreate(
                    name=name, parent_id=parent.id if parent else None, attributes=wanted or []))
                known[(found.parent_id, name)] = found
            elif wanted is not None:
                found.attributes = [d.model_dump() for d in wanted]
            parent = found
    await flush(session)


def subtree(parents: dict[uuid.UUID, uuid.UUID | None], root: uuid.UUID) -> set[uuid.UUID]:
    """`root` and every category under it."""
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


async def category_for(session: AsyncSession, category_id: uuid.UUID | None) -> Category | None:
    """The category a product is put in, held shared so that a rename waits for this write and
    then republishes the product too."""
    if category_id is None:
        return None
    category = await CategoryRepository(session).share(category_id)
    if category is None:
        raise UnknownCategory(f"No category {category_id}")
    return category


# Brands -----------------------------------------------------------------------------------------

async def list_brands(session: AsyncSession, *, limit: int, cursor: str | None) -> tuple[Sequence[Brand], str | None]:
    rows = await BrandRepository(session).page(limit=limit + 1, after=name_cursor_after(cursor))
    return name_page(rows, limit)


async def _locked_brand(brands: BrandRepository, brand_id: uuid.UUID) -> Brand:
    brand = await brands.lock(brand_id)
    if brand is None:
        raise BrandNotFound()
    return brand


async def create_brand(session: AsyncSession, data: BrandCreate) -> Brand:
    brands = BrandRepository(session)
    if data.slug is None:
        slug = await free_short_slug(brands, data.name, "brand")
    elif await brands.slug_taken(data.slug):
        raise DuplicateSlug(f"A brand already has the slug {data.slug!r}")
    else:
        slug = data.slug
    brand = brands.add(Brand(name=data.name, slug=slug))
    await flush(session)
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
    await flush(session)
    await publishing.republish(session, products, cache)
    return brand


async def delete_brand(session: AsyncSession, brand_id: uuid.UUID) -> None:
    brands = BrandRepository(session)
    brand = await _locked_brand(brands, brand_id)
    if await brands.in_use(brand.id):
        raise BrandInUse("Move or delete its products first")
    await brands.delete(brand)
    await flush(session, BrandInUse("Move or delete its products first"))


async def brand_for(session: AsyncSession, brand_id: uuid.UUID | None) -> Brand | None:
    """The brand a product is put in, held shared like its category."""
    if brand_id is None:
        return None
    brand = await BrandRepository(session).share(brand_id)
    if brand is None:
        raise UnknownBrand(f"No brand {brand_id}")
    return brand
