"""The merged OpenAPI document and the Swagger UI over it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from amazonlite.gateway.app import ROUTES, Upstream, create_gateway
from amazonlite.gateway.openapi import merge_openapi
from amazonlite.gateway.routing import RouteTable
from amazonlite.platform.config import PlatformSettings
from amazonlite.platform.errors import PROBLEM_JSON
from amazonlite.platform.revocation import MemoryRevocationStore
from amazonlite.services.users.app import SERVICE as USERS
from tests.gateway.support import bearer, client_of, free_port
from tests.support.harness import running_service


def _schema_of(document: dict[str, Any], path: str) -> dict[str, Any]:
    ref = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    return document["components"]["schemas"][ref.rsplit("/", 1)[1]]


class TestMergedDocument:
    async def test_paths_of_every_upstream_with_clashing_schemas_kept_apart(
            self, sqlite_url: str, tmp_path: Path, platform: PlatformSettings, auth: FastAPI,
            catalog: FastAPI) -> None:
        async with running_service(USERS, sqlite_url, tmp_path, platform=platform) as users:
            gateway = create_gateway(platform, [Upstream("auth", app=auth), Upstream("users", app=users.app),
                                                Upstream("catalog", app=catalog)],
                                     revocations=MemoryRevocationStore())
            async with client_of(gateway) as client:
                answer = await client.get("/openapi.json")
        assert answer.status_code == 200
        document = answer.json()
        assert {"/api/v1/users/me", "/api/v1/products/items", "/api/v1/auth/items"} <= set(document["paths"])
        assert "/internal/stats" not in document["paths"]  # served by an upstream, but not routed to it
        # Both services call their model `Item`; each path still describes its own.
        assert set(_schema_of(document, "/api/v1/auth/items")["properties"]) == {"token"}
        assert set(_schema_of(document, "/api/v1/products/items")["properties"]) == {"sku"}
        assert "Incomplete" not in document["info"]["description"]
        assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"

    async def test_an_upstream_that_is_down_is_left_out_and_named(
            self, platform: PlatformSettings, catalog: FastAPI) -> None:
        gateway = create_gateway(platform, [Upstream("catalog", app=catalog),
                                            Upstream("users", url=f"http://127.0.0.1:{free_port()}")],
                                 revocations=MemoryRevocationStore())
        async with client_of(gateway) as client:
            answer = await client.get("/openapi.json")
        assert answer.status_code == 200
        document = answer.json()
        assert "/api/v1/products/items" in document["paths"]
        assert not any(path.startswith("/api/v1/users") for path in document["paths"])
        assert "did not answer" in document["info"]["description"]
        assert "users" in document["info"]["description"].split("Incomplete")[1]

    async def test_every_operation_documents_the_problems_the_gateway_answers_itself(self, gateway: FastAPI) -> None:
        async with client_of(gateway) as client:
            document = (await client.get("/openapi.json")).json()
            forged = await client.get("/api/v1/products/items", headers=bearer("not-a-token"))
        operation = document["paths"]["/api/v1/products/items"]["get"]
        assert forged.status_code == 401
        assert f"`{forged.json()['type'].rsplit('/', 1)[1]}`" in operation["responses"]["401"]["description"]
        for status, problem_type in [(401, "unauthorized"), (403, "tenant-suspended"), (403, "tenant-mismatch"),
                                     (404, "unknown-tenant"), (429, "rate-limited"), (502, "bad-gateway"),
                                     (503, "circuit-open"), (503, "service-busy"), (504, "upstream-timeout")]:
            response = operation["responses"][str(status)]
            assert response["content"] == {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
            assert f"`{problem_type}`: " in response["description"], (status, response["description"])
        assert operation["responses"]["429"]["headers"]["Retry-After"]["schema"]["type"] == "integer"

    async def test_the_docs_page_loads_the_merged_document(self, gateway: FastAPI) -> None:
        async with client_of(gateway) as client:
            answer = await client.get("/docs")
        assert answer.status_code == 200
        assert "swagger-ui" in answer.text
        assert "/openapi.json" in answer.text


def _document(*, paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": paths,
            "components": {"schemas": schemas}}


def _get(ref: str) -> dict[str, Any]:
    return {"get": {"operationId": "read", "responses": {"200": {"content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{ref}"}}}}}}}


class TestMergeRules:
    def test_identical_components_are_shared_and_a_clash_renames_what_refers_to_it(self) -> None:
        problem = {"type": "object", "properties": {"title": {"type": "string"}}}
        page = {"type": "object", "properties": {"items": {"type": "array",
                                                           "items": {"$ref": "#/components/schemas/Item"}}}}
        users = _document(paths={"/api/v1/users/page": _get("Page")},
                          schemas={"Problem": problem, "Page": page, "Item": {"properties": {"email": {}}}})
        catalog = _document(paths={"/api/v1/products/page": _get("Page")},
                            schemas={"Problem": problem, "Page": page, "Item": {"properties": {"sku": {}}}})
        merged = merge_openapi({"users": users, "catalog": catalog}, RouteTable(ROUTES))
        schemas = merged["components"]["schemas"]
        assert set(schemas) == {"Problem", "Page", "Item", "CatalogPage", "CatalogItem"}
        # catalog's Page is textually the same as users', but its items are catalog's Items.
        catalog_page = _schema_of(merged, "/api/v1/products/page")
        assert catalog_page["properties"]["items"]["items"]["$ref"] == "#/components/schemas/CatalogItem"
        assert _schema_of(merged, "/api/v1/users/page")["properties"]["items"]["items"]["$ref"] == (
            "#/components/schemas/Item")
        operation_ids = [merged["paths"][p]["get"]["operationId"] for p in merged["paths"]]
        assert len(set(operation_ids)) == 2
