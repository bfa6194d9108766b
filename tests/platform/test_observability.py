"""One request, followed: correlation id and W3C trace context from the gateway through a service,
into the event envelope and its headers, to the consumer in another service, and into JSON logs."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
import httpx
import pytest
import structlog
from fastapi import FastAPI
from fastapi.routing import APIRoute
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from amazonlite.platform.clients import ServiceDirectory
from amazonlite.platform.context import TENANT_SPAN_ATTRIBUTE, bind_correlation_id
from amazonlite.platform.logging import configure_logging
from amazonlite.platform.security import Principal
from amazonlite.topology import SERVICE_NAMES, build_embedded, load_service, migrate
from tests.platform.helpers import eventually
from tests.support.harness import fast_platform_settings, running_service

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """Captured stderr; the test configures JSON logging itself (capture swaps sys.stderr between a
    fixture's setup and the test body). Defaults are restored afterwards."""
    yield capsys
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


@asynccontextmanager
async def embedded_platform(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    platform = fast_platform_settings(tmp_path)
    await asyncio.to_thread(migrate, SERVICE_NAMES, platform)
    app = build_embedded(platform)
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client):
        yield app, client


def _trace_of(span: ReadableSpan) -> str:
    return format(span.context.trace_id, "032x")


class TestOneTraceAcrossServicesAndEvents:
    async def test_signup_is_one_trace_from_gateway_to_the_users_consumer(
            self, tmp_path: Path, spans: InMemorySpanExporter, json_logs: pytest.CaptureFixture[str]) -> None:
        spans.clear()
        configure_logging("amazonlite", level="INFO", json=True, cache=False)
        email = f"trace-{uuid.uuid4().hex[:6]}@example.com"
        async with embedded_platform(tmp_path) as (_app, client):
            response = await client.post(
                "/api/v1/auth/signup", json={"email": email, "password": "observable-42-x", "name": "Tracy"},
                headers={"traceparent": TRACEPARENT, "x-correlation-id": "obs-corr-1"})
            assert response.status_code == 201, response.text
            assert response.headers["x-correlation-id"] == "obs-corr-1"
            user_id = response.json()["id"]

            # The envelope in auth's outbox carries the request's trace and correlation ids.
            async with aiosqlite.connect(tmp_path / "auth.sqlite3") as conn:
                row = await (await conn.execute(
                    "SELECT envelope, traceparent FROM outbox WHERE topic = 'user.registered.v1'")).fetchone()
            assert row is not None
            envelope = json.loads(row[0])
            assert envelope["traceId"] == TRACE_ID
            assert envelope["correlationId"] == "obs-corr-1"
            assert envelope["tenantId"] == "default" and envelope["producer"] == "auth"
            assert row[1].split("-")[1] == TRACE_ID

            # The users service consumes it inside the same trace.
            def consumer_span() -> ReadableSpan | None:
                return next((s for s in spans.get_finished_spans() if s.name == "consume user.registered.v1"
                             and _trace_of(s) == TRACE_ID), None)

            consumed = await eventually(consumer_span, what="the users consumer span")
        assert consumed.kind is trace.SpanKind.CONSUMER
        server_spans = [s for s in spans.get_finished_spans()
                        if s.kind is trace.SpanKind.SERVER and _trace_of(s) == TRACE_ID]
        # The gateway's span and the auth service's span, both in the client's trace.
        assert len(server_spans) >= 2, [s.name for s in server_spans]
        assert any(s.name == "POST /api/v1/auth/signup" for s in server_spans)
        # The tenant is on every span of the request and on the consumer's.
        for span in [*server_spans, consumed]:
            assert (span.attributes or {}).get(TENANT_SPAN_ATTRIBUTE) == "default", span.name

        lines = [json.loads(line) for line in json_logs.readouterr().err.splitlines() if line.startswith("{")]
        created = [line for line in lines if line.get("event") == "users.profile_created"
                   and line.get("user_id") == user_id]
        assert created, lines[-5:]
        entry = created[0]
        for field in ("timestamp", "level", "service", "event", "trace_id", "span_id", "correlation_id",
                      "tenant_id"):
            assert entry.get(field), field
        assert entry["trace_id"] == TRACE_ID
        assert entry["correlation_id"] == "obs-corr-1"
        assert entry["tenant_id"] == "default"


class TestServiceToServiceClient:
    async def test_a_call_carries_an_internal_token_the_correlation_id_and_the_trace(
            self, tmp_path: Path, spans: InMemorySpanExporter) -> None:
        spans.clear()
        async with running_service(load_service("catalog"), f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
                                   tmp_path) as catalog:
            directory = ServiceDirectory("orders", catalog.runtime.internal_tokens)
            directory.register("catalog", app=catalog.app)
            bind_correlation_id("s2s-corr-7")
            with trace.get_tracer("tests").start_as_current_span("orders work") as caller:
                response = await directory.client("catalog").request(
                    "GET", "/api/v1/products", principal=Principal(tenant_id="default"))
            assert response.status_code == 200, response.text
            assert response.headers["x-correlation-id"] == "s2s-corr-7"
            caller_trace = format(caller.get_span_context().trace_id, "032x")
            served = [s for s in spans.get_finished_spans()
                      if s.kind is trace.SpanKind.SERVER and _trace_of(s) == caller_trace]
            assert [s.name for s in served] == ["GET /api/v1/products"]

            # A token minted for another service's audience is refused.
            elsewhere = ServiceDirectory("orders", catalog.runtime.internal_tokens)
            elsewhere.register("users", app=catalog.app)
            refused = await elsewhere.client("users").request("GET", "/api/v1/products",
                                                              principal=Principal(tenant_id="default"))
            assert refused.status_code == 401
            await directory.aclose()
            await elsewhere.aclose()
            with pytest.raises(LookupError):
                directory.client("payments")


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_every_route_of_a_service_is_its_own_under_the_api_prefix(name: str) -> None:
    """Metrics and span names carry a request's route template as the route object knows it; a
    router included in the service's router would know its routes without the prefix (`/orders`
    for `/api/v1/orders`), so every route is added to the service's router itself."""
    for route in load_service(name).router.routes:
        assert isinstance(route, APIRoute), f"{name}: {route!r} is not a route of the service's router itself"
        assert route.path.startswith("/api/v1/"), f"{name}: {route.path}"
