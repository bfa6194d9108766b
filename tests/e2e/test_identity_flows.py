"""Identity flows a user goes through in a browser and a mailbox, black-box through the gateway, in
both topologies: signing in with Google (against the local OpenID provider the platform fixture
configures, see conftest.oidc_provider), verifying an email and resetting a password with the
tokens the platform mailed (read from the recorded `notification.email.requested.v1` events, see
mailbox.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.e2e.actors import assert_ok, assert_problem, bearer, login, problem_type
from tests.e2e.mailbox import Mailbox
from tests.e2e.platforms import GOOGLE_CALLBACK, Platform
from tests.support.oidc import CLIENT_ID, LocalOidcProvider

pytestmark = [pytest.mark.xdist_group("e2e"),
              # The provider (Authlib on the server side) warns about its own use of Authlib; not ours to fix.
              pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib.*")]

AUTHORIZE = "/auth/oauth/google/authorize"
CALLBACK = "/auth/oauth/google/callback"
PASSWORD = "identity-flows-pass-42"
NEW_PASSWORD = "a-brand-new-secret-77"


@pytest.fixture(scope="module")
def api(platform: Platform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{platform.base_url}/api/v1", timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def mailbox(platform: Platform) -> Mailbox:
    return Mailbox(platform.auth_database_url)


def unique_email(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


# Google --------------------------------------------------------------------------------------

class Browser:
    """A user's browser going from the shop (through the gateway) to the provider and back."""

    def __init__(self, api: httpx.Client, platform: Platform, provider: LocalOidcProvider) -> None:
        self.api = api
        self.callback = f"{platform.base_url}{GOOGLE_CALLBACK}"
        self.provider = provider

    def start(self) -> str:
        """Click "Sign in with Google": the gateway's redirect to the provider."""
        started = self.api.get(AUTHORIZE)
        assert started.status_code == 302, started.text
        location = started.headers["location"]
        query = parse_qs(urlsplit(location).query)
        assert query["client_id"] == [CLIENT_ID] and query["redirect_uri"] == [self.callback]
        assert query["code_challenge_method"] == ["S256"] and query["state"] and query["nonce"]
        return location

    def approve(self, authorization_url: str, *, sub: str, email: str, nonce: str | None = None) -> dict[str, str]:
        """Approve at the provider; the `code` and `state` it sends back to the gateway's callback."""
        back = self.provider.consent(authorization_url, sub=sub, nonce=nonce, claims={
            "email": email, "email_verified": True, "name": "Grace Hopper"})
        assert back.startswith(self.callback + "?"), back
        return {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}

    def come_back(self, params: dict[str, str]) -> httpx.Response:
        return self.api.get(CALLBACK, params=params)

    def sign_in(self, *, sub: str, email: str, nonce: str | None = None) -> httpx.Response:
        return self.come_back(self.approve(self.start(), sub=sub, email=email, nonce=nonce))


@pytest.fixture
def browser(api: httpx.Client, platform: Platform, oidc_provider: LocalOidcProvider) -> Browser:
    return Browser(api, platform, oidc_provider)


def google_account() -> tuple[str, str]:
    return f"google-{uuid.uuid4().hex}", unique_email("grace")


def me(api: httpx.Client, tokens: dict[str, Any]) -> dict[str, Any]:
    return assert_ok(api.get("/auth/me", headers=bearer(tokens["access_token"])))


class TestGoogleSignIn:
    def test_signs_a_new_customer_in_and_the_same_account_again_later(self, api: httpx.Client,
                                                                       browser: Browser) -> None:
        sub, email = google_account()
        first = assert_ok(browser.sign_in(sub=sub, email=email))
        assert set(first) == {"access_token", "refresh_token", "token_type", "expires_in"}
        account = me(api, first)
        assert (account["tenant_id"], account["roles"], account["email_verified"]) == ("default", ["customer"], True)

        # The pair is the platform's own: it refreshes, and the new access token is the same account.
        rotated = assert_ok(api.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}))
        assert me(api, rotated)["user_id"] == account["user_id"]

        again = assert_ok(browser.sign_in(sub=sub, email=email))
        assert me(api, again)["user_id"] == account["user_id"]

    def test_a_state_the_platform_did_not_issue_is_refused_and_a_used_one_cannot_be_replayed(
            self, browser: Browser) -> None:
        sub, email = google_account()
        params = browser.approve(browser.start(), sub=sub, email=email)
        forged = assert_problem(browser.come_back({**params, "state": "not-a-state-we-issued"}), 400)
        assert problem_type(forged) == "invalid-oauth-state"

        assert_ok(browser.come_back(params))  # the genuine one still works, once
        replayed = assert_problem(browser.come_back(params), 400)
        assert problem_type(replayed) == "invalid-oauth-state"

    def test_an_id_token_with_another_nonce_is_refused(self, api: httpx.Client, browser: Browser) -> None:
        sub, email = google_account()
        params = browser.approve(browser.start(), sub=sub, email=email, nonce="an-attackers-nonce")
        refused = assert_problem(browser.come_back(params), 400)
        assert problem_type(refused) == "invalid-id-token" and "nonce" in refused["detail"]
        # The attempt is spent: the same callback is not tried again.
        assert problem_type(assert_problem(browser.come_back(params), 400)) == "invalid-oauth-state"

    def test_an_expired_id_token_is_refused(self, browser: Browser, oidc_provider: LocalOidcProvider) -> None:
        sub, email = google_account()
        with oidc_provider.expired_id_tokens():
            refused = assert_problem(browser.sign_in(sub=sub, email=email), 400)
        assert problem_type(refused) == "invalid-id-token" and "expired" in refused["detail"]
        # Control: once the provider's tokens are sound again, the same user signs in.
        assert_ok(browser.sign_in(sub=sub, email=email))


# Mailed tokens -------------------------------------------------------------------------------

def signed_up(api: httpx.Client, name: str) -> tuple[str, dict[str, Any]]:
    """A new customer of `default` and a token pair of theirs."""
    email = unique_email(name)
    assert_ok(api.post("/auth/signup", json={"email": email, "password": PASSWORD, "name": name.title()}), 201)
    return email, login(api, email, PASSWORD)


class TestEmailVerification:
    def test_the_mailed_token_verifies_the_email_once(self, api: httpx.Client, mailbox: Mailbox) -> None:
        email, tokens = signed_up(api, "vera")
        assert me(api, tokens)["email_verified"] is False

        token = mailbox.token(to=email, template="verify_email")
        assert api.post("/auth/verify-email", json={"token": token}).status_code == 204
        assert me(api, tokens)["email_verified"] is True

        spent = assert_problem(api.post("/auth/verify-email", json={"token": token}), 400)
        assert problem_type(spent) == "invalid-token"


class TestPasswordReset:
    def test_the_mailed_token_sets_a_new_password_and_ends_every_session(self, api: httpx.Client,
                                                                          mailbox: Mailbox) -> None:
        email, laptop = signed_up(api, "rita")
        phone = login(api, email, PASSWORD)

        accepted = api.post("/auth/password/forgot", json={"email": email})
        assert accepted.status_code == 202, accepted.text
        token = mailbox.token(to=email, template="password_reset")
        assert api.post("/auth/password/reset", json={"token": token, "password": NEW_PASSWORD}).status_code == 204

        for session in (laptop, phone):
            assert_problem(api.post("/auth/refresh", json={"refresh_token": session["refresh_token"]}), 401)
        fresh = login(api, email, NEW_PASSWORD)
        assert me(api, fresh)["email_verified"] is True  # the link reached the mailbox
        assert_problem(api.post("/auth/login", json={"email": email, "password": PASSWORD}), 401)
        reuse = api.post("/auth/password/reset", json={"token": token, "password": "yet-another-one-9"})
        reused = assert_problem(reuse, 400)
        assert problem_type(reused) == "invalid-token"
        login(api, email, NEW_PASSWORD)  # the refused reuse changed nothing

    def test_a_request_for_an_unknown_email_looks_the_same_and_mails_nothing(self, api: httpx.Client,
                                                                             mailbox: Mailbox) -> None:
        email, _ = signed_up(api, "known")
        stranger = unique_email("stranger")
        known = api.post("/auth/password/forgot", json={"email": email})
        unknown = api.post("/auth/password/forgot", json={"email": stranger})
        assert known.status_code == 202, known.text
        assert (unknown.status_code, unknown.json()) == (known.status_code, known.json())
        mailbox.token(to=email, template="password_reset")  # the known account's mail was recorded...
        assert mailbox.mails(to=stranger, template="password_reset") == []  # ...and none for the stranger
