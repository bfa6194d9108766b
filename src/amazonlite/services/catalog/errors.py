from __future__ import annotations

from amazonlite.platform.errors import Conflict, Forbidden, NotFound, ValidationFailed


class ProductNotFound(NotFound):
    type = "product-not-found"
    title = "No such product"


class CategoryNotFound(NotFound):
    type = "category-not-found"
    title = "No such category"


class BrandNotFound(NotFound):
    type = "brand-not-found"
    title = "No such brand"


class DuplicateSlug(Conflict):
    type = "duplicate-slug"
    title = "The slug is already in use"


class DuplicateSku(Conflict):
    type = "duplicate-sku"
    title = "A SKU is already in use"


class CategoryInUse(Conflict):
    type = "category-in-use"
    title = "The category still has products or subcategories"


class BrandInUse(Conflict):
    type = "brand-in-use"
    title = "The brand still has products"


class CatalogConflict(Conflict):
    type = "catalog-conflict"
    title = "The change conflicts with another one; reload and try again"


class UnknownCategory(ValidationFailed):
    type = "unknown-category"
    title = "The category does not exist"


class UnknownBrand(ValidationFailed):
    type = "unknown-brand"
    title = "The brand does not exist"


class InvalidCategoryParent(ValidationFailed):
    type = "invalid-category-parent"
    title = "A category cannot sit under itself or one of its subcategories"


class InvalidPriceRange(ValidationFailed):
    type = "invalid-price-range"
    title = "min_price is greater than max_price"


class StatusFilterForbidden(Forbidden):
    type = "status-filter-forbidden"
    title = "Only admins can list products that are not active"


class InvalidAttribute(ValidationFailed):
    type = "invalid-attribute"
    title = "An attribute does not follow its category's definition"

    def __init__(self, detail: str, *, attribute: str) -> None:
        super().__init__(detail, attribute=attribute)


class InvalidAttributeFilter(ValidationFailed):
    type = "invalid-attribute-filter"
    title = "An attribute filter is not key:value"

