"""Per-category attribute definitions: what a product filed under a category must carry, checked on
every write of its attributes or its category, and the normalised values `GET /products` filters by.

A category's products carry the attributes it defines and those of its ancestors; where both define
a key, the nearer category's definition wins. A category tree with no definitions at all leaves its
products' attributes free (any key, any value), as before definitions existed. Definitions apply to
writes: a product keeps what it has until its attributes or its category change next.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from amazonlite.services.catalog.errors import InvalidAttribute
from amazonlite.services.catalog.models import VALUE_KEY_LENGTH

Definition = Mapping[str, Any]


def effective(chain: Iterable[Sequence[Definition]]) -> dict[str, Definition]:
    """The definitions a product of the last category of `chain` (root first) is held to, by key."""
    merged: dict[str, Definition] = {}
    for definitions in chain:
        for definition in definitions:
            merged[definition["key"]] = definition
    return merged


def _describe(definition: Definition) -> str:
    kind = definition["type"]
    if kind == "one_of":
        kind = "one of " + ", ".join(repr(option) for option in definition["options"])
    return f"a list of {kind} values" if definition.get("multiple") else kind


def _fits(definition: Definition, value: Any) -> bool:
    kind = definition["type"]
    if kind == "text":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    return isinstance(value, str) and value in definition["options"]  # one_of


def check(attributes: Mapping[str, Any], definitions: Mapping[str, Definition], *, category: str) -> None:
    """Refuse attributes that do not follow the definitions (422 naming the attribute); none: free."""
    if not definitions:
        return
    for key, value in attributes.items():
        definition = definitions.get(key)
        if definition is None:
            raise InvalidAttribute(f"The category {category!r} defines no attribute {key!r}; "
                                   f"it defines {', '.join(sorted(definitions))}", attribute=key)
        values = value if isinstance(value, list) else None
        if definition.get("multiple"):
            ok = values is not None and all(_fits(definition, v) for v in values)
        else:
            ok = values is None and _fits(definition, value)
        if not ok:
            raise InvalidAttribute(f"The attribute {key!r} must be {_describe(definition)}", attribute=key)
    for key, definition in definitions.items():
        if definition.get("required") and key not in attributes:
            raise InvalidAttribute(f"The category {category!r} requires the attribute {key!r}", attribute=key)


def filter_value(value: str | int | float | bool) -> str:
    """A value as filters compare it: text without case and surrounding space, numbers in one
    spelling (300, 300.0 → "300"), booleans as true/false; cut to what the filter row keeps."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() else repr(value)
    else:
        text = value.strip().casefold()
    return text[:VALUE_KEY_LENGTH]


def filter_rows(attributes: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The (key, value) pairs a product is found by, one per value of a list."""
    rows: set[tuple[str, str]] = set()
    for key, value in attributes.items():
        for item in value if isinstance(value, list) else [value]:
            rows.add((key, filter_value(item)))
    return rows
