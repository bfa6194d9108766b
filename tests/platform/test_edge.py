"""The edge every service and the gateway share: input limits and database errors as problems, every
error a problem with a URI type, 405 naming every method of the path, and log levels that mean
something (an outage logged once when it begins and once when it ends, a bug at every request)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.engine import make_url

from amazonlite.gateway.app import GatewaySettings, Upstream, create_gateway
from amazonlite.platform.db import Database, TransientConflict
from amazonlite.platform.errors import PROBLEM_BASE, ServiceUnavailable
from amazonlite.platform.http import EdgeMiddleware, install_problem_handlers, new_app
from amazonlite.platform.resilience import ResilienceSettings
from amazonlite.platform.revocation import MemoryRevocationStore
from tests.gateway.support import client_of, echo_app, received, uvicorn_server
from tests.support import servers
from tests.support.harness import fast_platform_settings
from tests.support.logs import Logs, at_level


class Note(BaseModel):
    text: str


def edge_app(db: Database | None = None, *, service: str = "edge-test", max_body_bytes: int = 1024) -> FastAPI:
    app = new_app()
    install_problem_handlers(app)

    @app.get("/me")
    async def me() -> dict[str, str]:
        return {"name": "Ada"}

    @app.patch("/me")
    async def change_me() -> dict[str, str]:
        return {"name": "Ada"}

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    @app.post("/raced")
    async def raced() -> None:
        raise TransientConflict("a conditional update no longer applied")

    @app.get("/unavailable")
    async def unavailable() -> None:
        raise ServiceUnavailable("Not ready: database failing")

    @app.post("/notes")
    async def add_note(note: Note) -> dict[str, str]:
        return {"stored": note.text}

    @app.get("/notes")
    async def find(q: str = "") -> dict[str, str]:
        return {"q": q}

    if db is not None:
        @app.post("/overflow")
        async def overflow() -> None:
            async with db.session(tenant_id="acme") as session:
                await session.execute(text("SELECT CAST(:v AS SMALLINT)"), {"v": 10_000_000})

        @app.post("/locked")
        async def locked() -> None:
            async with db.session(tenant_id="acme") as session:
                await session.execute(text("SET LOCAL lock_timeout = '100ms'"))
                await session.execute(text("SELECT * FROM held WHERE id = 1 FOR UPDATE"))

        @app.get("/read")
        async def read() -> None:
            async with db.session(tenant_id="acme") as session:
                await session.execute(text("SELECT 1"))

        @app.post("/duplicate")
        async def duplicate() -> None:
            async with db.session(tenant_id="acme") as session:
                await session.execute(text("CREATE TEMPORARY TABLE t (id INT PRIMARY KEY)"))
                await session.execute(text("INSERT INTO t VALUES (1), (1)"))

    app.add_middleware(EdgeMiddleware, service=service, max_body_bytes=max_body_bytes)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=edge_app()), base_url="http://edge") as c:
        yield c


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return str(response.json()["type"]).rsplit("/", 1)[-1]


class TestNulCharacters:
    async def test_a_nul_escape_in_a_json_body_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/notes", content=b'{"text": "a\\u0000b"}',
                                     headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert problem_type(response) == "nul-character"

    async def test_an_escaped_backslash_before_u0000_is_plain_text(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/notes", content=b'{"text": "C:\\\\u0000"}',
                                     headers={"content-type": "application/json"})
        assert response.status_code == 200, response.text
        assert response.json() == {"stored": "C:\\u0000"}

    async def test_a_nul_in_the_query_string_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/notes?q=a%00b")
        assert response.status_code == 400
        assert problem_type(response) == "nul-character"


class TestBodySize:
    async def test_a_chunked_body_over_the_limit_is_refused(self, client: httpx.AsyncClient) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"text": "'
            for _ in range(20):
                yield b"x" * 100
            yield b'"}'

        response = await client.post("/notes", content=chunks(), headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert problem_type(response) == "payload-too-large"

    async def test_a_body_cut_short_by_a_disconnect_never_reaches_the_app(self) -> None:
        reached = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            reached.append(scope["path"])

        messages = iter([{"type": "http.request", "body": b'{"text": ', "more_body": True},
                         {"type": "http.disconnect"}])

        async def receive() -> Any:
            return next(messages)

        async def send(message: Any) -> None:
            raise AssertionError(f"nobody is there to answer: {message}")

        scope = {"type": "http", "method": "POST", "path": "/notes", "headers": [], "query_string": b""}
        await EdgeMiddleware(app, service="edge-test", max_body_bytes=1024)(scope, receive, send)
        assert reached == []

    async def test_a_body_under_the_limit_reaches_the_app_whole(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/notes", json={"text": "y" * 900})
        assert response.status_code == 200
        assert response.json()["stored"] == "y" * 900


class TestDatabaseErrors:
    async def test_data_and_integrity_errors_are_problems_not_500s(self, postgres_url: str) -> None:
        db = Database(postgres_url)
        app = edge_app(db)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge") as client:
            overflow = await client.post("/overflow")
            duplicate = await client.post("/duplicate")
        await db.dispose()
        assert overflow.status_code == 422
        assert problem_type(overflow) == "invalid-value"
        assert "10000000" not in overflow.text
        assert duplicate.status_code == 409
        assert problem_type(duplicate) == "conflict"

    async def test_a_lock_timeout_is_a_retryable_conflict(self, postgres_url: str) -> None:
        db = Database(postgres_url)
        async with db.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE held (id INT PRIMARY KEY)"))
            await conn.execute(text("INSERT INTO held VALUES (1)"))
        app = edge_app(db)
        async with db.engine.connect() as holder:
            await holder.execute(text("SELECT * FROM held WHERE id = 1 FOR UPDATE"))
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge") as client:
                response = await client.post("/locked")
            await holder.rollback()
        await db.dispose()
        assert response.status_code == 409
        assert problem_type(response) == "concurrent-update"
        assert response.headers["retry-after"] == "1"

    async def test_a_unit_of_work_that_lost_a_race_is_a_retryable_conflict(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/raced")
        assert response.status_code == 409
        assert problem_type(response) == "concurrent-update"
        assert response.headers["retry-after"] == "1"

    @pytest.mark.parametrize("driver", ["postgresql+asyncpg", "mysql+aiomysql"])
    @pytest.mark.parametrize("where", ["refused", "unresolvable"])
    async def test_a_database_that_cannot_be_reached_is_503_with_retry_after(self, driver: str, where: str) -> None:
        # "unresolvable": a stopped database container's name stops resolving (Compose, Kubernetes).
        address = f"127.0.0.1:{servers.free_port()}" if where == "refused" else "database.invalid:5432"
        db = Database(f"{driver}://root@{address}/gone")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=edge_app(db)), base_url="http://edge") as client:
            response = await client.get("/read")
        await db.dispose()
        assert response.status_code == 503
        assert problem_type(response) == "database-unavailable"
        assert response.headers["retry-after"] == "1"

    async def test_a_database_that_stops_accepting_connections_is_503_until_it_is_back(self, postgres_url: str) -> None:
        db = Database(postgres_url)
        name = make_url(postgres_url).database
        admin = await asyncpg.connect(servers.PG_ADMIN_URL, timeout=5)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=edge_app(db)), base_url="http://edge") as client:
            assert (await client.get("/read")).status_code == 200
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
            try:
                down = await client.get("/read")
            finally:
                await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
                await admin.close()
            back = await client.get("/read")
        await db.dispose()
        assert down.status_code == 503 and problem_type(down) == "database-unavailable"
        assert back.status_code == 200


class TestProblemDocuments:
    @pytest.mark.parametrize("body", [
        b'{"text": "caf\xe9"}',  # Latin-1, not UTF-8
        b"[" * 1000 + b"]" * 1000,
        b'{"text": ' + b"1" * 5000 + b"}",
    ], ids=["invalid-utf-8", "nested-1000-deep", "integer-of-5000-digits"])
    async def test_a_body_the_parser_gives_up_on_is_malformed_json(self, body: bytes) -> None:
        app = edge_app(max_body_bytes=64 * 1024)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge") as client:
            response = await client.post("/notes", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert response.json()["type"] == PROBLEM_BASE + "malformed-json"

    async def test_every_framework_error_has_a_uri_type(self, client: httpx.AsyncClient) -> None:
        missing = await client.get("/nowhere")
        assert missing.status_code == 404 and missing.json()["type"] == PROBLEM_BASE + "not-found"


class TestMethodNotAllowed:
    async def test_allow_names_every_method_of_the_path(self, client: httpx.AsyncClient) -> None:
        response = await client.put("/me")
        assert response.status_code == 405
        assert response.json()["type"] == PROBLEM_BASE + "method-not-allowed"
        assert {"GET", "PATCH"} <= set(response.headers["allow"].split(", ")), response.headers["allow"]


class TestLogLevels:
    async def test_a_bug_is_an_error_at_every_request(self, logs: Logs) -> None:
        app = edge_app(service=f"bug-{uuid.uuid4().hex[:6]}")
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # as a server answers it
        async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
            answers = [await client.get("/bug") for _ in range(2)]
        assert [a.status_code for a in answers] == [500, 500]
        assert at_level(logs(), "error").count("http.unhandled_error") == 2

    async def test_a_503_is_not_an_error(self, logs: Logs, client: httpx.AsyncClient) -> None:
        answers = [await client.get("/unavailable") for _ in range(3)]
        assert [a.status_code for a in answers] == [503] * 3
        assert at_level(logs(), "error") == []

    async def test_an_unreachable_database_is_one_warning_not_one_per_request(self, logs: Logs) -> None:
        service = f"gone-{uuid.uuid4().hex[:6]}"
        db = Database(f"postgresql+asyncpg://root@127.0.0.1:{servers.free_port()}/gone", service=service)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=edge_app(db, service=service)),
                                     base_url="http://edge") as client:
            answers = [await client.get("/read") for _ in range(5)]
        await db.dispose()
        assert [a.status_code for a in answers] == [503] * 5
        lines = logs()
        assert at_level(lines, "error") == []
        went_down = [line for line in lines if line["event"] == "outages.dependency_went_down"]
        assert len(went_down) == 1 and went_down[0]["dependency"] == f"{service}.database", went_down
        assert went_down[0]["level"] == "warning"

    async def test_the_end_of_a_database_outage_is_logged_once(self, logs: Logs, postgres_url: str) -> None:
        service = f"back-{uuid.uuid4().hex[:6]}"
        db = Database(postgres_url, service=service)
        name = make_url(postgres_url).database
        admin = await asyncpg.connect(servers.PG_ADMIN_URL, timeout=5)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=edge_app(db, service=service)),
                                     base_url="http://edge") as client:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
            try:
                down = [(await client.get("/read")).status_code for _ in range(3)]
            finally:
                await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
                await admin.close()
            back = [(await client.get("/read")).status_code for _ in range(3)]
        await db.dispose()
        assert down == [503] * 3 and back == [200] * 3
        events = [(line["event"], line["level"]) for line in logs() if line.get("dependency") == f"{service}.database"]
        assert events == [("outages.dependency_went_down", "warning"), ("outages.dependency_came_back", "info")]


class TestUpstreamOutageLogs:
    async def test_an_unreachable_upstream_is_one_warning_and_its_return_one_info(
            self, logs: Logs, tmp_path: Path) -> None:
        platform = fast_platform_settings(tmp_path)
        port = servers.free_port()
        gateway = create_gateway(platform, [Upstream("catalog", url=f"http://127.0.0.1:{port}")],
                                 revocations=MemoryRevocationStore(),
                                 resilience=ResilienceSettings(retries=0, breaker_failure_threshold=100))
        async with client_of(gateway) as client:
            down = [(await client.get("/api/v1/products")).status_code for _ in range(4)]
            async with uvicorn_server(echo_app("catalog", platform), port):
                back = [(await client.get("/api/v1/products")).status_code for _ in range(2)]
        assert down == [503] * 4 and back == [200] * 2
        lines = logs()
        assert at_level(lines, "error") == []
        events = [(line["event"], line["level"]) for line in lines
                  if line.get("dependency") == "gateway.upstream.catalog"]
        assert events == [("outages.dependency_went_down", "warning"), ("outages.dependency_came_back", "info")]


class TestForwardingHeadersAtTheGateway:
    async def test_only_x_forwarded_for_from_a_trusted_proxy_names_the_client_and_none_reaches_a_service(
            self, tmp_path: Path) -> None:
        platform = fast_platform_settings(tmp_path)
        gateway = create_gateway(platform, [Upstream("catalog", app=echo_app("catalog", platform))],
                                 revocations=MemoryRevocationStore(),
                                 settings=GatewaySettings(trusted_proxies=["10.0.0.0/8"]))
        transport = httpx.ASGITransport(app=gateway, client=("10.1.2.3", 40000))  # a trusted proxy
        async with gateway.router.lifespan_context(gateway), httpx.AsyncClient(
                transport=transport, base_url="http://gateway") as proxy:
            other_headers = await proxy.get("/api/v1/products", headers={
                "X-Real-IP": "198.51.100.7", "Forwarded": "for=198.51.100.8", "True-Client-IP": "198.51.100.9"})
            forwarded_for = await proxy.get("/api/v1/products", headers={"X-Forwarded-For": "198.51.100.66"})
        assert other_headers.json()["principal"]["client_address"] == "10.1.2.3"
        assert forwarded_for.json()["principal"]["client_address"] == "198.51.100.66"
        for name in ("x-real-ip", "forwarded", "true-client-ip"):
            assert received(other_headers, name) == [], name
        assert received(other_headers, "x-forwarded-for") == ["10.1.2.3"]  # what the gateway decided
        assert received(forwarded_for, "x-forwarded-for") == ["198.51.100.66"]
