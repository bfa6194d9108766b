"""What the catalog tells others about its products: `product.updated.v1` through the outbox, and
the hot-product cache's drops once a change commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.contracts.base import Money
from amazonlite.contracts.catalog import CategoryRefV1, ProductMediaV1, ProductUpdatedV1, ProductVariantV1
from amazonlite.platform.db import after_commit, utcnow
from amazonlite.platform.outbox import record_event
from amazonlite.platform.tenancy import TENANT_KEY
from amazonlite.services.catalog.cache import ProductCache
from amazonlite.services.catalog.integrity import flush
from amazonlite.services.catalog.models import Product


def product_updated(product: Product) -> ProductUpdatedV1:
    """The product's full state as the contract carries it (brand, category and variants loaded)."""
    return ProductUpdatedV1(
        product_id=product.id, name=product.name, slug=product.slug, description=product.description,
        status=product.status,
        brand_id=product.brand.id if product.brand else None,
        brand_name=product.brand.name if product.brand else None,
        category_id=product.category.id if product.category else None,
        category_name=product.category.name if product.category else None,
        category_path=[CategoryRefV1(id=crumb["id"], name=crumb["name"]) for crumb in product.breadcrumbs],
        attributes=product.attributes,
        media=[ProductMediaV1(url=item["url"], alt=item.get("alt", "")) for item in product.media],
        variants=[
            ProductVariantV1(sku=v.sku, name=v.name, options=v.options,
                             price=Money(amount=v.price_amount, currency=v.currency),
                             compare_at_price=(None if v.compare_at_amount is None else
                                               Money(amount=v.compare_at_amount, currency=v.currency)))
            for v in product.variants
        ],
        created_at=product.created_at,
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


async def republish(session: AsyncSession, products: Sequence[Product], cache: ProductCache | None) -> None:
    """A renamed (or moved) category or brand changes how its products read: tell the read models. The
    products are locked (`lock_in_categories`, `lock_of_brand`) since before the rename."""
    if not products:
        return
    now = utcnow()
    for product in products:
        product.updated_at = now
    await flush(session)
    for product in products:
        await publish_product(session, product)
    forget_cached(session, cache, [p.id for p in products])
