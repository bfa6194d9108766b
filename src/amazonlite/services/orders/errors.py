from __future__ import annotations

from amazonlite.platform.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed


class OrderNotFound(NotFound):
    type = "order-not-found"
    title = "No such order"


class CartEmpty(ValidationFailed):
    type = "cart-empty"
    title = "The cart is empty: there is nothing to order"


class AddressNotFound(ValidationFailed):
    type = "address-not-found"
    title = "The customer has no such address"


class UnknownPaymentProvider(ValidationFailed):
    """Carries `providers`: those a checkout may name."""

    type = "unknown-payment-provider"
    title = "This shop takes no payments with that provider"


class PricesChanged(Conflict):
    """Carries `skus`: the lines whose price the catalog no longer asks. Read the cart again (it
    shows the new prices) and check out again."""

    type = "prices-changed"
    title = "Prices changed since the cart was priced"


class InsufficientStock(Conflict):
    """Carries `sku` and `available`."""

    type = "insufficient-stock"
    title = "Not enough stock"


class SkuNotForSale(Conflict):
    """Carries `skus`: lines the catalog no longer sells."""

    type = "sku-not-for-sale"
    title = "A line of the cart is no longer for sale"


class OrderNotCancellable(Conflict):
    """Carries `order_status`."""

    type = "order-not-cancellable"
    title = "The order can no longer be cancelled"


class CheckoutDependencyUnavailable(ServiceUnavailable):
    """A service a checkout reads (cart, catalog, inventory, users, tenants) cannot answer now;
    always with `Retry-After`. Nothing was written."""

    type = "checkout-dependency-unavailable"
    title = "A service the checkout needs cannot answer; try again shortly"
