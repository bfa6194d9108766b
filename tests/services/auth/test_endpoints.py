from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path

import jwt
import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from amazonlite.platform.revocation import MemoryRevocationStore
from amazonlite.services.auth.app import SERVICE
from tests.services.auth.factories import (
    PASSWORD,
    REGISTERED,
    accepted,
    gateway_verifier,
    log_in,
    outbox_events,
    problem_type,
    refresh,
    scalar,
    sign_up,
    signed_up_and_logged_in,
    verified_claims,
)
from tests.support.harness import running_service


class TestSignup:
    async def test_creates_a_customer_and_records_user_registered(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            response = await sign_up(client, email="  Ada@Example.COM ", name="Ada Lovelace")
            assert response.status_code == 201, response.text
            body = response.json()
            assert set(body) == {"id", "email", "name", "roles", "created_at"}
            assert (body["email"], body["name"], body["roles"]) == ("ada@example.com", "Ada Lovelace", ["customer"])
            [event] = await outbox_events(svc, REGISTERED)
        assert event["topic"] == "user.registered.v1"
        assert event["aggregate_id"] == body["id"]
        assert event["tenant_id"] == "default"
        assert event["envelope"]["producer"] == "auth"
        assert event["envelope"]["payload"] == {"user_id": body["id"], "email": "ada@example.com",
                                                "name": "Ada Lovelace", "roles": ["customer"]}

    async def test_the_same_email_in_another_case_is_taken(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            assert (await sign_up(client, email="ada@example.com")).status_code == 201
            again = await sign_up(client, email="ADA@example.com", name="Impostor")
            assert again.status_code == 409
            assert problem_type(again) == "email-taken"
            assert await scalar(svc, "SELECT count(*) FROM users") == 1
            assert len(await outbox_events(svc, REGISTERED)) == 1

    @pytest.mark.parametrize(("password", "why"), [
        ("short-1", "at least 10"),
        ("onlylettersatall", "only letters"),
        ("12345678901234", "only digits"),
        ("x" * 120 + "-1234567890", "at most 128"),
        ("my-grace.hopper-2024", "email"),
        ("GRACE.HOPPER#2024", "email"),
    ])
    async def test_a_weak_password_is_refused_and_nothing_is_written(
            self, password: str, why: str, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            response = await sign_up(client, email="grace.hopper@example.com", password=password)
            assert response.status_code == 422
            assert problem_type(response) == "weak-password"
            assert why in response.json()["detail"]
            assert await scalar(svc, "SELECT count(*) FROM users") == 0
            assert await outbox_events(svc) == []

    @pytest.mark.parametrize("body", [
        {"email": "ada@example.com", "password": PASSWORD, "name": "Ada", "roles": ["platform_admin"]},
        {"email": "not-an-email", "password": PASSWORD, "name": "Ada"},
        {"email": "ada@example.com", "password": PASSWORD, "name": "   "},
        {"email": "ada@example.com", "password": PASSWORD},
    ])
    async def test_a_malformed_body_is_422_and_nothing_is_written(
            self, body: dict[str, object], sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            response = await client.post("/api/v1/auth/signup", json=body)
            assert response.status_code == 422
            assert problem_type(response) == "validation-error"
            assert await scalar(svc, "SELECT count(*) FROM users") == 0
            assert await outbox_events(svc) == []


class TestLogin:
    async def test_right_password_gives_a_bearer_token_pair(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            await sign_up(client)
            response = await log_in(client, email=" ADA@example.com")
            assert response.status_code == 200, response.text
            pair = response.json()
        assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
        assert (pair["token_type"], pair["expires_in"]) == ("Bearer", 900)

    async def test_wrong_password_and_unknown_email_get_the_same_answer(self, sqlite_url: str,
                                                                         tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            await sign_up(client)
            wrong = await log_in(client, password="not-the-password-1")
            unknown = await log_in(client, email="nobody@example.com")
        for response in (wrong, unknown):
            assert response.status_code == 401
            assert problem_type(response) == "invalid-credentials"
        strip = {"correlation_id"}
        assert ({k: v for k, v in wrong.json().items() if k not in strip}
                == {k: v for k, v in unknown.json().items() if k not in strip})

    async def test_a_hash_with_old_parameters_is_upgraded_at_login(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            await sign_up(client)
            old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
            async with svc.runtime.db.engine.begin() as conn:
                await conn.execute(text("UPDATE users SET password_hash = :h"), {"h": old})
            assert (await log_in(client)).status_code == 200
            stored = await scalar(svc, "SELECT password_hash FROM users")
            assert stored != old
            assert not PasswordHasher().check_needs_rehash(stored)
            assert (await log_in(client)).status_code == 200


class TestAccessToken:
    async def test_verifies_against_the_jwks_and_carries_exactly_the_contract_claims(
            self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client(tenant="acme") as client:
            session = await signed_up_and_logged_in(client)
            jwks = (await client.get("/api/v1/auth/jwks.json")).json()
            claims = await verified_claims(client, session["access_token"])
        header = jwt.get_unverified_header(session["access_token"])
        assert (header["alg"], header["typ"]) == ("EdDSA", "JWT")
        [key] = jwks["keys"]
        assert set(key) == {"kty", "crv", "x", "kid", "use", "alg"}
        assert (key["kty"], key["crv"], key["use"], key["alg"], key["kid"]) == (
            "OKP", "Ed25519", "sig", "EdDSA", header["kid"])
        assert set(claims) == {"iss", "aud", "sub", "tenant", "roles", "jti", "sid", "iat", "exp"}
        assert (claims["iss"], claims["aud"], claims["sub"], claims["tenant"], claims["roles"]) == (
            "amazonlite-auth", "amazonlite", session["user_id"], "acme", ["customer"])
        assert claims["exp"] - claims["iat"] == 900
        assert uuid.UUID(hex=claims["jti"]).hex == claims["jti"]

    async def test_names_its_session_the_same_across_refreshes_and_another_for_another_login(
            self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            first = await signed_up_and_logged_in(client)
            refreshed = (await refresh(client, first["refresh_token"])).json()
            other = (await log_in(client)).json()
            sessions = [(await verified_claims(client, pair["access_token"]))["sid"]
                        for pair in (first, refreshed, other)]
        assert sessions[0] == sessions[1] != sessions[2]
        assert all(str(uuid.UUID(sid)) == sid for sid in sessions)


class TestRefresh:
    async def test_rotates_and_a_reused_token_revokes_its_whole_family(self, sqlite_url: str,
                                                                        tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            first = await signed_up_and_logged_in(client)
            other_login = (await log_in(client)).json()

            rotated = await refresh(client, first["refresh_token"])
            assert rotated.status_code == 200, rotated.text
            second = rotated.json()
            assert second["refresh_token"] != first["refresh_token"]
            assert (await verified_claims(client, second["access_token"]))["sub"] == first["user_id"]

            reused = await refresh(client, first["refresh_token"])
            assert reused.status_code == 401
            assert problem_type(reused) == "refresh-token-reused"
            # The revocation was committed although the answer was 401: the newest token is dead too.
            newest = await refresh(client, second["refresh_token"])
            assert newest.status_code == 401
            assert problem_type(newest) == "refresh-token-reused"
            # Another login (another family) is untouched.
            assert (await refresh(client, other_login["refresh_token"])).status_code == 200

    async def test_reuse_revokes_the_access_tokens_of_the_family_at_the_gateway(
            self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            verifier = gateway_verifier(svc, client)
            first = await signed_up_and_logged_in(client)
            other_login = (await log_in(client)).json()
            second = (await refresh(client, first["refresh_token"])).json()
            for pair in (first, second, other_login):  # verified, and remembered by the verifier
                assert await accepted(verifier, pair["access_token"])

            assert problem_type(await refresh(client, first["refresh_token"])) == "refresh-token-reused"

            assert not await accepted(verifier, first["access_token"])
            assert not await accepted(verifier, second["access_token"])
            assert await accepted(verifier, other_login["access_token"])

    async def test_unknown_and_expired_tokens_are_invalid(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            session = await signed_up_and_logged_in(client)
            unknown = await refresh(client, "no-such-token")
            assert unknown.status_code == 401
            assert problem_type(unknown) == "invalid-refresh-token"
            past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            async with svc.runtime.db.engine.begin() as conn:
                await conn.execute(text("UPDATE refresh_tokens SET expires_at = :t"), {"t": past.replace(tzinfo=None)})
            expired = await refresh(client, session["refresh_token"])
            assert expired.status_code == 401
            assert problem_type(expired) == "invalid-refresh-token"

    async def test_a_token_of_another_tenant_is_unknown_here(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            async with svc.client(tenant="acme") as acme:
                session = await signed_up_and_logged_in(acme)
            async with svc.client(tenant="globex") as globex:
                response = await refresh(globex, session["refresh_token"])
                assert response.status_code == 401
                assert problem_type(response) == "invalid-refresh-token"
            async with svc.client(tenant="acme") as acme:
                assert (await refresh(acme, session["refresh_token"])).status_code == 200


class TestLogout:
    async def test_revokes_the_family_and_the_access_token_even_after_a_restart(
            self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            async with svc.client() as client:
                session = await signed_up_and_logged_in(client)
            jti = jwt.decode(session["access_token"], options={"verify_signature": False})["jti"]
            async with svc.client(user_id=session["user_id"], roles=("customer",), token_id=jti) as user:
                response = await user.post("/api/v1/auth/logout", json={"refresh_token": session["refresh_token"]})
                assert response.status_code == 204, response.text
                refused = await refresh(user, session["refresh_token"])
                assert refused.status_code == 401
                assert problem_type(refused) == "refresh-token-reused"
            assert await svc.runtime.revocations.is_revoked(jti)
        async with running_service(SERVICE, sqlite_url, tmp_path, revocations=MemoryRevocationStore()) as restarted:
            assert await restarted.runtime.revocations.is_revoked(jti)
            assert not await restarted.runtime.revocations.is_revoked(uuid.uuid4().hex)

    async def test_the_access_tokens_of_the_session_stop_working_at_the_gateway(
            self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            verifier = gateway_verifier(svc, client)
            session = await signed_up_and_logged_in(client)
            refreshed = (await refresh(client, session["refresh_token"])).json()
            other_session = (await log_in(client)).json()
            for pair in (session, refreshed, other_session):
                assert await accepted(verifier, pair["access_token"])
            jti = jwt.decode(refreshed["access_token"], options={"verify_signature": False})["jti"]
            async with svc.client(user_id=session["user_id"], roles=("customer",), token_id=jti) as user:
                response = await user.post("/api/v1/auth/logout", json={"refresh_token": refreshed["refresh_token"]})
                assert response.status_code == 204, response.text

            # Not only the bearer token: the one issued before the refresh, from the same session, too.
            assert not await accepted(verifier, session["access_token"])
            assert not await accepted(verifier, refreshed["access_token"])
            assert await accepted(verifier, other_session["access_token"])

    async def test_concurrent_logouts_with_one_access_token_all_succeed(
            self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            async with svc.client() as client:
                session = await signed_up_and_logged_in(client)
            jti = jwt.decode(session["access_token"], options={"verify_signature": False})["jti"]
            for _ in range(3):
                async with svc.client(user_id=session["user_id"], roles=("customer",), token_id=jti) as user:
                    answers = await asyncio.gather(*(
                        user.post("/api/v1/auth/logout", json={"refresh_token": session["refresh_token"]})
                        for _ in range(4)))
                assert [a.status_code for a in answers] == [204] * 4, [a.text for a in answers]
            assert await svc.runtime.revocations.is_revoked(jti)

    async def test_does_not_revoke_another_users_session(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            async with svc.client() as client:
                victim = await signed_up_and_logged_in(client, email="victim@example.com")
                attacker = await signed_up_and_logged_in(client, email="mallory@example.com")
            async with svc.client(user_id=attacker["user_id"], roles=("customer",)) as user:
                response = await user.post("/api/v1/auth/logout", json={"refresh_token": victim["refresh_token"]})
                assert response.status_code == 204
                assert (await refresh(user, victim["refresh_token"])).status_code == 200

    async def test_needs_a_signed_in_caller(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            session = await signed_up_and_logged_in(client)
            response = await client.post("/api/v1/auth/logout", json={"refresh_token": session["refresh_token"]})
            assert response.status_code == 401
            assert (await refresh(client, session["refresh_token"])).status_code == 200


class TestMe:
    async def test_is_the_signed_in_principal(self, sqlite_url: str, tmp_path: Path) -> None:
        user_id = uuid.uuid4()
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            async with svc.client(tenant="acme", user_id=user_id, roles=("customer", "tenant_admin")) as client:
                response = await client.get("/api/v1/auth/me")
                assert response.status_code == 200
                assert response.json() == {"user_id": str(user_id), "tenant_id": "acme",
                                           "roles": ["customer", "tenant_admin"], "email_verified": False}
            async with svc.client(tenant="acme") as anonymous:
                assert (await anonymous.get("/api/v1/auth/me")).status_code == 401


class TestTenantIsolation:
    async def test_an_account_lives_in_its_tenant_only(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            async with svc.client(tenant="acme") as acme:
                assert (await sign_up(acme, password=PASSWORD)).status_code == 201
            async with svc.client(tenant="globex") as globex:
                refused = await log_in(globex)
                assert refused.status_code == 401
                assert problem_type(refused) == "invalid-credentials"
                assert (await sign_up(globex, password="another-password-7")).status_code == 201
                globex_login = await log_in(globex, password="another-password-7")
                assert globex_login.status_code == 200
                assert (await verified_claims(globex, globex_login.json()["access_token"]))["tenant"] == "globex"
            async with svc.client(tenant="acme") as acme:
                assert (await log_in(acme, password="another-password-7")).status_code == 401
                assert (await log_in(acme)).status_code == 200
            events = await outbox_events(svc, REGISTERED)
        assert [e["tenant_id"] for e in events] == ["acme", "globex"]


class TestOnEveryDatabase:
    async def test_signup_login_refresh_and_reuse(self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, svc.client() as client:
            session = await signed_up_and_logged_in(client)
            assert problem_type(await sign_up(client, email="ADA@example.com")) == "email-taken"
            assert (await log_in(client, password="wrong-password-1")).status_code == 401
            rotated = await refresh(client, session["refresh_token"])
            assert rotated.status_code == 200, rotated.text
            claims = await verified_claims(client, rotated.json()["access_token"])
            assert (claims["sub"], claims["tenant"], claims["roles"]) == (session["user_id"], "default", ["customer"])
            assert problem_type(await refresh(client, session["refresh_token"])) == "refresh-token-reused"
            assert problem_type(await refresh(client, rotated.json()["refresh_token"])) == "refresh-token-reused"
            [event] = await outbox_events(svc, REGISTERED)
            assert event["envelope"]["payload"]["user_id"] == session["user_id"]

    async def test_two_signups_with_one_email_at_once_create_one_account(
            self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, svc.client() as client:
            responses = await asyncio.gather(sign_up(client, email="ada@example.com"),
                                             sign_up(client, email="Ada@Example.com"))
            assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
            assert await scalar(svc, "SELECT count(*) FROM users") == 1
            assert len(await outbox_events(svc, REGISTERED)) == 1

    async def test_one_token_refreshed_twice_at_once_succeeds_at_most_once(
            self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, svc.client() as client:
            session = await signed_up_and_logged_in(client)
            for _ in range(3):
                first, second = await asyncio.gather(refresh(client, session["refresh_token"]),
                                                     refresh(client, session["refresh_token"]))
                statuses = sorted([first.status_code, second.status_code])
                assert statuses in ([200, 401], [401, 401]), (first.text, second.text)
                # The loser presented a spent token: the family is revoked, the winner's new token too.
                for winner in (r for r in (first, second) if r.status_code == 200):
                    assert problem_type(await refresh(client, winner.json()["refresh_token"])) == "refresh-token-reused"
                session = {**session, **(await log_in(client)).json()}
