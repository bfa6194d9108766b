"""Limits a client meets at the edge, black-box, in both topologies: an access token stops working
when it expires, a tenant's rate limit is enforced and then recovers, a client that makes up
forwarding headers is still the same client to the rate limit and to the login throttle, and a body
over the limit is answered 413 to every client that sends one. These platforms are the only ones
with short lifetimes (30 s tokens, no verification leeway, a 3 s rate-limit window, tenant settings
re-read every second, a 5-failure login throttle per address over 10 s), so that waiting for expiry
and recovery takes seconds."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.e2e import platforms
from tests.e2e.actors import assert_ok, assert_problem, bearer, eventually, login, problem_type, tenant_header

pytestmark = [pytest.mark.xdist_group("e2e")]

SHORT_LIVED = {
    "AMAZONLITE_AUTH_ACCESS_TTL_SECONDS": "30",
    "AMAZONLITE_GATEWAY_TOKEN_LEEWAY_SECONDS": "0",
    "AMAZONLITE_GATEWAY_RATE_LIMIT_WINDOW_SECONDS": "3",
    "AMAZONLITE_GATEWAY_TENANT_CACHE_SECONDS": "1",
    "AMAZONLITE_GATEWAY_UNKNOWN_TENANT_CACHE_SECONDS": "1",
    "AMAZONLITE_AUTH_LOGIN_FAILURES_PER_ADDRESS": "5",
    "AMAZONLITE_AUTH_LOGIN_FAILURE_WINDOW_SECONDS": "10",
}
# What a client sends to pass for another client: a new address in every header a proxy might set.
SPOOFS = [{"X-Forwarded-For": f"198.51.100.{i}", "X-Real-IP": f"198.51.100.{i}",
           "Forwarded": f"for=198.51.100.{i}", "True-Client-IP": f"198.51.100.{i}"} for i in range(1, 40)]
THREE_MB = b"x" * (3 * 1024 * 1024)


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[platforms.Platform]:
    workdir: Path = tmp_path_factory.mktemp(f"limits-{request.param}")
    with platforms.started(request.param, workdir, extra_env=SHORT_LIVED) as running:
        yield running


@pytest.fixture
def api(platform: platforms.Platform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{platform.base_url}/api/v1", timeout=30) as client:
        yield client


def test_an_access_token_stops_working_when_it_expires_and_a_refresh_gives_a_new_one(api: httpx.Client) -> None:
    tokens = login(api, platforms.ADMIN_EMAIL, platforms.ADMIN_PASSWORD)
    assert_ok(api.get("/auth/me", headers=bearer(tokens["access_token"])))
    expires_at = jwt.decode(tokens["access_token"], options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires_at - time.time()) + 1)  # waiting for the expiry, not timing anything

    expired = assert_problem(api.get("/auth/me", headers=bearer(tokens["access_token"])), 401)
    assert "expired" in expired["detail"].lower(), expired
    renewed = assert_ok(api.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}))
    subject = jwt.decode(tokens["access_token"], options={"verify_signature": False})["sub"]
    assert assert_ok(api.get("/auth/me", headers=bearer(renewed["access_token"])))["user_id"] == subject


def test_a_tenants_rate_limit_is_enforced_and_recovers(api: httpx.Client) -> None:
    root = login(api, platforms.ADMIN_EMAIL, platforms.ADMIN_PASSWORD)
    tenant = f"limited-{uuid.uuid4().hex[:8]}"
    assert_ok(api.post("/admin/tenants", headers=bearer(root["access_token"]), json={
        "id": tenant, "name": "Limited", "rate_limits": {"tenant_per_minute": 1000, "client_per_minute": 3}}), 201)

    def read() -> httpx.Response:
        return api.get("/categories", headers=tenant_header(tenant))

    eventually(lambda: read().status_code == 200, timeout=30, what="the gateway to admit the new tenant")
    answers = [read() for _ in range(6)]
    refused = next((a for a in answers if a.status_code == 429), None)
    assert refused is not None, [a.status_code for a in answers]
    problem = assert_problem(refused, 429)
    assert "client" in problem["detail"], problem
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 6
    assert refused.headers["ratelimit-limit"] == "3" and refused.headers["ratelimit-remaining"] == "0"

    time.sleep(retry_after)  # as a well-behaved client does
    recovered = eventually(lambda: (r := read()).status_code == 200 and r, timeout=30,
                           what="the client's requests to be admitted again")
    assert int(recovered.headers["ratelimit-remaining"]) >= 0


def test_made_up_forwarding_headers_do_not_reset_the_clients_rate_limit(api: httpx.Client) -> None:
    root = login(api, platforms.ADMIN_EMAIL, platforms.ADMIN_PASSWORD)
    tenant = f"spoofed-{uuid.uuid4().hex[:8]}"
    assert_ok(api.post("/admin/tenants", headers=bearer(root["access_token"]), json={
        "id": tenant, "name": "Spoofed", "rate_limits": {"tenant_per_minute": 1000, "client_per_minute": 3}}), 201)
    eventually(lambda: api.get("/categories", headers=tenant_header(tenant)).status_code == 200, timeout=30,
               what="the gateway to admit the new tenant")

    answers = [api.get("/categories", headers={**tenant_header(tenant), **spoof}) for spoof in SPOOFS[:8]]
    statuses = [a.status_code for a in answers]
    assert 429 in statuses and statuses.index(429) <= 3, statuses
    assert all(s == 429 for s in statuses[statuses.index(429):]), statuses


def test_a_body_over_the_limit_is_answered_413_every_time(platform: platforms.Platform, api: httpx.Client) -> None:
    url = f"{platform.base_url}/api/v1/auth/signup"
    statuses = []
    for _ in range(20):  # urllib sends the whole body before it reads the answer
        try:
            urllib.request.urlopen(urllib.request.Request(url, data=THREE_MB, method="POST", headers={
                "Content-Type": "application/json"}), timeout=30)
        except urllib.error.HTTPError as exc:
            statuses.append((exc.code, exc.headers["content-type"]))
            exc.close()
    assert statuses == [(413, "application/problem+json")] * 20
    chunked = api.post("/auth/signup", content=iter([THREE_MB[:65536]] * 48),
                       headers={"Content-Type": "application/json"})
    assert problem_type(assert_problem(chunked, 413)) == "payload-too-large"
    assert api.get("/categories").status_code == 200  # the client goes on


def test_made_up_forwarding_headers_do_not_reset_the_login_throttle(api: httpx.Client) -> None:
    """Last of the module: this client's address is throttled for the window (10 s) afterwards."""
    failures = [api.post("/auth/login", headers=spoof, json={
        "email": f"nobody-{i}@example.com", "password": "not-the-password-1"}).status_code
        for i, spoof in enumerate(SPOOFS[:5])]
    assert failures == [401] * 5, failures

    throttled = api.post("/auth/login", headers=SPOOFS[10], json={
        "email": platforms.ADMIN_EMAIL, "password": platforms.ADMIN_PASSWORD})
    assert problem_type(assert_problem(throttled, 429)) == "too-many-login-attempts", throttled.text
    eventually(lambda: api.post("/auth/login", json={"email": platforms.ADMIN_EMAIL,
                                                     "password": platforms.ADMIN_PASSWORD}).status_code == 200,
               timeout=30, what="the throttle to let the client in again")
