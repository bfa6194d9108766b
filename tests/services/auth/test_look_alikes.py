"""One account per email, whatever Unicode spelling of it a client sends: emails are compared in
NFKC form (full-width letters and ligatures as the plain ones), lower-cased; and names are one
line of visible text."""

from __future__ import annotations

from pathlib import Path

import pytest

from amazonlite.services.auth.app import SERVICE, create_admin
from tests.services.auth.factories import (
    EMAIL_REQUESTED,
    REGISTERED,
    log_in,
    outbox_events,
    problem_type,
    scalar,
    sign_up,
    verified_claims,
)
from tests.support.harness import running_service

FULL_WIDTH_ADA = "\uff41\uff44\uff41@example.com"  # "ada" in full-width letters
FULL_WIDTH_AT = "ada\uff20example.com"  # the at sign in full width too


class TestOneAccountPerEmail:
    async def test_a_full_width_look_alike_is_the_same_account(self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, svc.client() as client:
            created = await sign_up(client, email="ada@example.com")
            assert created.status_code == 201, created.text
            for look_alike in (FULL_WIDTH_ADA, FULL_WIDTH_AT, " \uff21DA@example.com"):
                again = await sign_up(client, email=look_alike, name="Impostor")
                assert again.status_code == 409, (look_alike, again.text)
                assert problem_type(again) == "email-taken"
                signed_in = await log_in(client, email=look_alike)
                assert signed_in.status_code == 200, (look_alike, signed_in.text)
                assert (await verified_claims(client, signed_in.json()["access_token"]))["sub"] == created.json()["id"]
            assert await scalar(svc, "SELECT count(*) FROM users") == 1

    async def test_a_look_alike_signup_is_stored_and_announced_plain(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            created = await sign_up(client, email=FULL_WIDTH_ADA)
            assert created.status_code == 201, created.text
            assert created.json()["email"] == "ada@example.com"
            assert (await log_in(client, email="ada@example.com")).status_code == 200
            [event] = await outbox_events(svc, REGISTERED)
        assert event["envelope"]["payload"]["email"] == "ada@example.com"

    async def test_a_password_reset_asked_with_a_look_alike_goes_to_the_account(
            self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            assert (await sign_up(client, email="ada@example.com")).status_code == 201
            asked = await client.post("/api/v1/auth/password/forgot", json={"email": FULL_WIDTH_ADA})
            assert asked.status_code == 202, asked.text
            mails = [e["envelope"]["payload"] for e in await outbox_events(svc, EMAIL_REQUESTED)]
        assert [(m["template"], m["to"]) for m in mails] == [("verify_email", "ada@example.com"),
                                                             ("password_reset", "ada@example.com")]

    async def test_create_admin_with_a_look_alike_promotes_the_existing_account(
            self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            created = await sign_up(client, email="ada@example.com")
            user_id = await create_admin(svc.runtime, tenant_id="default", email=FULL_WIDTH_ADA,
                                         password="a-long-admin-secret-9")
            assert str(user_id) == created.json()["id"]
            assert await scalar(svc, "SELECT count(*) FROM users") == 1


class TestNames:
    @pytest.mark.parametrize("name", ["Ada\nLovelace", "Ada\tLovelace", "Ada\x1b[31m", "\u202eecalevol adA",
                                      "Ada\u200b", "Ada\U000e0041"])
    async def test_control_and_format_characters_are_refused(self, name: str, sqlite_url: str,
                                                             tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            response = await sign_up(client, name=name)
            assert response.status_code == 422, response.text
            assert problem_type(response) == "validation-error"
            assert await scalar(svc, "SELECT count(*) FROM users") == 0

    async def test_any_script_and_emoji_sequences_are_kept(self, sqlite_url: str, tmp_path: Path) -> None:
        name = "क्\u200dष 👩\u200d💻 Zoë"
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            response = await sign_up(client, name=f"  {name} ")
            assert response.status_code == 201, response.text
            assert response.json()["name"] == name
