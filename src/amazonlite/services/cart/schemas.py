from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from amazonlite.platform.money import Money
from amazonlite.platform.numbers import JSON_INTEGER

MAX_MONEY = 10**13  # minor units, as the catalog's
MAX_QUANTITY = 10_000  # what a request may name at all; the per-line maximum is a setting (default 20)
MAX_USAGE_LIMIT = 1_000_000_000

Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
CartId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,64}$")]
CouponCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$"), AfterValidator(str.upper)]
Quantity = Annotated[int, Field(ge=1, le=MAX_QUANTITY), JSON_INTEGER]
MoneyAmount = Annotated[int, Field(ge=0, le=MAX_MONEY), JSON_INTEGER]
CouponKind = Literal["percent", "fixed"]


# Requests -------------------------------------------------------------------------------------------

class CartItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku
    quantity: Quantity = Field(description="Added to the line's quantity when the SKU is in the cart already")


class CartItemUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: Quantity


class CartMerge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    guest_cart_id: CartId


class CouponApply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: CouponCode = Field(description="Case-insensitive")


def terms_problem(kind: str | None, value: int | None, starts_at: dt.datetime | None,
                  ends_at: dt.datetime | None) -> str | None:
    """What is wrong with a coupon's terms, or None: the one check of a new coupon (here) and of a
    changed one (coupons.update_coupon, on the terms it ends up with)."""
    if kind == "percent" and value is not None and not 1 <= value <= 100:
        return "A percent coupon's value is a whole percent from 1 to 100"
    if kind == "fixed" and value is not None and value < 1:
        return "A fixed coupon's value is at least 1 minor unit"
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        return "ends_at must come after starts_at"
    return None


class CouponCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: CouponCode = Field(description="1-32 of A-Z, 0-9, _ and -; case-insensitive (stored upper case)")
    kind: CouponKind
    value: Annotated[int, Field(ge=1, le=MAX_MONEY, description=(
        "percent: a whole percent, 1-100; fixed: minor units of the shop's currency")), JSON_INTEGER]
    min_subtotal: MoneyAmount = 0
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    usage_limit: Annotated[int, Field(ge=1, le=MAX_USAGE_LIMIT), JSON_INTEGER] | None = None
    once_per_customer: StrictBool = False

    @model_validator(mode="after")
    def _terms(self) -> CouponCreate:
        problem = terms_problem(self.kind, self.value, self.starts_at, self.ends_at)
        if problem is not None:
            raise ValueError(problem)
        return self


class CouponUpdate(BaseModel):
    """A partial update (the code names the coupon and does not change); `starts_at`, `ends_at` and
    `usage_limit` may be set to null to lift them."""

    model_config = ConfigDict(extra="forbid")

    kind: CouponKind | SkipJsonSchema[None] = None
    value: Annotated[int, Field(ge=1, le=MAX_MONEY), JSON_INTEGER] | SkipJsonSchema[None] = None
    min_subtotal: MoneyAmount | SkipJsonSchema[None] = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    usage_limit: Annotated[int, Field(ge=1, le=MAX_USAGE_LIMIT), JSON_INTEGER] | None = None
    once_per_customer: StrictBool | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _not_null(self) -> CouponUpdate:
        for name in ("kind", "value", "min_subtotal", "once_per_customer"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


# Answers --------------------------------------------------------------------------------------------

class CartLine(BaseModel):
    sku: str
    product_id: uuid.UUID
    name: str
    quantity: int
    unit_price: Money
    line_total: Money
    price_changed: bool = Field(description="The price differs from the one this line was last added or changed at")
    available: bool = Field(description="False once the product is deleted, withdrawn or the variant dropped: "
                                        "the line counts in no total and cannot be checked out")


class CartCoupon(BaseModel):
    code: str
    kind: CouponKind | None
    value: int | None
    applies: bool
    reason: str | None = Field(default=None, description="Why it does not apply now, when it does not")


class Cart(BaseModel):
    id: str | None = Field(description="The guest cart's id (send it as X-Cart-Id); a customer's cart is their own")
    version: int
    currency: str
    items: list[CartLine]
    coupon: CartCoupon | None
    subtotal: Money
    discount: Money
    tax: Money
    total: Money


class Coupon(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    kind: CouponKind
    value: int
    min_subtotal: int
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    usage_limit: int | None
    once_per_customer: bool
    used_count: int
    created_at: dt.datetime
    updated_at: dt.datetime
