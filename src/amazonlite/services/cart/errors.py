from __future__ import annotations

from amazonlite.platform.errors import AppError, Conflict, NotFound, ServiceUnavailable, ValidationFailed


class CartNotFound(NotFound):
    type = "cart-not-found"
    title = "No such cart"


class CartItemNotFound(NotFound):
    type = "cart-item-not-found"
    title = "The cart has no line of this SKU"


class SkuNotFound(NotFound):
    type = "sku-not-found"
    title = "No such SKU for sale"


class InsufficientStock(Conflict):
    """Carries `sku` and `available` as extra problem members."""

    type = "insufficient-stock"
    title = "Not enough stock"


class QuantityOverLimit(ValidationFailed):
    type = "quantity-over-limit"
    title = "A line holds more units than allowed"


class TooManyLines(ValidationFailed):
    type = "too-many-lines"
    title = "The cart holds as many lines as it may"


class CurrencyMismatch(ValidationFailed):
    type = "currency-mismatch"
    title = "The product is priced in another currency than the shop's"


class CartVersionMismatch(AppError):
    status = 412
    type = "cart-version-mismatch"
    title = "The cart changed since the version named in If-Match"


class CartBusy(Conflict):
    """Always with `Retry-After: 1`: a retry is expected, so an Idempotency-Key does not keep it."""

    type = "cart-busy"
    title = "The cart is being changed by other requests; retry"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})


class AvailabilityUnavailable(ServiceUnavailable):
    type = "availability-unavailable"
    title = "Stock availability cannot be checked right now"


class CatalogUnavailable(ServiceUnavailable):
    type = "catalog-unavailable"
    title = "Products and prices cannot be checked right now"


class CartStoreUnavailable(ServiceUnavailable):
    type = "cart-store-unavailable"
    title = "The cart store is unavailable"


# Coupons ------------------------------------------------------------------------------------------

class CouponNotFound(NotFound):
    type = "coupon-not-found"
    title = "No such coupon"


class UnknownCoupon(ValidationFailed):
    """Applying a code that names no coupon (422: the request's content is wrong, not its URL)."""

    type = "coupon-not-found"
    title = "No such coupon"


class DuplicateCoupon(Conflict):
    type = "duplicate-coupon"
    title = "A coupon already has this code"


class InvalidCoupon(ValidationFailed):
    type = "invalid-coupon"
    title = "The coupon's terms are not valid"


class CouponExpired(ValidationFailed):
    type = "coupon-expired"
    title = "The coupon has expired"


class CouponNotStarted(ValidationFailed):
    type = "coupon-not-started"
    title = "The coupon is not valid yet"


class CouponMinimumNotMet(ValidationFailed):
    type = "coupon-minimum-not-met"
    title = "The cart's subtotal is below the coupon's minimum"


class CouponExhausted(Conflict):
    type = "coupon-exhausted"
    title = "The coupon has been used as many times as it may"


class CouponAlreadyUsed(Conflict):
    type = "coupon-already-used"
    title = "You have already used this coupon"
