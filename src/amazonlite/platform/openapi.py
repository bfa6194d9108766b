"""What every operation of a service's OpenAPI document can answer, stated once for all of them.

FastAPI documents what an endpoint declares (its answer and its `problem_responses(...)`), plus a
422 of its own shape (`HTTPValidationError`, `application/json`) that this platform never sends.
The kernel's layers answer more, on every operation: the edge (a NUL character, a malformed or too
large body), the principal dependency (no caller, or no signed-in user where the route needs one),
the database handlers (503 while it is unreachable, 409 for a lost race, 422 for a value the store
refuses). `document_kernel_problems` adds those to a service's document, replaces FastAPI's 422
with the problem, and states the edge's NUL rule in the schemas; the gateway adds its own problems
to the merged document (gateway/openapi.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import routing

from amazonlite.platform.errors import (
    PROBLEM_JSON,
    AppError,
    Conflict,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
    document_problem,
)
from amazonlite.platform.http import PROBLEM_SCHEMA, NulCharacter
from amazonlite.platform.security import requires_user

Problem = tuple[int, str, str]  # status, type, title

BEARER_AUTH = "bearerAuth"
BEARER_SCHEME = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                 "description": "An access token from `POST /api/v1/auth/login`."}
SIGNED_IN: list[dict[str, list[str]]] = [{BEARER_AUTH: []}]
# Either alternative: the route serves anonymous callers and signed-in users alike.
ANYONE: list[dict[str, list[str]]] = [{BEARER_AUTH: []}, {}]

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
BODY_METHODS = frozenset({"post", "put", "patch", "delete"})
# The edge refuses a JSON `\u0000` with 400 nul-character before any schema is checked; a pattern on
# every free-text string (and object key) says so, so that a request the schema allows is accepted.
WITHOUT_NUL = "^[^\\u0000]*$"
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again",
                               "schema": {"type": "integer", "minimum": 0}}}


def problem(error: type[AppError]) -> Problem:
    return error.status, error.type, error.title


EVERY_OPERATION: tuple[Problem, ...] = (
    (NulCharacter.status, NulCharacter.type, "The URL holds a NUL character"),
    (Unauthorized.status, Unauthorized.type, "The call did not come through the gateway or another service"),
    (ServiceUnavailable.status, "database-unavailable", "The service's database is unavailable"),
)
WITH_BODY: tuple[Problem, ...] = (
    (400, "malformed-json", "The body is not valid JSON"),
    (NulCharacter.status, NulCharacter.type, "A text field holds a NUL character"),
    problem(PayloadTooLarge),
)
WITH_INPUT: tuple[Problem, ...] = (
    problem(ValidationFailed),
    (ValidationFailed.status, "invalid-value", "A value cannot be stored"),
)
WRITES: tuple[Problem, ...] = (
    (Conflict.status, Conflict.type, "The request raced another one; read the resource again and retry"),
    (Conflict.status, "concurrent-update", "Another change got there first"),
)
SIGNED_IN_ONLY: tuple[Problem, ...] = (
    (Unauthorized.status, Unauthorized.type, "Sign in to do this"),
)


def document_problems(operation: dict[str, Any], problems: Iterable[Problem]) -> None:
    responses = operation.setdefault("responses", {})
    for status, type_, title in problems:
        document_problem(responses, status, type_, title)
        if status in (429, 503):
            responses[str(status)].setdefault("headers", {}).update(RETRY_AFTER)


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in (document.get("paths") or {}).items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def document_kernel_problems(document: dict[str, Any], routes: Iterable[Any]) -> dict[str, Any]:
    """`document` (FastAPI's, of `routes`) with what the kernel answers on each operation."""
    signed_in = {(route.path_format, method.lower()) for route in routing.iter_route_contexts(list(routes))
                 if isinstance(route.original_route, routing.APIRoute)
                 for method in route.methods or () if requires_user(route.dependant)}
    for path, method, operation in operations(document):
        responses = operation.setdefault("responses", {})
        if _is_fastapi_422(responses.get("422")):
            del responses["422"]
        takes_body = "requestBody" in operation
        problems = list(EVERY_OPERATION)
        if takes_body:
            problems += WITH_BODY
        if takes_body or operation.get("parameters"):
            problems += WITH_INPUT
        if method in BODY_METHODS:
            problems += WRITES
        if (path, method) in signed_in:
            problems += SIGNED_IN_ONLY
        document_problems(operation, problems)
        operation["security"] = SIGNED_IN if (path, method) in signed_in else ANYONE
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    components.setdefault("securitySchemes", {})[BEARER_AUTH] = BEARER_SCHEME
    for _path, _method, operation in operations(document):
        for parameter in operation.get("parameters") or ():
            if isinstance(parameter.get("schema"), dict):
                parameter["schema"] = _without_null(parameter["schema"])
    parameters = [p.get("schema") for _path, _method, op in operations(document) for p in op.get("parameters") or ()]
    for node in _schemas([parameters, schemas]):
        _keys_as_property_names(node)
        _forbid_nul(node)
        _drop_refused_default(node)
    return document


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter (`str | None = None`) is absent or a value: a query string or a header
    cannot carry a JSON null, so its `anyOf: [X, null]` is X (with the keywords written beside the
    anyOf, e.g. a pattern given as `json_schema_extra`). Otherwise a generator sends the text "null"
    as if the document allowed it."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return schema
    values = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
    if len(values) != 1 or len(values) == len(branches) or not isinstance(values[0], dict):
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**values[0], **rest}


def _keys_as_property_names(node: dict[str, Any]) -> None:
    """Pydantic writes a map whose keys have a pattern as `patternProperties` alone, which lets any
    other key through with any value; the server refuses those. Stated as it is validated: every key
    matches the pattern (`propertyNames`), every value the value schema."""
    patterns = node.get("patternProperties")
    if node.get("type") != "object" or not isinstance(patterns, dict) or len(patterns) != 1 \
            or "additionalProperties" in node:
        return
    [(pattern, values)] = patterns.items()
    del node["patternProperties"]
    node.setdefault("propertyNames", {})["pattern"] = pattern
    node["additionalProperties"] = values


def _forbid_nul(node: dict[str, Any]) -> None:
    """A string schema without a pattern, format or fixed values of its own (those exclude NUL
    already) gets the no-NUL pattern, and so do the keys of an open object."""
    if node.get("type") == "string" and not {"pattern", "format", "enum", "const"} & node.keys():
        node["pattern"] = WITHOUT_NUL
    additional = node.get("additionalProperties")
    if node.get("type") == "object" and additional is not None and additional is not False:
        names = node.setdefault("propertyNames", {})
        if "pattern" not in names:
            names["pattern"] = WITHOUT_NUL


def _drop_refused_default(node: dict[str, Any]) -> None:
    """Pydantic writes `default: null` for a field that may be omitted but not null (a partial update
    whose field cannot be cleared); a generator would send that null as a valid value."""
    if "default" in node and node["default"] is None and not _allows_null(node):
        del node["default"]


def _allows_null(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(isinstance(b, dict) and _allows_null(b) for b in node.get("anyOf", ()) + node.get("oneOf", ()))


def _schemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object under `node`, but inside values (defaults, examples, fixed values)."""
    if isinstance(node, list):
        for item in node:
            yield from _schemas(item)
    elif isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key not in ("default", "examples", "example", "const", "enum"):
                yield from _schemas(value)


def _is_fastapi_422(entry: Any) -> bool:
    content = (entry or {}).get("content") or {}
    return PROBLEM_JSON not in content and any(
        (media.get("schema") or {}).get("$ref", "").endswith("/HTTPValidationError") for media in content.values())
