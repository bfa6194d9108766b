"""Values the database refuses are the client's problem (422), never a 500, and write nothing."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from amazonlite.services.auth.app import SERVICE
from tests.support.harness import running_service


class TestValuesTheStoreRefuses:
    async def test_a_nul_character_is_a_problem_on_every_database(self, any_database_url: str,
                                                                   tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            async with svc.client() as client:
                response = await client.post("/api/v1/auth/signup", json={
                    "email": "nul@example.com", "password": "a-fine-password-1", "name": "a\u0000b"})
            assert 400 <= response.status_code < 500, response.text
            assert response.headers["content-type"] == "application/problem+json"
            async with svc.runtime.db.engine.connect() as conn:
                assert await conn.scalar(text("SELECT count(*) FROM users")) == 0
                assert await conn.scalar(text("SELECT count(*) FROM outbox")) == 0
