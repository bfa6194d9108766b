from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import text

from amazonlite.services.users.app import SERVICE
from tests.services.users.factories import registered
from tests.support.harness import running_service


class TestProfileFromRegistration:
    async def test_profile_appears_once_even_when_the_event_is_redelivered(
            self, any_database_url: str, tmp_path: Path) -> None:
        user_id = uuid.uuid4()
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            envelope = await svc.deliver(registered(user_id))
            await svc.deliver(registered(user_id, email="changed@example.com"), event_id=envelope.event_id)
            async with svc.client(user_id=user_id, roles=("customer",)) as client:
                response = await client.get("/api/v1/users/me")
            assert response.status_code == 200, response.text
            assert response.json()["email"] == "ada@example.com"
            async with svc.runtime.db.engine.connect() as conn:
                count = await conn.scalar(text("SELECT count(*) FROM profiles"))
                inbox = await conn.scalar(text("SELECT count(*) FROM inbox"))
            assert (count, inbox) == (1, 1)


    async def test_a_look_alike_email_is_kept_in_its_plain_form(self, sqlite_url: str, tmp_path: Path) -> None:
        # An event recorded before auth normalised emails, still on its way.
        user_id = uuid.uuid4()
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await svc.deliver(registered(user_id, email="\uff41\uff44\uff41@example.com"))
            async with svc.client(user_id=user_id, roles=("customer",)) as client:
                assert (await client.get("/api/v1/users/me")).json()["email"] == "ada@example.com"


class TestMe:
    async def test_a_blank_name_is_refused_and_the_name_kept(self, sqlite_url: str, tmp_path: Path) -> None:
        user_id = uuid.uuid4()
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await svc.deliver(registered(user_id))
            async with svc.client(user_id=user_id, roles=("customer",)) as client:
                response = await client.patch("/api/v1/users/me", json={"name": "   "})
                assert response.status_code == 422, response.text
                assert (await client.get("/api/v1/users/me")).json()["name"] == "Ada"

    async def test_a_name_with_control_or_format_characters_is_refused(self, sqlite_url: str, tmp_path: Path) -> None:
        user_id = uuid.uuid4()
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await svc.deliver(registered(user_id))
            async with svc.client(user_id=user_id, roles=("customer",)) as client:
                for name in ("Ada\nLovelace", "Ada\x1b[2J", "\u202eadA", "Ada\U000e0041"):
                    response = await client.patch("/api/v1/users/me", json={"name": name})
                    assert response.status_code == 422, (name, response.text)
                assert (await client.get("/api/v1/users/me")).json()["name"] == "Ada"

    async def test_update_name_and_locale(self, sqlite_url: str, tmp_path: Path) -> None:
        user_id = uuid.uuid4()
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await svc.deliver(registered(user_id))
            async with svc.client(user_id=user_id, roles=("customer",)) as client:
                response = await client.patch("/api/v1/users/me", json={"name": "Ada L.", "locale": "en-GB"})
                assert response.status_code == 200, response.text
                again = await client.get("/api/v1/users/me")
            assert again.json()["name"] == "Ada L."
            assert again.json()["locale"] == "en-GB"

    async def test_unknown_field_is_a_problem_and_nothing_changes(self, sqlite_url: str, tmp_path: Path) -> None:
        user_id = uuid.uuid4()
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await svc.deliver(registered(user_id))
            async with svc.client(user_id=user_id, roles=("customer",)) as client:
                response = await client.patch("/api/v1/users/me", json={"name": "X", "email": "x@evil.test"})
                assert response.status_code == 422
                assert response.headers["content-type"] == "application/problem+json"
                assert (await client.get("/api/v1/users/me")).json()["name"] == "Ada"

    async def test_another_tenant_does_not_see_the_profile(self, sqlite_url: str, tmp_path: Path) -> None:
        user_id = uuid.uuid4()
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await svc.deliver(registered(user_id), tenant="acme")
            async with svc.client(tenant="globex", user_id=user_id, roles=("customer",)) as client:
                assert (await client.get("/api/v1/users/me")).status_code == 404
            async with svc.client(tenant="acme", user_id=user_id, roles=("customer",)) as client:
                assert (await client.get("/api/v1/users/me")).status_code == 200

    async def test_anonymous_is_401_and_no_internal_token_is_401(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            async with svc.client() as client:
                assert (await client.get("/api/v1/users/me")).status_code == 401
            async with svc.anonymous_client_without_token() as client:
                response = await client.get("/api/v1/users/me")
                assert response.status_code == 401
                assert response.json()["type"].endswith("/unauthorized")
