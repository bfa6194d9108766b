from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support import servers


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on SQLite and PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'ledger.sqlite3'}"
    else:
        with servers.postgres_database() as url:
            yield url


@pytest.fixture
def second_postgres_url() -> Iterator[str]:
    """A second PostgreSQL database, for a consumer that must not share the producer's."""
    with servers.postgres_database() as url:
        yield url


@pytest.fixture
def tenant() -> str:
    """A tenant id of this test alone."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def unique() -> str:
    """A suffix for topics and consumer groups of this test alone."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span the process finishes from now on (the process's tracer provider exports them here)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()
