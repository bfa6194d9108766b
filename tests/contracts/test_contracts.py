from __future__ import annotations

import ast
import inspect
import json
import tomllib
from pathlib import Path

import pytest

from amazonlite import contracts
from amazonlite.contracts import ALL_EVENTS, BY_TOPIC
from amazonlite.contracts.compat import incompatibilities
from amazonlite.docsgen import CONTRACTS_DIR, export, schemas
from amazonlite.topology import SERVICE_NAMES, load_service

SRC = Path(contracts.__file__).parents[1]


class TestPublishedSchemas:
    def test_every_contract_has_its_schema_checked_in_and_current(self) -> None:
        result = export(check=True)
        assert result.breaking == {}
        assert result.stale == [], "run `amazonlite contracts export` and commit the result"
        for name in schemas():
            assert (CONTRACTS_DIR / f"{name}.json").exists()

    def test_every_published_version_is_compatible_with_its_model(self) -> None:
        for event in ALL_EVENTS:
            published = json.loads((CONTRACTS_DIR / f"{event.event_type}.json").read_text())
            assert incompatibilities(published, event.model_json_schema()) == [], event.event_type

    def test_topics_are_versioned_and_unique(self) -> None:
        assert len(BY_TOPIC) == len(ALL_EVENTS)
        for topic in BY_TOPIC:
            assert topic.rsplit(".", 1)[-1].startswith("v"), topic


class TestCompatibilityRules:
    base = {
        "properties": {"id": {"type": "string", "format": "uuid"}, "note": {"type": "string"}},
        "required": ["id"],
    }

    def test_adding_an_optional_field_is_compatible(self) -> None:
        new = {"properties": {**self.base["properties"], "extra": {"type": "integer"}}, "required": ["id"]}
        assert incompatibilities(self.base, new) == []

    @pytest.mark.parametrize(("change", "expected"), [
        ({"properties": {"id": {"type": "string", "format": "uuid"}}, "required": ["id"]}, "field 'note' was removed"),
        ({"properties": {"id": {"type": "integer"}, "note": {"type": "string"}}, "required": ["id"]},
         "field 'id' changed type"),
        ({"properties": {"id": {"type": "string", "format": "uuid"}, "note": {"type": "string"}},
          "required": ["id", "note"]}, "field 'note' became required"),
        ({"properties": {"id": {"type": "string", "format": "uuid"}, "note": {"type": "string"},
                         "must": {"type": "string"}}, "required": ["id", "must"]}, "new required field 'must'"),
    ])
    def test_breaking_changes_are_caught(self, change: dict[str, object], expected: str) -> None:
        assert expected in incompatibilities(self.base, change)

    nested = {
        "$defs": {"Line": {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}},
        "properties": {"lines": {"type": "array", "items": {"$ref": "#/$defs/Line"}}}, "required": ["lines"],
    }

    def _with_line(self, properties: dict[str, object], required: list[str]) -> dict[str, object]:
        return {**self.nested, "$defs": {"Line": {"type": "object", "properties": properties, "required": required}}}

    def test_a_nested_object_may_gain_an_optional_field(self) -> None:
        new = self._with_line({"sku": {"type": "string"}, "was": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
                              ["sku"])
        assert incompatibilities(self.nested, new) == []

    @pytest.mark.parametrize(("properties", "required", "expected"), [
        ({}, [], "field 'lines'[].'sku' was removed"),
        ({"sku": {"type": "integer"}}, ["sku"], "field 'lines'[].'sku' changed type"),
        ({"sku": {"type": "string"}, "qty": {"type": "integer"}}, ["sku", "qty"], "new required field 'lines'[].'qty'"),
    ])
    def test_a_nested_object_breaks_as_the_payload_does(self, properties: dict[str, object], required: list[str],
                                                         expected: str) -> None:
        assert expected in incompatibilities(self.nested, self._with_line(properties, required))


def _recorded_payloads(service: str) -> set[str]:
    """Names of the payloads each `record_event(session, payload, ...)` of a service records: a
    contract's constructor, or a function of the service annotated to return one."""
    returns: dict[str, str] = {}
    calls: list[tuple[Path, ast.Call]] = []
    for path in (SRC / "services" / service).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and isinstance(node.returns, ast.Name):
                returns[node.name] = node.returns.id
            called = getattr(node, "func", None)
            name = getattr(called, "id", getattr(called, "attr", None))
            if isinstance(node, ast.Call) and name == "record_event" and len(node.args) >= 2:
                calls.append((path, node))
    names: set[str] = set()
    for path, call in calls:
        payload = call.args[1]
        assert isinstance(payload, ast.Call), f"{path}: record_event's payload must be built in the call"
        built = getattr(payload.func, "id", getattr(payload.func, "attr", "?"))
        names.add(returns.get(built, built))
    return names


class TestServicesSpeakOnlyContracts:
    def test_every_recorded_event_is_a_registered_contract(self) -> None:
        registered = {event.__name__ for event in ALL_EVENTS}
        recorded = set().union(*(_recorded_payloads(name) for name in SERVICE_NAMES))
        assert recorded, "no service records an event: the scan is broken"
        assert recorded <= registered, recorded - registered

    def test_every_consumed_event_is_a_registered_contract(self) -> None:
        for name in SERVICE_NAMES:
            for topic, subscription in load_service(name).handlers.subscriptions.items():
                assert BY_TOPIC.get(topic) is subscription.payload, f"{name} consumes unregistered {topic}"

    # Events defined ahead of their producer: the tests publish them through the bus until it lands.
    # The contract comes first so its consumers (the catalog, later search) are built against it;
    # the reviews service that publishes it is issue 11's.
    PRODUCERS_NOT_BUILT_YET: frozenset[str] = frozenset({"reviews"})

    def test_producers_named_in_contracts_are_services(self) -> None:
        for event in ALL_EVENTS:
            assert event.producer in SERVICE_NAMES or event.producer in self.PRODUCERS_NOT_BUILT_YET, event.event_type
            assert inspect.getdoc(event) or event.summary


class TestDatabaseBoundaries:
    def test_no_table_references_a_table_of_another_service(self) -> None:
        for name in SERVICE_NAMES:
            metadata = load_service(name).metadata
            for table in metadata.tables.values():
                for fk in table.foreign_keys:
                    assert fk.column.table.metadata is metadata, f"{name}.{table.name} → {fk.target_fullname}"


class TestImportContractsCoverEveryService:
    """import-linter checks only the packages its contracts name: a service left out of them would
    be free to import another service, or to turn its layers upside down, unnoticed."""

    @staticmethod
    def _contract(name: str) -> dict[str, object]:
        config = tomllib.loads((SRC.parents[1] / "pyproject.toml").read_text())
        return next(c for c in config["tool"]["importlinter"]["contracts"] if c["name"] == name)

    def test_every_service_is_independent_of_the_others(self) -> None:
        listed = self._contract("Services are independent of each other")["modules"]
        assert isinstance(listed, list)
        assert set(listed) == {f"amazonlite.services.{name}" for name in SERVICE_NAMES}

    def test_every_service_keeps_its_layers(self) -> None:
        containers = self._contract("Layers inside every service")["containers"]
        assert isinstance(containers, list)
        assert set(containers) == {f"amazonlite.services.{name}" for name in SERVICE_NAMES}
