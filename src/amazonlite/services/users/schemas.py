from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from amazonlite.platform.addresses import (
    Country,
    Line,
    Phone,
    Place,
    PostalAddress,
    PostalCode,
    RecipientName,
    StoredAddress,
)
from amazonlite.platform.text import STRIPPED, NonBlankLine

UserId = uuid.UUID
AddressId = uuid.UUID


class UserProfile(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UserId
    email: str
    name: str
    locale: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class UserProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[NonBlankLine, StringConstraints(min_length=1, max_length=200), STRIPPED] | None = None
    locale: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35)


# Addresses ----------------------------------------------------------------------------------------

MAX_ADDRESSES = 20


class Address(StoredAddress):
    id: AddressId
    is_default: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class AddressCreate(PostalAddress):
    is_default: StrictBool = False


# Fields an update may set to null (clear); the others may be omitted but not cleared.
CLEARABLE_ADDRESS_FIELDS = frozenset({"line2", "state", "phone"})


class AddressUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Fields that cannot be cleared may be omitted, and their schema has no null (SkipJsonSchema).
    name: RecipientName | SkipJsonSchema[None] = None
    line1: Line | SkipJsonSchema[None] = None
    line2: Line | None = None
    city: Place | SkipJsonSchema[None] = None
    state: Place | None = None
    postal_code: PostalCode | SkipJsonSchema[None] = None
    country: Country | SkipJsonSchema[None] = None
    phone: Phone | None = None
    # true makes this the default address; false is refused on the default (choose another instead).
    is_default: StrictBool | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _no_required_field_cleared(self) -> AddressUpdate:
        cleared = sorted(f for f in self.model_fields_set
                         if getattr(self, f) is None and f not in CLEARABLE_ADDRESS_FIELDS)
        if cleared:
            raise ValueError(f"{', '.join(cleared)} cannot be null")
        return self


# Preferences --------------------------------------------------------------------------------------

class Channels(BaseModel):
    """Whether the user wants one type of notification by email and by SMS."""

    model_config = ConfigDict(extra="forbid")

    email: StrictBool
    sms: StrictBool


def _stays_on(value: bool) -> bool:
    if not value:
        raise ValueError("account security emails cannot be turned off")
    return value


class SecurityChannels(BaseModel):
    """Account security notifications: by email always (the schema says `const: true`), by SMS if wanted."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[StrictBool, AfterValidator(_stays_on), Field(json_schema_extra={"const": True})]
    sms: StrictBool


class NotificationPreferences(BaseModel):
    """Every known notification type; a PUT must name them all, and no other."""

    model_config = ConfigDict(extra="forbid")

    order_updates: Channels
    shipping_updates: Channels
    account_security: SecurityChannels
    marketing: Channels


NOTIFICATION_TYPES: tuple[str, ...] = tuple(NotificationPreferences.model_fields)


class Preferences(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notifications: NotificationPreferences


DEFAULT_PREFERENCES = Preferences(notifications=NotificationPreferences(
    order_updates=Channels(email=True, sms=False),
    shipping_updates=Channels(email=True, sms=False),
    account_security=SecurityChannels(email=True, sms=False),
    marketing=Channels(email=False, sms=False),
))
