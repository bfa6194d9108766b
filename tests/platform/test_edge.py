"""The edge every service and the gateway share: input limits and database errors as problems."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.engine import make_url

from amazonlite.platform.db import Database
from amazonlite.platform.http import EdgeMiddleware, install_problem_handlers, new_app
from tests.support import servers


class Note(BaseModel):
    text: str


def edge_app(db: Database | None = None) -> FastAPI:
    app = new_app()
    install_problem_handlers(app)

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

    app.add_middleware(EdgeMiddleware, service="edge-test", max_body_bytes=1024)
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
