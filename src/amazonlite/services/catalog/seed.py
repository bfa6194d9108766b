"""Loads the demo catalog (`demo.py`) into a tenant: `ServiceModule.seed` of the catalog."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.platform.ids import new_id
from amazonlite.platform.service import ServiceRuntime
from amazonlite.services.catalog import demo
from amazonlite.services.catalog.attributes import filter_rows
from amazonlite.services.catalog.models import Brand, Category, Product, Variant
from amazonlite.services.catalog.products import reprice
from amazonlite.services.catalog.publishing import publish_product
from amazonlite.services.catalog.repository import BrandRepository, CategoryRepository, ProductRepository
from amazonlite.services.catalog.slugs import slugify
from amazonlite.services.catalog.taxonomy import crumb

log = structlog.get_logger("amazonlite.catalog")

BATCH = 25


async def seed(runtime: ServiceRuntime, tenant_id: str) -> None:
    """Load the demo catalog into `tenant_id`, unless the tenant already has products."""
    async with runtime.db.session(tenant_id=tenant_id) as session:
        created = await seed_catalog(session)
    log.info("catalog.seeded", tenant_id=tenant_id, products=created)


async def seed_catalog(session: AsyncSession) -> int:
    """Add the demo categories, brands and products, each product with its `ProductUpdatedV1`;
    returns how many products were added (0 when the tenant has some already)."""
    product_repository = ProductRepository(session)
    if await product_repository.any():
        return 0
    category_repository, brand_repository = CategoryRepository(session), BrandRepository(session)
    categories: dict[str, Category] = {}
    for slug, name, parent in demo.CATEGORIES:
        above = categories[parent] if parent else None
        category = Category(id=new_id(), name=name, slug=slug, parent_id=above.id if above else None,
                            attributes=list(demo.ATTRIBUTE_DEFINITIONS.get(slug, ())))
        category.path = [*(above.path if above else []), crumb(category)]
        categories[slug] = category_repository.add(category)
    brands = {slug: brand_repository.add(Brand(name=name, slug=slug)) for slug, name in demo.BRANDS}
    products = [_product(number, item, categories[item.category], brands[item.brand])
                for number, item in enumerate(demo.PRODUCTS, start=1)]
    for start in range(0, len(products), BATCH):
        for product in products[start:start + BATCH]:
            product_repository.add(product)
        await session.flush()
    for product in products:
        await product_repository.index_attributes(product.id, filter_rows(product.attributes), replace=False)
        await publish_product(session, product)
    return len(products)


def _product(number: int, item: demo.DemoProduct, category: Category, brand: Brand) -> Product:
    slug = slugify(item.name)
    prefix = demo.SKU_PREFIX[item.category]
    variants = [
        Variant(sku=f"{prefix}-{number:03d}-{position + 1}", name=" / ".join(options.values()) or "Standard",
                options=options, price_amount=rupees * 100, currency=demo.CURRENCY, position=position)
        for position, (options, rupees) in enumerate(item.variants)
    ]
    product = Product(
        name=item.name, slug=slug, description=item.description, status="active", category=category,
        brand=brand, attributes=item.attributes, variants=variants,
        media=[{"url": f"{demo.MEDIA_BASE}/{slug}/{n}.jpg", "alt": f"{item.name}, {view}"}
               for n, view in enumerate(("front", "detail"), start=1)],
    )
    reprice(product)
    return product
