"""Email verification and password reset: mailed single-use tokens, read here from the outbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import time
from pathlib import Path
from typing import cast

import httpx
from sqlalchemy import text

from amazonlite.services.auth.app import SERVICE
from amazonlite.services.auth.settings import AuthSettings
from tests.services.auth.factories import (
    EMAIL_REQUESTED,
    PASSWORD,
    accepted,
    gateway_verifier,
    log_in,
    mailed_token,
    outbox_events,
    problem_type,
    refresh,
    scalar,
    sign_up,
    signed_up_and_logged_in,
)
from tests.support.harness import Harness, running_service

NEW_PASSWORD = "a-brand-new-secret-7"


async def verify(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/verify-email", json={"token": token})


async def forgot(client: httpx.AsyncClient, email: str = "ada@example.com") -> httpx.Response:
    return await client.post("/api/v1/auth/password/forgot", json={"email": email})


async def reset(client: httpx.AsyncClient, token: str, password: str = NEW_PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/auth/password/reset", json={"token": token, "password": password})


async def email_verified(svc: Harness, user_id: str) -> bool:
    async with svc.client(user_id=user_id, roles=("customer",)) as user:
        response = await user.get("/api/v1/auth/me")
    assert response.status_code == 200, response.text
    return bool(response.json()["email_verified"])


async def expire_all_tokens(svc: Harness) -> None:
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).replace(tzinfo=None)
    async with svc.runtime.db.engine.begin() as conn:
        await conn.execute(text("UPDATE email_tokens SET expires_at = :t"), {"t": past})


class TestEmailVerification:
    async def test_signup_mails_a_link_that_verifies_the_email_once(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client(tenant="default") as client:
            created = (await sign_up(client, name="Ada Lovelace")).json()
            [mail] = await outbox_events(svc, EMAIL_REQUESTED)
            payload = mail["envelope"]["payload"]
            assert (payload["user_id"], payload["to"], payload["template"]) == (
                created["id"], "ada@example.com", "verify_email")
            assert payload["variables"]["name"] == "Ada Lovelace"
            token = payload["variables"]["token"]
            assert len(token) >= 43
            # Only the digest is stored, never the token itself.
            digest = hashlib.sha256(token.encode()).hexdigest()
            assert await scalar(svc, "SELECT token_hash FROM email_tokens") == digest
            assert not await email_verified(svc, created["id"])

            assert (await verify(client, token)).status_code == 204
            assert await email_verified(svc, created["id"])

            again = await verify(client, token)
            assert again.status_code == 400
            assert problem_type(again) == "invalid-token"

    async def test_unknown_expired_and_other_purpose_tokens_get_one_answer(self, sqlite_url: str,
                                                                            tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            created = (await sign_up(client)).json()
            await forgot(client)
            reset_token = await mailed_token(svc, "password_reset")
            verify_token = await mailed_token(svc, "verify_email")
            await expire_all_tokens(svc)
            answers = [await verify(client, "no-such-token"), await verify(client, verify_token),
                       await verify(client, reset_token)]
            assert not await email_verified(svc, created["id"])
        strip = {"correlation_id"}
        bodies = [{k: v for k, v in a.json().items() if k not in strip} for a in answers]
        assert [a.status_code for a in answers] == [400, 400, 400]
        assert {problem_type(a) for a in answers} == {"invalid-token"}
        assert bodies[0] == bodies[1] == bodies[2]

    async def test_a_short_configured_lifetime_expires_the_link(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            cast(AuthSettings, svc.runtime.settings).email_verification_ttl_seconds = 1
            await sign_up(client)
            token = await mailed_token(svc, "verify_email")
            await asyncio.sleep(1.2)
            assert problem_type(await verify(client, token)) == "invalid-token"

    async def test_a_token_of_another_tenant_is_unknown_here(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            async with svc.client(tenant="acme") as acme:
                created = (await sign_up(acme)).json()
            token = await mailed_token(svc, "verify_email")
            async with svc.client(tenant="globex") as globex:
                assert problem_type(await verify(globex, token)) == "invalid-token"
            async with svc.client(tenant="acme") as acme:
                assert (await verify(acme, token)).status_code == 204
            async with svc.client(tenant="acme", user_id=created["id"], roles=("customer",)) as user:
                assert (await user.get("/api/v1/auth/me")).json()["email_verified"] is True


class TestForgotPassword:
    async def test_an_unknown_email_is_indistinguishable_and_mails_nothing(self, sqlite_url: str,
                                                                            tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            await sign_up(client)
            mails_before = len(await outbox_events(svc, EMAIL_REQUESTED))
            timings: dict[str, list[float]] = {"known": [], "unknown": []}
            answers: dict[str, httpx.Response] = {}
            for _ in range(5):
                for kind, email in (("known", "ada@example.com"), ("unknown", "nobody@example.com")):
                    started = time.perf_counter()
                    answers[kind] = await forgot(client, email)
                    timings[kind].append(time.perf_counter() - started)
            mails = (await outbox_events(svc, EMAIL_REQUESTED))[mails_before:]
        assert answers["known"].status_code == answers["unknown"].status_code == 202
        assert answers["known"].json() == answers["unknown"].json()
        assert {m["envelope"]["payload"]["to"] for m in mails} == {"ada@example.com"}
        assert [m["envelope"]["payload"]["template"] for m in mails] == ["password_reset"] * 5
        # No slow work on either path: the medians stay within a few milliseconds of each other.
        median = {k: sorted(v)[len(v) // 2] for k, v in timings.items()}
        assert abs(median["known"] - median["unknown"]) < 0.05, median


class TestPasswordReset:
    async def test_sets_the_password_and_ends_every_session(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            first = await signed_up_and_logged_in(client)
            second = (await log_in(client)).json()
            assert (await forgot(client)).status_code == 202
            token = await mailed_token(svc, "password_reset")

            assert (await reset(client, token)).status_code == 204

            for old in (first, second):
                refused = await refresh(client, old["refresh_token"])
                assert refused.status_code == 401
                assert problem_type(refused) == "refresh-token-reused"
            assert (await log_in(client)).status_code == 401
            assert (await log_in(client, password=NEW_PASSWORD)).status_code == 200
            # The link went through the mailbox: the address is proven.
            assert await email_verified(svc, first["user_id"])
            reused = await reset(client, token, "yet-another-secret-8")
            assert reused.status_code == 400
            assert problem_type(reused) == "invalid-token"
            assert (await log_in(client, password=NEW_PASSWORD)).status_code == 200

    async def test_every_access_token_of_the_account_stops_working_at_the_gateway(
            self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            verifier = gateway_verifier(svc, client)
            first = await signed_up_and_logged_in(client)
            refreshed = (await refresh(client, first["refresh_token"])).json()
            second = (await log_in(client)).json()
            someone_else = await signed_up_and_logged_in(client, email="grace@example.com")
            mine = [first["access_token"], refreshed["access_token"], second["access_token"]]
            for token in [*mine, someone_else["access_token"]]:
                assert await accepted(verifier, token)
            await forgot(client)

            assert (await reset(client, await mailed_token(svc, "password_reset"))).status_code == 204

            assert [await accepted(verifier, token) for token in mine] == [False, False, False]
            assert await accepted(verifier, someone_else["access_token"])
            after_reset = (await log_in(client, password=NEW_PASSWORD)).json()
            assert await accepted(verifier, after_reset["access_token"])

    async def test_a_weak_password_is_refused_and_the_link_still_works(self, sqlite_url: str,
                                                                        tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            await sign_up(client)
            await forgot(client)
            token = await mailed_token(svc, "password_reset")
            weak = await reset(client, token, "short")
            assert weak.status_code == 422
            assert problem_type(weak) == "weak-password"
            assert (await reset(client, token)).status_code == 204

    async def test_an_expired_or_older_link_is_refused(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            await sign_up(client)
            await forgot(client)
            expired = await mailed_token(svc, "password_reset")
            await expire_all_tokens(svc)
            assert problem_type(await reset(client, expired)) == "invalid-token"
            await forgot(client)
            older = await mailed_token(svc, "password_reset")
            await forgot(client)
            newer = await mailed_token(svc, "password_reset")
            assert (await reset(client, newer)).status_code == 204
            # Completing one reset spends every other outstanding link.
            assert problem_type(await reset(client, older, "yet-another-secret-8")) == "invalid-token"
            assert (await log_in(client, password=PASSWORD)).status_code == 401
            assert (await log_in(client, password=NEW_PASSWORD)).status_code == 200


class TestOnEveryDatabase:
    async def test_verify_then_reset_and_concurrent_reuse(self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, svc.client() as client:
            session = await signed_up_and_logged_in(client)
            verify_token = await mailed_token(svc, "verify_email")
            answers = await asyncio.gather(verify(client, verify_token), verify(client, verify_token))
            assert sorted(a.status_code for a in answers) == [204, 400], [a.text for a in answers]
            assert await email_verified(svc, session["user_id"])
            await forgot(client)
            token = await mailed_token(svc, "password_reset")
            answers = await asyncio.gather(reset(client, token), reset(client, token, "yet-another-secret-8"))
            assert sorted(a.status_code for a in answers) == [204, 400], [a.text for a in answers]
            assert problem_type(await refresh(client, session["refresh_token"])) == "refresh-token-reused"
            assert sum([(await log_in(client, password=p)).status_code == 200
                        for p in (NEW_PASSWORD, "yet-another-secret-8")]) == 1
            assert await scalar(svc, "SELECT count(*) FROM email_tokens WHERE used_at IS NULL") == 0
