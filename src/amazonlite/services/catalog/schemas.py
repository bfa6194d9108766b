from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AllowInfNan,
    AnyUrl,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictInt,
    StringConstraints,
    UrlConstraints,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from amazonlite.platform.money import Currency, Money
from amazonlite.platform.numbers import JSON_INTEGER
from amazonlite.platform.text import STRIPPED, MultiLine, NonBlankLine, SingleLine

ProductId = uuid.UUID
CategoryId = uuid.UUID
BrandId = uuid.UUID

ProductStatus = Literal["draft", "active", "archived"]
ProductSort = Literal["newest", "price_asc", "price_desc", "name", "rating"]
AttributeType = Literal["text", "number", "boolean", "one_of"]

MAX_VARIANTS = 100
MAX_MONEY = 10**13  # minor units; far above any real price, well inside a BIGINT

NAME_LENGTH = 200  # the columns' lengths, which a cursor's name is held to as well
SHORT_NAME_LENGTH = 120


def _without_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


# Every free-text string of the API: PostgreSQL cannot store NUL in text, and no client means one.
Text = Annotated[str, AfterValidator(_without_nul)]

# Names are one line of visible text; a description may have lines, but no other control characters.
Name = Annotated[NonBlankLine, StringConstraints(min_length=1, max_length=NAME_LENGTH), STRIPPED]
ShortName = Annotated[NonBlankLine, StringConstraints(min_length=1,
                                                    max_length=SHORT_NAME_LENGTH), STRIPPED]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=200)]
ShortSlug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=140)]
Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Description = Annotated[MultiLine, StringConstraints(max_length=10_000)]
MediaUrl = Annotated[AnyUrl, UrlConstraints(max_length=2048, allowed_schemes=["http", "https"], host_required=True)]

# JSON has no NaN or Infinity: PostgreSQL and MariaDB refuse them and SQLite would store invalid JSON.
FiniteFloat = Annotated[float, Strict(), AllowInfNan(False)]

AttributeKey = Annotated[Text, StringConstraints(min_length=1, max_length=64)]
# A key a category defines: a plain identifier, so that a filter `key:value` reads unambiguously.
DefinedKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
AttributeScalar = Annotated[Text, StringConstraints(max_length=500)] | StrictBool | StrictInt | FiniteFloat
AttributeValue = AttributeScalar | Annotated[list[AttributeScalar], Field(max_length=50)]
Attributes = Annotated[dict[AttributeKey, AttributeValue], Field(max_length=50)]

OptionKey = Annotated[NonBlankLine, StringConstraints(min_length=1, max_length=40), STRIPPED]
OptionValue = Annotated[NonBlankLine, StringConstraints(min_length=1, max_length=100), STRIPPED]
Options = Annotated[dict[OptionKey, OptionValue], Field(max_length=10)]


class MoneyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Annotated[int, Field(ge=0, le=MAX_MONEY, description="Integer minor units (paise, cents)"), JSON_INTEGER]
    currency: Currency


class MediaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: MediaUrl
    alt: Annotated[SingleLine, StringConstraints(max_length=300)] = ""


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku
    name: Name
    options: Options = Field(default_factory=dict)
    price: MoneyIn
    compare_at_price: MoneyIn | None = Field(default=None, description=(
        "The price it is shown reduced from: higher than `price`, in its currency"))

    @model_validator(mode="after")
    def _compare_at(self) -> VariantIn:
        was = self.compare_at_price
        if was is not None and (was.currency != self.price.currency or was.amount <= self.price.amount):
            raise ValueError("compare_at_price must be higher than price, in the same currency")
        return self


Variants = Annotated[list[VariantIn], Field(min_length=1, max_length=MAX_VARIANTS, description=(
    "Each variant has its own SKU, and all share one currency (422 otherwise)"))]
Media = Annotated[list[MediaIn], Field(max_length=20)]


def _check_variants(variants: list[VariantIn]) -> None:
    skus = [v.sku for v in variants]
    if len(set(skus)) != len(skus):
        raise ValueError("each variant needs its own sku")
    if len({v.price.currency for v in variants}) > 1:
        raise ValueError("all variants of a product share one currency")


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    slug: Slug | None = Field(default=None, description="Derived from the name when omitted")
    description: Description = ""
    status: ProductStatus = "draft"
    category_id: CategoryId | None = None
    brand_id: BrandId | None = None
    attributes: Attributes = Field(default_factory=dict)
    media: Media = Field(default_factory=list)
    variants: Variants

    @model_validator(mode="after")
    def _variants(self) -> ProductCreate:
        _check_variants(self.variants)
        return self


class ProductUpdate(BaseModel):
    """A partial update; `variants`, when given, replace the product's list (a SKU that reappears
    keeps its row). `category_id` and `brand_id` may be set to null to clear them."""

    model_config = ConfigDict(extra="forbid")

    name: Name | SkipJsonSchema[None] = None
    slug: Slug | SkipJsonSchema[None] = None
    description: Description | SkipJsonSchema[None] = None
    status: ProductStatus | SkipJsonSchema[None] = None
    category_id: CategoryId | None = None
    brand_id: BrandId | None = None
    attributes: Attributes | SkipJsonSchema[None] = None
    media: Media | SkipJsonSchema[None] = None
    variants: Variants | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _not_null(self) -> ProductUpdate:
        for name in ("name", "slug", "description", "status", "attributes", "media", "variants"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        if self.variants is not None:
            _check_variants(self.variants)
        return self


class Ref(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str


class Crumb(BaseModel):
    id: CategoryId
    name: str
    slug: str


class MediaItem(BaseModel):
    url: str
    alt: str


class Variant(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sku: str
    name: str
    options: dict[str, str]
    price: Money
    compare_at_price: Money | None = None


class Rating(BaseModel):
    average: float | None = None
    count: int = 0


class Product(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: ProductId
    name: str
    slug: str
    description: str
    status: ProductStatus
    brand: Ref | None
    category: Ref | None
    breadcrumbs: list[Crumb] = Field(default_factory=list, description=(
        "Its category and the category's ancestors, root first"))
    attributes: dict[str, Any]
    media: list[MediaItem]
    variants: list[Variant]
    rating: Rating = Field(default_factory=Rating, description="What its reviews give it (the reviews service)")
    created_at: dt.datetime
    updated_at: dt.datetime


AttributeOption = Annotated[NonBlankLine, StringConstraints(min_length=1, max_length=100), STRIPPED]


class AttributeDefinition(BaseModel):
    """One attribute a category's products carry: its key in `attributes`, a label to show, and the
    values it takes. `one_of` takes one of `options`; `multiple` takes a list of such values."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    key: DefinedKey
    label: ShortName
    type: AttributeType
    options: Annotated[list[AttributeOption], Field(max_length=100)] = Field(default_factory=list)
    multiple: StrictBool = False
    required: StrictBool = False

    @model_validator(mode="after")
    def _options(self) -> AttributeDefinition:
        if self.type == "one_of" and not self.options:
            raise ValueError("a one_of attribute needs its options")
        if self.type != "one_of" and self.options:
            raise ValueError("only a one_of attribute has options")
        if len(set(self.options)) != len(self.options):
            raise ValueError("each option once")
        return self


def _distinct_keys(definitions: list[AttributeDefinition]) -> list[AttributeDefinition]:
    if len({d.key for d in definitions}) != len(definitions):
        raise ValueError("each attribute key once")
    return definitions


AttributeDefinitions = Annotated[list[AttributeDefinition], Field(max_length=50), AfterValidator(_distinct_keys)]


class Category(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: CategoryId
    name: str
    slug: str
    parent_id: CategoryId | None
    attributes: list[AttributeDefinition] = Field(default_factory=list, description=(
        "The attributes it defines; its products also carry its ancestors' (the nearer wins)"))
    breadcrumbs: list[Crumb] = Field(default_factory=list, description="The category and its ancestors, root first")
    created_at: dt.datetime
    updated_at: dt.datetime


class CategoryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ShortName
    slug: ShortSlug | None = Field(default=None, description="Derived from the name when omitted")
    parent_id: CategoryId | None = None
    attributes: AttributeDefinitions = Field(default_factory=list)


class CategoryUpdate(BaseModel):
    """A partial update; `attributes`, when given, replace the category's definitions (its
    products are held to them at their next change)."""

    model_config = ConfigDict(extra="forbid")

    name: ShortName | SkipJsonSchema[None] = None
    slug: ShortSlug | SkipJsonSchema[None] = None
    parent_id: CategoryId | None = None
    attributes: AttributeDefinitions | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _not_null(self) -> CategoryUpdate:
        for name in ("name", "slug", "attributes"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class Brand(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: BrandId
    name: str
    slug: str
    created_at: dt.datetime
    updated_at: dt.datetime


class BrandCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ShortName
    slug: ShortSlug | None = Field(default=None, description="Derived from the name when omitted")


class BrandUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ShortName | SkipJsonSchema[None] = None
    slug: ShortSlug | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _not_null(self) -> BrandUpdate:
        for name in ("name", "slug"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


MAX_SKUS_PER_LOOKUP = 100

SkuQuery = Annotated[list[Sku], Field(min_length=1, max_length=MAX_SKUS_PER_LOOKUP)]


class SkuInfo(BaseModel):
    """One SKU as a cart or a checkout needs it: its product, its name, its status and its price."""

    sku: str
    product_id: ProductId
    product_name: str
    variant_name: str
    status: ProductStatus
    price: Money
    updated_at: dt.datetime = Field(description="When its product last changed (as in product.updated.v1)")


class SkuList(BaseModel):
    items: list[SkuInfo]


MAX_ATTRIBUTE_FILTERS = 20


class ProductFilter(BaseModel):
    """What `GET /products` narrows by (the query string, validated). `attributes`: `key:value`
    pairs; a product matches one of the values of each key."""

    category_id: CategoryId | None = None
    brand_id: BrandId | None = None
    min_price: int | None = None
    max_price: int | None = None
    status: ProductStatus | None = None
    attributes: list[str] = Field(default_factory=list)


CategoryPath = Annotated[str, StringConstraints(min_length=1, max_length=600), AfterValidator(_without_nul)]


class ProductImport(BaseModel):
    """One product of `amazonlite catalog import`: a `ProductCreate` that names its category (a path,
    "Books > Fiction") and brand instead of their ids (each made when missing), active by default.
    A product whose SKUs exist already is updated (it becomes what the line says), never duplicated."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    slug: Slug | None = None
    description: Description = ""
    status: ProductStatus = "active"
    category: CategoryPath | None = Field(default=None, description="Category names from the root, joined by '>'")
    brand: ShortName | None = None
    attributes: Attributes = Field(default_factory=dict)
    media: Media = Field(default_factory=list)
    variants: Variants

    @model_validator(mode="after")
    def _variants(self) -> ProductImport:
        _check_variants(self.variants)
        if any(not name or len(name) > SHORT_NAME_LENGTH for name in self.category_names()):
            raise ValueError(f"each category of the path needs a name of 1-{SHORT_NAME_LENGTH} characters")
        return self

    def category_names(self) -> list[str]:
        return [part.strip() for part in self.category.split(">")] if self.category else []
