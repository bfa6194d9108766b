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


def _kind(node: dict[str, Any]) -> Any:
    """What a node is, ignoring titles, descriptions, defaults and (for objects) their fields."""
    if "anyOf" in node:
        return "anyOf"
    return (node.get("type"), node.get("format"), tuple(node.get("enum") or ()))


def _object_problems(old_schema: dict[str, Any], old: dict[str, Any], new_schema: dict[str, Any],
                     new: dict[str, Any], where: str, depth: int) -> list[str]:
    """An object stays compatible when it keeps every field, each compatibly, and requires nothing new."""
    problems: list[str] = []
    old_props = old.get("properties") or {}
    new_props = new.get("properties") or {}
    for name, field in old_props.items():
        if name not in new_props:
            problems.append(f"field {where}{name!r} was removed")
        else:
            problems += _problems(old_schema, field, new_schema, new_props[name], f"{where}{name!r}", depth + 1)
    for name in sorted(set(new.get("required") or ()) - set(old.get("required") or ())):
        problems.append(f"field {where}{name!r} became required" if name in old_props
                        else f"new required field {where}{name!r}")
    old_extra, new_extra = old.get("additionalProperties"), new.get("additionalProperties")
    if isinstance(old_extra, dict) and isinstance(new_extra, dict):
        problems += _problems(old_schema, old_extra, new_schema, new_extra, f"{where}[*]", depth + 1)
    elif isinstance(old_extra, dict) != isinstance(new_extra, dict):
        problems.append(f"field {where.removesuffix('.') or 'payload'} changed type")
    return problems


def _problems(old_schema: dict[str, Any], old: dict[str, Any], new_schema: dict[str, Any], new: dict[str, Any],
              where: str, depth: int) -> list[str]:
    old, new = _resolve(old_schema, old), _resolve(new_schema, new)
    if depth > 8:
        return []
    changed = [f"field {where} changed type"]
    if _kind(old) != _kind(new):
        return changed
    if "anyOf" in old:  # the same alternatives, in order, each compatible
        if len(old["anyOf"]) != len(new["anyOf"]):
            return changed
        problems: list[str] = []
        for old_choice, new_choice in zip(old["anyOf"], new["anyOf"], strict=True):
            problems += _problems(old_schema, old_choice, new_schema, new_choice, where, depth + 1)
        return changed if problems else []
    if old.get("type") == "object":
        return _object_problems(old_schema, old, new_schema, new, f"{where}.", depth)
    if old.get("type") == "array":
        return _problems(old_schema, old.get("items") or {}, new_schema, new.get("items") or {}, f"{where}[]",
                         depth + 1)
    return []


def incompatibilities(published: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What `current` breaks of `published`: nested objects follow the same rules as the payload
    (an optional field may be added to a variant; none removed, retyped or newly required)."""
    return _object_problems(published, published, current, current, "", 0)
