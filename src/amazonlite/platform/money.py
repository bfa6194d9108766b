"""Money's currency: an ISO 4217 alphabetic code in force.

The list is pycountry's (the Debian iso-codes project's copy of the standard, updated with it), not
typed by hand. The schema states it as an enum, so clients and generated tests see which codes exist.
"""

from __future__ import annotations

from typing import Annotated

import pycountry
from pydantic import AfterValidator, BaseModel, Field, WithJsonSchema

# ISO 4217's codes for what no shop prices in: precious metals, bond-market and accounting units,
# special drawing rights, the testing code and "no currency".
NOT_MONEY = frozenset({"XAD", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA",
                       "XXX"})
CURRENCY_CODES = frozenset(currency.alpha_3 for currency in pycountry.currencies) - NOT_MONEY


def _iso_4217(value: str) -> str:
    if value not in CURRENCY_CODES:
        raise ValueError("not an ISO 4217 currency code in force (three capital letters, such as INR or EUR)")
    return value


Currency = Annotated[str, AfterValidator(_iso_4217),
                     WithJsonSchema({"type": "string", "enum": sorted(CURRENCY_CODES),
                                     "description": "An ISO 4217 currency code", "examples": ["INR"]})]


class Money(BaseModel):
    """An amount as every service answers it: integer minor units and the currency they are in. A
    stored amount reads as it was written (a currency code withdrawn since must not make it
    unreadable), so the currency is not checked against the codes in force here."""

    amount: int = Field(description="Integer minor units (paise, cents)")
    currency: str
