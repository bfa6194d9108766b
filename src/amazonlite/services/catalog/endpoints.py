from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import StringConstraints

from amazonlite.platform.errors import Forbidden, Unauthorized, UriTooLong, ValidationFailed, problem_responses
from amazonlite.platform.pagination import CursorParam, InvalidCursor, Limit, Page
from amazonlite.platform.service import RuntimeDep, SessionDep
from amazonlite.services.catalog import products, schemas, taxonomy
from amazonlite.services.catalog.auth import CatalogAdmin, CatalogReader, sees_everything
from amazonlite.services.catalog.cache import ProductCache
from amazonlite.services.catalog.errors import (
    BrandInUse,
    BrandNotFound,
    CatalogConflict,
    CategoryInUse,
    CategoryNotFound,
    DuplicateSku,
    DuplicateSlug,
    InvalidAttribute,
    InvalidAttributeFilter,
    InvalidCategoryParent,
    InvalidPriceRange,
    ProductNotFound,
    StatusFilterForbidden,
    UnknownBrand,
    UnknownCategory,
)

router = APIRouter(prefix="/api/v1")

WRITE_ERRORS = (Unauthorized, Forbidden, ValidationFailed)
Price = Annotated[int | None, Query(ge=0, le=schemas.MAX_MONEY, description="Minor units, on the lowest variant price")]


async def _product_cache(runtime: RuntimeDep) -> ProductCache | None:
    cache: ProductCache | None = runtime.state.product_cache  # set at start-up (commands.on_startup)
    return cache


ProductCacheDep = Annotated[ProductCache | None, Depends(_product_cache)]
JSON = "application/json"


# Products ---------------------------------------------------------------------------------------

@router.get("/products", response_model=Page[schemas.Product], tags=["products"],
            responses=problem_responses(InvalidCursor, StatusFilterForbidden, InvalidPriceRange,
                                        InvalidAttributeFilter, UriTooLong))
async def list_products(
    session: SessionDep, principal: CatalogReader,
    category: Annotated[uuid.UUID | None, Query(description="A category id; includes its subcategories")] = None,
    brand: Annotated[uuid.UUID | None, Query(description="A brand id")] = None,
    min_price: Price = None,
    max_price: Price = None,
    sort: schemas.ProductSort = "newest",
    status: Annotated[schemas.ProductStatus | None, Query(description="Admins only; default active")] = None,
    attribute: Annotated[list[Annotated[str, StringConstraints(max_length=200)]], Query(
        max_length=schemas.MAX_ATTRIBUTE_FILTERS, description=(
            "key:value, repeatable: a product matches when it has one of the values given for each key "
            "(an element of a list counts; text without regard to case)"))] = [],  # noqa: B006 (FastAPI copies it)
    limit: Limit = 20,
    cursor: CursorParam = None,
) -> Page[schemas.Product]:
    filters = schemas.ProductFilter(category_id=category, brand_id=brand, min_price=min_price,
                                    max_price=max_price, status=status, attributes=attribute)
    items, next_cursor = await products.list_products(session, filters, sort=sort, limit=limit, cursor=cursor,
                                                     admin=sees_everything(principal))
    return Page[schemas.Product](items=[schemas.Product.model_validate(p) for p in items], next_cursor=next_cursor)


@router.get("/products/{product_id}", response_model=schemas.Product, tags=["products"],
            responses=problem_responses(ProductNotFound, ValidationFailed))
async def read_product(product_id: uuid.UUID, session: SessionDep, principal: CatalogReader,
                       cache: ProductCacheDep) -> Response:
    document = await products.product_document(session, product_id, admin=sees_everything(principal), cache=cache)
    return Response(document, media_type=JSON)


@router.post("/products", status_code=201, response_model=schemas.Product, tags=["products"],
             responses=problem_responses(*WRITE_ERRORS, DuplicateSku, DuplicateSlug, CatalogConflict, UnknownCategory,
                                         UnknownBrand, InvalidAttribute))
async def create_product(_admin: CatalogAdmin, data: schemas.ProductCreate, session: SessionDep) -> schemas.Product:
    product = await products.create_product(session, data)
    return schemas.Product.model_validate(product)


@router.patch("/products/{product_id}", response_model=schemas.Product, tags=["products"],
              responses=problem_responses(*WRITE_ERRORS, ProductNotFound, DuplicateSku, DuplicateSlug,
                                          UnknownCategory, UnknownBrand, CatalogConflict, InvalidAttribute))
async def update_product(_admin: CatalogAdmin, product_id: uuid.UUID, changes: schemas.ProductUpdate,
                         session: SessionDep, cache: ProductCacheDep) -> schemas.Product:
    product = await products.update_product(session, product_id, changes, cache=cache)
    return schemas.Product.model_validate(product)


@router.delete("/products/{product_id}", status_code=204, tags=["products"],
               responses=problem_responses(*WRITE_ERRORS, ProductNotFound, CatalogConflict))
async def delete_product(_admin: CatalogAdmin, product_id: uuid.UUID, session: SessionDep,
                         cache: ProductCacheDep) -> None:
    await products.delete_product(session, product_id, cache=cache)


# SKUs -------------------------------------------------------------------------------------------

@router.get("/skus", response_model=schemas.SkuList, tags=["products"],
            responses=problem_responses(ValidationFailed))
async def lookup_skus(session: SessionDep, principal: CatalogReader,
                      sku: Annotated[schemas.SkuQuery, Query(description=(
                          f"1-{schemas.MAX_SKUS_PER_LOOKUP} SKUs (repeat the parameter); unknown ones are left "
                          "out of the answer, and so are those of products that are not active unless the "
                          "caller is an admin"))],
                      ) -> schemas.SkuList:
    items = await products.lookup_skus(session, sku, admin=sees_everything(principal))
    return schemas.SkuList.model_validate({"items": items})


# Categories -------------------------------------------------------------------------------------

@router.get("/categories", response_model=Page[schemas.Category], tags=["categories"],
            responses=problem_responses(InvalidCursor))
async def list_categories(session: SessionDep, limit: Limit = 100, cursor: CursorParam = None
                          ) -> Page[schemas.Category]:
    items, next_cursor = await taxonomy.list_categories(session, limit=limit, cursor=cursor)
    return Page[schemas.Category](items=[schemas.Category.model_validate(c) for c in items],
                                  next_cursor=next_cursor)


@router.get("/categories/{category_id}", response_model=schemas.Category, tags=["categories"],
            responses=problem_responses(CategoryNotFound, ValidationFailed))
async def read_category(category_id: uuid.UUID, session: SessionDep) -> schemas.Category:
    return schemas.Category.model_validate(await taxonomy.get_category(session, category_id))


@router.post("/categories", status_code=201, response_model=schemas.Category, tags=["categories"],
             responses=problem_responses(*WRITE_ERRORS, DuplicateSlug, UnknownCategory, CatalogConflict))
async def create_category(_admin: CatalogAdmin, data: schemas.CategoryCreate, session: SessionDep
                          ) -> schemas.Category:
    return schemas.Category.model_validate(await taxonomy.create_category(session, data))


@router.patch("/categories/{category_id}", response_model=schemas.Category, tags=["categories"],
              responses=problem_responses(*WRITE_ERRORS, CategoryNotFound, DuplicateSlug, UnknownCategory,
                                          InvalidAttribute,
    InvalidAttributeFilter,
    InvalidCategoryParent, CatalogConflict))
async def update_category(_admin: CatalogAdmin, category_id: uuid.UUID, changes: schemas.CategoryUpdate,
                          session: SessionDep, cache: ProductCacheDep) -> schemas.Category:
    return schemas.Category.model_validate(await taxonomy.update_category(session, category_id, changes,
                                                                         cache=cache))


@router.delete("/categories/{category_id}", status_code=204, tags=["categories"],
               responses=problem_responses(*WRITE_ERRORS, CategoryNotFound, CategoryInUse))
async def delete_category(_admin: CatalogAdmin, category_id: uuid.UUID, session: SessionDep) -> None:
    await taxonomy.delete_category(session, category_id)


# Brands -----------------------------------------------------------------------------------------

@router.get("/brands", response_model=Page[schemas.Brand], tags=["brands"],
            responses=problem_responses(InvalidCursor))
async def list_brands(session: SessionDep, limit: Limit = 100, cursor: CursorParam = None) -> Page[schemas.Brand]:
    items, next_cursor = await taxonomy.list_brands(session, limit=limit, cursor=cursor)
    return Page[schemas.Brand](items=[schemas.Brand.model_validate(b) for b in items], next_cursor=next_cursor)


@router.post("/brands", status_code=201, response_model=schemas.Brand, tags=["brands"],
             responses=problem_responses(*WRITE_ERRORS, DuplicateSlug, CatalogConflict))
async def create_brand(_admin: CatalogAdmin, data: schemas.BrandCreate, session: SessionDep) -> schemas.Brand:
    return schemas.Brand.model_validate(await taxonomy.create_brand(session, data))


@router.patch("/brands/{brand_id}", response_model=schemas.Brand, tags=["brands"],
              responses=problem_responses(*WRITE_ERRORS, BrandNotFound, DuplicateSlug, CatalogConflict))
async def update_brand(_admin: CatalogAdmin, brand_id: uuid.UUID, changes: schemas.BrandUpdate,
                       session: SessionDep, cache: ProductCacheDep) -> schemas.Brand:
    return schemas.Brand.model_validate(await taxonomy.update_brand(session, brand_id, changes, cache=cache))


@router.delete("/brands/{brand_id}", status_code=204, tags=["brands"],
               responses=problem_responses(*WRITE_ERRORS, BrandNotFound, BrandInUse))
async def delete_brand(_admin: CatalogAdmin, brand_id: uuid.UUID, session: SessionDep) -> None:
    await taxonomy.delete_brand(session, brand_id)
