"""The published language: versioned event payloads shared by producers and consumers.

Imports only Pydantic. A published version never changes incompatibly: a breaking change is a new
model on a new topic (`….v2`). `schemas/` holds the generated JSON Schemas that a test compares
against the models.
"""

from amazonlite.contracts.base import EventPayload
from amazonlite.contracts.catalog import ProductDeletedV1, ProductUpdatedV1
from amazonlite.contracts.inventory import (
    InventoryLowStockV1,
    InventoryRejectedV1,
    InventoryReleasedV1,
    InventoryReservedV1,
)
from amazonlite.contracts.notifications import EmailRequestedV1
from amazonlite.contracts.orders import (
    InventoryReleaseRequestedV1,
    OrderCancelledV1,
    OrderConfirmedV1,
    OrderCreatedV1,
)
from amazonlite.contracts.payments import (
    PaymentAuthorizedV1,
    PaymentFailedV1,
    PaymentRefundedV1,
    PaymentRequestedV1,
)
from amazonlite.contracts.reviews import ProductRatingUpdatedV1
from amazonlite.contracts.users import UserPreferencesUpdatedV1, UserRegisteredV1

ALL_EVENTS: tuple[type[EventPayload], ...] = (
    UserRegisteredV1,
    UserPreferencesUpdatedV1,
    ProductUpdatedV1,
    ProductDeletedV1,
    ProductRatingUpdatedV1,
    EmailRequestedV1,
    OrderCreatedV1,
    OrderConfirmedV1,
    OrderCancelledV1,
    InventoryReleaseRequestedV1,
    InventoryReservedV1,
    InventoryRejectedV1,
    InventoryReleasedV1,
    InventoryLowStockV1,
    PaymentRequestedV1,
    PaymentAuthorizedV1,
    PaymentFailedV1,
    PaymentRefundedV1,
)

BY_TOPIC: dict[str, type[EventPayload]] = {event.event_type: event for event in ALL_EVENTS}

__all__ = ["ALL_EVENTS", "BY_TOPIC", "EmailRequestedV1", "EventPayload", "InventoryLowStockV1",
           "InventoryRejectedV1", "InventoryReleaseRequestedV1", "InventoryReleasedV1", "InventoryReservedV1",
           "OrderCancelledV1", "OrderConfirmedV1", "OrderCreatedV1", "PaymentAuthorizedV1", "PaymentFailedV1",
           "PaymentRefundedV1", "PaymentRequestedV1", "ProductDeletedV1", "ProductRatingUpdatedV1", "ProductUpdatedV1",
           "UserPreferencesUpdatedV1", "UserRegisteredV1"]
