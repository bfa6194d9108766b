"""A postal address, as every service that takes one reads it (the users' address book, an order's
shipping address): the same fields, limits and checks everywhere."""

from __future__ import annotations

from typing import Annotated, Any

import pycountry
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from amazonlite.platform.text import STRIPPED, NonBlankLine

NAME_MAX = 200
LINE_MAX = 200
PHONE_MAX = 22  # the pattern below allows 1 + 1 + 20 characters

# ISO 3166-1 alpha-2: the officially assigned codes, as pycountry keeps them current.
COUNTRY_CODES = frozenset(country.alpha_2 for country in pycountry.countries)


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _assigned_country(value: str) -> str:
    if value not in COUNTRY_CODES:
        raise ValueError("not an ISO 3166-1 alpha-2 country code")
    return value


Country = Annotated[str, BeforeValidator(_upper), AfterValidator(_assigned_country), Field(
    min_length=2, max_length=2, examples=["IN"], description="ISO 3166-1 alpha-2 (any case: stored in capitals)",
    json_schema_extra={"enum": sorted(COUNTRY_CODES)})]
Phone = Annotated[str, Field(max_length=PHONE_MAX, pattern=r"^\+?[0-9][0-9 ()-]{6,20}$", examples=["+91 98765 43210"])]
PostalCode = Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]*$")]
RecipientName = Annotated[NonBlankLine, StringConstraints(min_length=1, max_length=NAME_MAX), STRIPPED]
Line = Annotated[NonBlankLine, StringConstraints(min_length=1, max_length=LINE_MAX), STRIPPED]
Place = Annotated[NonBlankLine, StringConstraints(min_length=1, max_length=100), STRIPPED]


class PostalAddress(BaseModel):
    """`{name, line1, line2, city, state, postal_code, country, phone}` (ARCHITECTURE.md §3)."""

    model_config = ConfigDict(extra="forbid")

    name: RecipientName
    line1: Line
    line2: Line | None = None
    city: Place
    state: Place | None = None
    postal_code: PostalCode
    country: Country
    phone: Phone | None = None


class StoredAddress(BaseModel):
    """An address as a service answers it: read back from its store (decrypted), not checked again."""

    name: str
    line1: str
    line2: str | None
    city: str
    state: str | None
    postal_code: str
    country: str
    phone: str | None
