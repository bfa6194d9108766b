"""Slugs: derived from names, made unique within the tenant with a numeric suffix."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection

from amazonlite.services.catalog.repository import BrandRepository, CategoryRepository, ProductRepository

PRODUCT_SLUG_BASE_LENGTH = 180  # leaves room for a "-<n>" suffix under the 200 of a slug
SHORT_SLUG_BASE_LENGTH = 130  # the same under the 140 of a category's or brand's slug


def slugify(text: str, *, max_length: int = PRODUCT_SLUG_BASE_LENGTH) -> str:
    """'Café Crème 500 g' → 'cafe-creme-500-g'; '' when nothing ASCII is left."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-")


def first_free(base: str, taken: Collection[str]) -> str:
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


async def free_product_slug(products: ProductRepository, name: str) -> str:
    base = slugify(name) or "product"
    return first_free(base, await products.slugs_like(base))


async def free_short_slug(repository: CategoryRepository | BrandRepository, name: str, fallback: str) -> str:
    """A category's or brand's slug derived from its name, with a suffix when the plain one is taken."""
    base = slugify(name, max_length=SHORT_SLUG_BASE_LENGTH) or fallback
    return first_free(base, await repository.slugs_like(base))
