"""Backward compatibility of a payload's JSON Schema against its published version.

A published version may gain optional fields; it may not lose a field, change a field's type, or
gain a required field (an older producer's events would then fail a newer consumer). Standard
library only: this is tooling for the published language.
"""

from __future__ import annotations

from typing import Any


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve(schema, schema["$defs"][ref.removeprefix("#/$defs/")])
    return node


def _shape(schema: dict[str, Any], node: dict[str, Any], depth: int = 0) -> Any:
    """A comparable description of a field's type, ignoring titles, descriptions and defaults."""
    node = _resolve(schema, node)
    if depth > 8:
        return "…"
    if "anyOf" in node:
        return ("anyOf", sorted(repr(_shape(schema, n, depth + 1)) for n in node["anyOf"]))
    kind = node.get("type")
    if kind == "object":
        props = node.get("properties") or {}
        return ("object", tuple(sorted((k, repr(_shape(schema, v, depth + 1))) for k, v in props.items())),
                repr(_shape(schema, node["additionalProperties"], depth + 1))
                if isinstance(node.get("additionalProperties"), dict) else None)
    if kind == "array":
        return ("array", repr(_shape(schema, node.get("items") or {}, depth + 1)))
    return (kind, node.get("format"), tuple(node.get("enum") or ()))


def incompatibilities(published: dict[str, Any], current: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    old_props = published.get("properties") or {}
    new_props = current.get("properties") or {}
    old_required = set(published.get("required") or ())
    new_required = set(current.get("required") or ())
    for name, old in old_props.items():
        if name not in new_props:
            problems.append(f"field {name!r} was removed")
            continue
        if _shape(published, old) != _shape(current, new_props[name]):
            problems.append(f"field {name!r} changed type")
    for name in sorted(new_required - old_required):
        problems.append(f"field {name!r} became required" if name in old_props else f"new required field {name!r}")
    return problems
