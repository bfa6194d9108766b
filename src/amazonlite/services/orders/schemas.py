from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from amazonlite.platform.addresses import PostalAddress, StoredAddress
from amazonlite.platform.money import Money
from amazonlite.services.orders.saga import CancelReason, Status

ProviderName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]


# Requests -------------------------------------------------------------------------------------------

class Checkout(BaseModel):
    """Check out the customer's cart: ship to one of their saved addresses, or to the one given."""

    model_config = ConfigDict(extra="forbid")

    shipping_address_id: uuid.UUID | None = Field(default=None, description="One of the customer's addresses")
    address: PostalAddress | None = Field(default=None, description="An address for this order only")
    payment_provider: ProviderName = Field(description="A provider the shop takes payments with, e.g. `sandbox`")

    @model_validator(mode="after")
    def _one_address(self) -> Checkout:
        if (self.shipping_address_id is None) == (self.address is None):
            raise ValueError("give exactly one of shipping_address_id and address")
        return self


# Answers --------------------------------------------------------------------------------------------

class OrderLine(BaseModel):
    sku: str
    product_id: uuid.UUID
    name: str
    quantity: int
    unit_price: Money
    line_total: Money


class ShippingAddress(StoredAddress):
    """The address the order ships to, as it was when the order was placed."""


class Payment(BaseModel):
    id: uuid.UUID
    provider: str
    status: str = Field(description="requested, authorized, failed or refunded")
    client: dict[str, str] = Field(description="What a client needs to pay, while the order waits for payment "
                                               "(e.g. the sandbox's page_url); empty afterwards")
    expires_at: dt.datetime | None


class HistoryEntry(BaseModel):
    status: Status
    reason: CancelReason | None = None
    at: dt.datetime


class Order(BaseModel):
    id: uuid.UUID
    status: Status
    cancel_reason: CancelReason | None
    items: list[OrderLine]
    coupon_code: str | None
    subtotal: Money
    discount: Money
    tax: Money
    shipping: Money
    total: Money
    shipping_address: ShippingAddress
    payment_provider: str
    payment: Payment | None
    history: list[HistoryEntry]
    created_at: dt.datetime
    updated_at: dt.datetime
