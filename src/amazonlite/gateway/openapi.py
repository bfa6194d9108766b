"""The merged OpenAPI document of every upstream, served by the gateway at `/openapi.json`.

Each service serves its own document. The merge keeps only the paths the routing table sends to
that service, keeps one copy of a component that several services define identically (`Problem`),
and renames a component that two services define differently (`Item` of catalog becomes
`CatalogItem`), rewriting that service's references to it. A service that does not answer is left
out, and the description says so. Every operation also documents the problems the gateway answers
itself (a bad token, the tenant's state, its rate limit, an upstream that fails or is too slow).
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from amazonlite.gateway.errors import (
    InvalidAccessToken,
    RateLimited,
    SigningKeysUnavailable,
    TenantMismatch,
    TenantsUnavailable,
    TenantSuspended,
    UnknownTenant,
)
from amazonlite.gateway.proxy import UpstreamClient
from amazonlite.gateway.routing import RouteTable
from amazonlite.platform.openapi import (
    BEARER_AUTH,
    BEARER_SCHEME,
    HTTP_METHODS,
    document_problems,
    operations,
    problem,
)
from amazonlite.platform.resilience import (
    BulkheadFull,
    CircuitOpen,
    DownstreamFailed,
    DownstreamTimeout,
    DownstreamUnavailable,
)

log = structlog.get_logger("amazonlite.gateway")

TITLE = "Amazon Lite API"
VERSION = "1.0.0"
DESCRIPTION = (
    "The public API of Amazon Lite, served by the gateway. Sign in with `POST /api/v1/auth/login` and send "
    "`Authorization: Bearer <access_token>`; an anonymous request names its tenant with `X-Tenant-ID` "
    "(absent: `default`). Errors are RFC 9457 `application/problem+json` documents."
)
# What the gateway itself answers on every route, before or instead of the service's answer.
GATEWAY_PROBLEMS = tuple(problem(error) for error in (
    InvalidAccessToken, TenantSuspended, TenantMismatch, UnknownTenant, RateLimited, DownstreamFailed,
    CircuitOpen, BulkheadFull, DownstreamUnavailable, SigningKeysUnavailable, TenantsUnavailable, DownstreamTimeout))


class MergedOpenApi:
    """Fetches and merges the upstreams' documents; a complete merge is cached for `cache_seconds`."""

    def __init__(self, upstreams: Sequence[UpstreamClient], table: RouteTable, *, cache_seconds: float,
                 timeout: float) -> None:
        self._upstreams = upstreams
        self._table = table
        self._cache_seconds = cache_seconds
        self._timeout = timeout
        self._cached: tuple[float, dict[str, Any]] | None = None

    async def document(self) -> dict[str, Any]:
        if self._cached is not None and time.monotonic() - self._cached[0] < self._cache_seconds:
            return self._cached[1]
        answers = await asyncio.gather(*(self._fetch(u) for u in self._upstreams))
        documents = {u.name: doc for u, doc in zip(self._upstreams, answers, strict=True) if doc is not None}
        missing = [u.name for u, doc in zip(self._upstreams, answers, strict=True) if doc is None]
        merged = merge_openapi(documents, self._table, missing=missing)
        if not missing:
            self._cached = (time.monotonic(), merged)
        return merged

    async def _fetch(self, upstream: UpstreamClient) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(self._timeout):
                answer = await upstream.fetch("/openapi.json")
            if answer.status != 200:
                raise ValueError(f"HTTP {answer.status}")
            document = answer.json()
            if not isinstance(document, dict):
                raise ValueError("not a JSON object")
            return document
        except Exception as exc:
            log.warning("gateway.openapi_fetch_failed", upstream=upstream.name, error=repr(exc))
            return None


def merge_openapi(documents: Mapping[str, Mapping[str, Any]], table: RouteTable, *,
                  missing: Sequence[str] = ()) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, dict[str, Any]] = {}
    tags: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for service, original in documents.items():
        document = _rename_colliding_components(service, copy.deepcopy(dict(original)), components)
        for kind, entries in (document.get("components") or {}).items():
            if isinstance(entries, dict):
                components.setdefault(kind, {}).update(entries)
        for path, item in (document.get("paths") or {}).items():
            route = table.resolve(path)
            if route is None or route.service != service or not isinstance(item, dict):
                log.info("gateway.openapi_path_not_routed", upstream=service, path=path)
                continue
            merged_item = paths.setdefault(path, {})
            for key, operation in item.items():
                if key in merged_item:
                    log.warning("gateway.openapi_operation_collision", upstream=service, path=path, method=key)
                    continue
                if key in HTTP_METHODS and isinstance(operation, dict):
                    _unique_operation_id(service, operation, operation_ids)
                merged_item[key] = operation
        for tag in document.get("tags") or ():
            if isinstance(tag, dict) and "name" in tag:
                tags.setdefault(tag["name"], tag)

    components.setdefault("securitySchemes", {})[BEARER_AUTH] = BEARER_SCHEME
    description = DESCRIPTION + "\n\nServices: " + (", ".join(sorted(documents)) or "none") + "."
    if missing:
        description += ("\n\n**Incomplete:** these services did not answer and their endpoints are missing "
                        "from this document: " + ", ".join(sorted(missing)) + ".")
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": description},
        "paths": dict(sorted(paths.items())),
        "components": components,
    }
    for _path, _method, operation in operations(merged):
        document_problems(operation, GATEWAY_PROBLEMS)
    if tags:
        merged["tags"] = list(tags.values())
    return merged


def _rename_colliding_components(service: str, document: dict[str, Any],
                                 merged: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Rename this document's components that clash with a different one already merged."""
    own: dict[str, Any] = document.get("components") or {}
    entries = [(kind, name) for kind, defs in own.items() if isinstance(defs, dict) for name in defs]
    renamed = {(k, n) for k, n in entries if n in merged.get(k, {}) and merged[k][n] != own[k][n]}
    # A shared (identical) component that refers to a renamed one must follow it, or it would point
    # at the other service's version.
    changed = True
    while changed:
        changed = False
        for kind, name in entries:
            if (kind, name) in renamed or name not in merged.get(kind, {}):
                continue
            if any(_refers_to(own[kind][name], k, n) for k, n in renamed):
                renamed.add((kind, name))
                changed = True
    if not renamed:
        return document
    refs: dict[str, str] = {}
    prefix = service[:1].upper() + service[1:]
    for kind, name in renamed:
        new, n = prefix + name, 2
        while new in merged.get(kind, {}) or new in own[kind]:
            new, n = f"{prefix}{name}{n}", n + 1
        own[kind][new] = own[kind].pop(name)
        refs[f"#/components/{kind}/{name}"] = f"#/components/{kind}/{new}"
    return _rewrite_refs(document, refs)


def _refers_to(node: Any, kind: str, name: str) -> bool:
    target = f"#/components/{kind}/{name}"
    if isinstance(node, dict):
        return node.get("$ref") == target or any(_refers_to(v, kind, name) for v in node.values())
    if isinstance(node, list):
        return any(_refers_to(v, kind, name) for v in node)
    return False


def _rewrite_refs(node: Any, refs: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: (refs.get(v, v) if k == "$ref" and isinstance(v, str) else _rewrite_refs(v, refs))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(v, refs) for v in node]
    return node


def _unique_operation_id(service: str, operation: dict[str, Any], seen: set[str]) -> None:
    operation_id = operation.get("operationId")
    if not isinstance(operation_id, str):
        return
    if operation_id in seen:
        operation_id = f"{service}_{operation_id}"
        operation["operationId"] = operation_id
    seen.add(operation_id)
