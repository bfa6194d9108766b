"""Sign-in with Google, run for real against a local OpenID provider (oidc-provider-mock, a Flask
app served by werkzeug on a free port in a thread)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

import httpx
import oidc_provider_mock
import pytest
from sqlalchemy import text

from amazonlite.services.auth.app import SERVICE
from amazonlite.services.auth.settings import AuthSettings
from tests.services.auth.factories import (
    REGISTERED,
    log_in,
    mailed_token,
    outbox_events,
    problem_type,
    scalar,
    sign_up,
    verified_claims,
)
from tests.support.harness import Harness, running_service

# The provider (Authlib on the server side) warns about its own use of Authlib; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib.*")

CLIENT_ID = "amazonlite-test-client"
REDIRECT_URI = "http://shop.test/api/v1/auth/oauth/google/callback"
AUTHORIZE = "/api/v1/auth/oauth/google/authorize"
CALLBACK = "/api/v1/auth/oauth/google/callback"


@pytest.fixture
def provider() -> Iterator[str]:
    """The issuer URL of a running provider whose ID tokens live an hour."""
    with oidc_provider_mock.run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def expired_provider() -> Iterator[str]:
    """A provider whose ID tokens expired two minutes before they were issued."""
    with oidc_provider_mock.run_server_in_thread(access_token_max_age=dt.timedelta(seconds=-120)) as server:
        yield f"http://localhost:{server.server_port}"


@asynccontextmanager
async def auth_with_google(url: str, tmp_path: Path, issuer: str,
                           monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    for name, value in (("ISSUER", issuer), ("CLIENT_ID", CLIENT_ID), ("CLIENT_SECRET", "test-secret"),
                        ("REDIRECT_URI", REDIRECT_URI)):
        monkeypatch.setenv(f"AMAZONLITE_AUTH_GOOGLE_{name}", value)
    async with running_service(SERVICE, url, tmp_path) as svc:
        yield svc


async def consent(issuer: str, authorization_url: str, *, sub: str, claims: dict[str, Any],
                  nonce: str | None = None) -> dict[str, str]:
    """Play the user at the provider: say who they are, approve; the callback's query parameters.
    `nonce` replaces the one we asked for (what a replayed or forged request would carry)."""
    async with httpx.AsyncClient() as browser:
        assert (await browser.put(f"{issuer}/users/{quote(sub)}", json=claims)).status_code == 204
        if nonce is not None:
            parts = urlsplit(authorization_url)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()} | {"nonce": nonce}
            authorization_url = urlunsplit(parts._replace(query=urlencode(query)))
        approved = await browser.post(authorization_url, data={"sub": sub})
    assert approved.status_code == 302, approved.text
    location = approved.headers["location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def sign_in(client: httpx.AsyncClient, issuer: str, *, sub: str = "google-123",
                  email: str = "ada@example.com", email_verified: bool = True,
                  nonce: str | None = None) -> httpx.Response:
    started = await client.get(AUTHORIZE)
    assert started.status_code == 302, started.text
    params = await consent(issuer, started.headers["location"], sub=sub, nonce=nonce,
                           claims={"email": email, "email_verified": email_verified, "name": "Ada Lovelace"})
    return await client.get(CALLBACK, params={"code": params["code"], "state": params["state"]})


class TestAuthorize:
    async def test_redirects_with_state_nonce_and_an_s256_challenge_kept_server_side(
            self, sqlite_url: str, tmp_path: Path, provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
        async with auth_with_google(sqlite_url, tmp_path, provider, monkeypatch) as svc, svc.client() as client:
            response = await client.get(AUTHORIZE)
            assert response.status_code == 302
            location = urlsplit(response.headers["location"])
            query = {k: v[0] for k, v in parse_qs(location.query).items()}
            async with svc.runtime.db.engine.connect() as conn:
                row = (await conn.execute(text(
                    "SELECT state_hash, nonce, code_verifier, tenant_id FROM oauth_requests"))).one()
        assert f"{location.scheme}://{location.netloc}{location.path}" == f"{provider}/oauth2/authorize"
        assert (query["response_type"], query["client_id"], query["redirect_uri"]) == ("code", CLIENT_ID, REDIRECT_URI)
        assert set(query["scope"].split()) == {"openid", "email", "profile"}
        assert query["code_challenge_method"] == "S256"
        challenge = base64.urlsafe_b64encode(hashlib.sha256(row.code_verifier.encode()).digest()).rstrip(b"=")
        assert query["code_challenge"] == challenge.decode()
        assert row.state_hash == hashlib.sha256(query["state"].encode()).hexdigest()
        assert (row.nonce, row.tenant_id) == (query["nonce"], "default")

    async def test_is_404_when_no_client_is_configured(self, sqlite_url: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("AMAZONLITE_AUTH_GOOGLE_CLIENT_ID", raising=False)
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            answers = [await client.get(AUTHORIZE), await client.get(CALLBACK, params={"code": "c", "state": "s"})]
            for response in answers:
                assert response.status_code == 404
                assert problem_type(response) == "oauth-provider-disabled"


class TestFirstAndLaterSignIns:
    async def test_creates_a_customer_once_and_signs_the_same_user_in_again(
            self, any_database_url: str, tmp_path: Path, provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
        async with auth_with_google(any_database_url, tmp_path, provider, monkeypatch) as svc, \
                svc.client() as client:
            first = await sign_in(client, provider, email="Ada@Example.com")
            assert first.status_code == 200, first.text
            assert set(first.json()) == {"access_token", "refresh_token", "token_type", "expires_in"}
            claims = await verified_claims(client, first.json()["access_token"])
            again = await sign_in(client, provider)
            assert again.status_code == 200, again.text
            assert (await verified_claims(client, again.json()["access_token"]))["sub"] == claims["sub"]
            [registered] = await outbox_events(svc, REGISTERED)
            # No password works for an account made by the provider.
            assert (await log_in(client, password="anything-at-all-1")).status_code == 401
        assert claims["roles"] == ["customer"]
        assert registered["envelope"]["payload"] == {"user_id": claims["sub"], "email": "ada@example.com",
                                                     "name": "Ada Lovelace", "roles": ["customer"]}


class TestLinkingByEmail:
    async def test_links_a_verified_local_account_when_the_provider_verified_the_email(
            self, sqlite_url: str, tmp_path: Path, provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
        async with auth_with_google(sqlite_url, tmp_path, provider, monkeypatch) as svc, svc.client() as client:
            local = (await sign_up(client)).json()
            refused = await sign_in(client, provider)  # our side has not verified the email yet
            assert refused.status_code == 409
            assert problem_type(refused) == "oauth-account-not-linkable"
            verify = await client.post("/api/v1/auth/verify-email",
                                       json={"token": await mailed_token(svc, "verify_email")})
            assert verify.status_code == 204
            unverified_by_google = await sign_in(client, provider, email_verified=False)
            assert problem_type(unverified_by_google) == "oauth-account-not-linkable"
            linked = await sign_in(client, provider)
            assert linked.status_code == 200, linked.text
            assert (await verified_claims(client, linked.json()["access_token"]))["sub"] == local["id"]
            assert await scalar(svc, "SELECT count(*) FROM users") == 1
            # Another Google identity claiming the same (verified) email does not take the account over.
            other = await sign_in(client, provider, sub="google-999")
            assert problem_type(other) == "oauth-account-not-linkable"


    async def test_a_look_alike_email_claim_is_the_local_account(
            self, sqlite_url: str, tmp_path: Path, provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
        async with auth_with_google(sqlite_url, tmp_path, provider, monkeypatch) as svc, svc.client() as client:
            local = (await sign_up(client)).json()
            assert (await client.post("/api/v1/auth/verify-email",
                                      json={"token": await mailed_token(svc, "verify_email")})).status_code == 204
            linked = await sign_in(client, provider, email="\uff21\uff24\uff21@example.com")  # full-width ADA
            assert linked.status_code == 200, linked.text
            assert (await verified_claims(client, linked.json()["access_token"]))["sub"] == local["id"]
            assert await scalar(svc, "SELECT count(*) FROM users") == 1


class TestRefusedCallbacks:
    async def test_an_unknown_replayed_expired_or_foreign_state_is_refused(
            self, sqlite_url: str, tmp_path: Path, provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
        async with auth_with_google(sqlite_url, tmp_path, provider, monkeypatch) as svc, svc.client() as client:
            started = await client.get(AUTHORIZE)
            params = await consent(provider, started.headers["location"], sub="g-1",
                                   claims={"email": "ada@example.com", "email_verified": True})
            bogus = await client.get(CALLBACK, params={"code": params["code"], "state": "not-our-state"})
            assert bogus.status_code == 400
            assert problem_type(bogus) == "invalid-oauth-state"
            async with svc.client(tenant="acme") as acme:
                assert problem_type(await acme.get(CALLBACK, params=params)) == "invalid-oauth-state"
            assert (await client.get(CALLBACK, params=params)).status_code == 200
            assert problem_type(await client.get(CALLBACK, params=params)) == "invalid-oauth-state"

            started = await client.get(AUTHORIZE)
            params = await consent(provider, started.headers["location"], sub="g-1",
                                   claims={"email": "ada@example.com", "email_verified": True})
            past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).replace(tzinfo=None)
            async with svc.runtime.db.engine.begin() as conn:
                await conn.execute(text("UPDATE oauth_requests SET expires_at = :t"), {"t": past})
            assert problem_type(await client.get(CALLBACK, params=params)) == "invalid-oauth-state"

    async def test_a_wrong_nonce_is_refused_and_the_attempt_stays_spent(
            self, sqlite_url: str, tmp_path: Path, provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
        async with auth_with_google(sqlite_url, tmp_path, provider, monkeypatch) as svc, svc.client() as client:
            started = await client.get(AUTHORIZE)
            params = await consent(provider, started.headers["location"], sub="g-1", nonce="an-attackers-nonce",
                                   claims={"email": "ada@example.com", "email_verified": True})
            response = await client.get(CALLBACK, params=params)
            assert response.status_code == 400
            assert problem_type(response) == "invalid-id-token"
            assert "nonce" in response.json()["detail"]
            assert problem_type(await client.get(CALLBACK, params=params)) == "invalid-oauth-state"
            assert await scalar(svc, "SELECT count(*) FROM users") == 0

    async def test_an_expired_id_token_is_refused(self, sqlite_url: str, tmp_path: Path, expired_provider: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
        async with auth_with_google(sqlite_url, tmp_path, expired_provider, monkeypatch) as svc, \
                svc.client() as client:
            response = await sign_in(client, expired_provider)
            assert response.status_code == 400
            assert problem_type(response) == "invalid-id-token"
            assert "expired" in response.json()["detail"]
            assert await scalar(svc, "SELECT count(*) FROM users") == 0

    async def test_a_code_the_provider_does_not_know_is_refused(
            self, sqlite_url: str, tmp_path: Path, provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
        async with auth_with_google(sqlite_url, tmp_path, provider, monkeypatch) as svc, svc.client() as client:
            started = await client.get(AUTHORIZE)
            state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
            response = await client.get(CALLBACK, params={"code": "made-up-code", "state": state})
            assert response.status_code == 400
            assert problem_type(response) == "oauth-code-rejected"


class TestSettings:
    def test_a_client_id_needs_its_secret_and_redirect_uri(self) -> None:
        with pytest.raises(ValueError, match="REDIRECT_URI"):
            AuthSettings(google_client_id=CLIENT_ID, google_client_secret="s")
        assert AuthSettings(google_client_id=CLIENT_ID, google_client_secret="s",
                            google_redirect_uri=REDIRECT_URI).google_issuer == "https://accounts.google.com"
