"""A service's OpenAPI document says what the service answers (the kernel's part of it).

A client reads the document, then calls the service: the problems it gets are documented on that
operation, as problem+json, and a request the schema calls valid is one the service takes.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import StringConstraints, TypeAdapter, ValidationError

from amazonlite.platform.errors import PROBLEM_JSON
from amazonlite.platform.text import NAME_PATTERN, STRIPPED, NonBlankLine
from amazonlite.services.cart.app import SERVICE as CART
from amazonlite.services.catalog.app import SERVICE as CATALOG
from amazonlite.services.users.app import SERVICE as USERS
from tests.support.harness import Harness, running_service

PROBLEM = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
USER = "0b5f2a4e-8f7e-4a38-9b7a-3f3c2b1e4d5a"


@pytest.fixture
async def users(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_service(USERS, sqlite_url, tmp_path) as svc:
        yield svc


async def _document(svc: Harness) -> dict[str, Any]:
    async with svc.anonymous_client_without_token() as client:
        answer = await client.get("/openapi.json")
    assert answer.status_code == 200
    return answer.json()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]


def _documents(operation: dict[str, Any], status: int, problem_type: str) -> bool:
    response = operation["responses"].get(str(status))
    return response is not None and response["content"] == PROBLEM and f"`{problem_type}`" in response["description"]


class TestProblemsAsDocumented:
    async def test_every_error_is_a_problem_and_fastapis_own_422_is_gone(self, users: Harness) -> None:
        document = await _document(users)
        for path, method, operation in _operations(document):
            errors = {status: r for status, r in operation["responses"].items() if int(status) >= 400}
            assert {"400", "401", "503"} <= set(errors), (method, path)
            assert all(r["content"] == PROBLEM for r in errors.values()), (method, path)
            if "requestBody" in operation:
                assert {"413", "422"} <= set(errors), (method, path)
        assert "HTTPValidationError" not in document["components"]["schemas"]

    @pytest.mark.parametrize(("body", "problem_type"), [
        (b'{"name": ', "malformed-json"),
        (b'{"name": "Ada\\u0000"}', "nul-character"),
    ])
    async def test_a_refused_body_is_documented_on_its_operation(self, users: Harness, body: bytes,
                                                                  problem_type: str) -> None:
        async with users.client(user_id=USER) as client:
            answer = await client.patch("/api/v1/users/me", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 400
        assert answer.json()["type"].endswith("/" + problem_type)
        operation = (await _document(users))["paths"]["/api/v1/users/me"]["patch"]
        assert _documents(operation, 400, problem_type)

    async def test_a_method_the_path_has_not_is_405_naming_the_documented_ones(self, users: Harness) -> None:
        async with users.client(user_id=USER) as client:
            answer = await client.put("/api/v1/users/me", json={})
        assert answer.status_code == 405
        documented = {m.upper() for m in (await _document(users))["paths"]["/api/v1/users/me"]}
        assert set(answer.headers["allow"].split(", ")) == documented == {"GET", "PATCH"}


class TestSecurityAsDocumented:
    async def test_a_route_for_signed_in_users_requires_the_token_and_a_public_one_does_not(
            self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(CATALOG, sqlite_url, tmp_path) as catalog:
            document = await _document(catalog)
            async with catalog.client() as anonymous:
                refused = await anonymous.post("/api/v1/brands", json={"name": "Acme"})
                listed = await anonymous.get("/api/v1/brands")
        assert refused.status_code == 401 and listed.status_code == 200
        assert document["paths"]["/api/v1/brands"]["post"]["security"] == [{"bearerAuth": []}]
        assert _documents(document["paths"]["/api/v1/brands"]["post"], 401, "unauthorized")
        assert {} in document["paths"]["/api/v1/brands"]["get"]["security"]
        assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


class TestSchemasAsValidated:
    async def test_a_map_with_a_key_pattern_refuses_other_keys_and_values_in_the_document_too(
            self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(CATALOG, sqlite_url, tmp_path) as catalog:
            options = (await _document(catalog))["components"]["schemas"]["VariantIn"]["properties"]["options"]
        assert "patternProperties" not in options
        assert options["propertyNames"]["pattern"] and options["additionalProperties"]["type"] == "string"

    async def test_a_field_that_cannot_be_cleared_has_neither_null_nor_a_null_default(self, users: Harness) -> None:
        update = (await _document(users))["components"]["schemas"]["AddressUpdate"]["properties"]
        assert update["line1"]["type"] == "string" and "default" not in update["line1"]
        assert {"type": "null"} in update["line2"]["anyOf"]  # this one can be cleared

    async def test_free_text_says_nul_is_refused(self, users: Harness) -> None:
        schemas = (await _document(users))["components"]["schemas"]
        assert re.search(schemas["UserProfileUpdate"]["properties"]["locale"]["anyOf"][0]["pattern"], "en-IN")
        strings = [s for s in _strings(schemas) if "pattern" in s]
        assert strings and not any(re.search(s["pattern"], "a\x00b") for s in strings)


class TestParametersAsSent:
    async def test_an_optional_header_is_a_string_with_its_pattern_never_null(
            self, sqlite_url: str, tmp_path: Path) -> None:
        """`str | None = None` header: absent or a string; a header cannot carry a JSON null."""
        async with running_service(CART, sqlite_url, tmp_path) as cart:
            document = await _document(cart)
        parameters = {p["name"]: p for p in document["paths"]["/api/v1/cart/items"]["post"]["parameters"]}
        if_match = parameters["If-Match"]["schema"]
        assert "anyOf" not in if_match and if_match["type"] == "string" and not if_match.get("nullable")
        assert re.search(if_match["pattern"], 'W/"3"') and not re.search(if_match["pattern"], "null")
        assert parameters["X-Cart-Id"]["schema"]["type"] == "string"
        assert not parameters["If-Match"]["required"]


def _strings(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    if not isinstance(node, dict):
        return []
    own = [node] if node.get("type") == "string" and "format" not in node and "enum" not in node else []
    return own + [s for value in node.values() for s in _strings(value)]


ShortName = Annotated[NonBlankLine, StringConstraints(min_length=1, max_length=8), STRIPPED]
NAME = TypeAdapter(ShortName)
NAME_SCHEMA = NAME.json_schema()


class TestNamesAsDocumented:
    @settings(max_examples=400, deadline=None)
    @given(st.text(alphabet=st.sampled_from(" \t\n\r\x0b\x0c\x1c\x85\xa0\u2028\u3000\u200b\u200d\x00abc"), max_size=12))
    def test_the_schema_allows_exactly_the_names_the_server_takes(self, value: str) -> None:
        allowed = (bool(re.search(NAME_SCHEMA["pattern"], value))
                   and NAME_SCHEMA["minLength"] <= len(value) <= NAME_SCHEMA["maxLength"])
        try:
            taken = NAME.validate_python(value)
        except ValidationError:
            assert not allowed, repr(value)
        else:
            assert allowed, repr(value)
            assert taken == taken.strip() and taken

    def test_the_pattern_is_the_names(self) -> None:
        assert NAME_SCHEMA["pattern"] == NAME_PATTERN
