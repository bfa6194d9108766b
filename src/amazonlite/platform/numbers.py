"""Integers as JSON Schema means them: a number without a fractional part.

`1800` and `1800.0` are the same integer to JSON Schema (and generated tests send both); pydantic's
strict `int` refuses `1800.0`, and its lax `int` also takes `"1800"` and `true`, which the schema
calls invalid. `Annotated[int, Field(...), JSON_INTEGER]` takes exactly what the schema calls an
integer (the validator comes last, after the constraints, so that the schema keeps them).
"""

from __future__ import annotations

from pydantic import BeforeValidator


def _a_number(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    return value  # then lax `int`: 1800.0 is 1800, 1800.5 is refused


JSON_INTEGER = BeforeValidator(_a_number)
