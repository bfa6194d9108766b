"""People who use the platform in end-to-end tests: sign up, sign in, act in a tenant.

Everything here speaks only HTTP to the gateway (`api` is an `httpx.Client` on `<base>/api/v1`).
No helper ever makes a failing login on purpose: the auth service throttles an account after a few.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "isolation-tests-pass-42"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def eventually(check: Callable[[], Any], *, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout}s (last: {last!r})")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["type"] and body["title"] and body["correlation_id"]
    return body


def problem_type(problem: dict[str, Any]) -> str:
    """The last segment of a problem's `type` URI (`invalid-token`, `upstream-timeout`, ...)."""
    return str(problem["type"]).rsplit("/", 1)[-1]


def assert_ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.content else None


def tenant_header(tenant: str) -> dict[str, str]:
    return {"X-Tenant-ID": tenant}


def login(api: httpx.Client, email: str, password: str, tenant: str | None = None) -> dict[str, Any]:
    """A fresh token pair (a new refresh-token family); the login must succeed."""
    headers = tenant_header(tenant) if tenant is not None else {}
    return assert_ok(api.post("/auth/login", json={"email": email, "password": password}, headers=headers))


@dataclass
class Actor:
    """A signed-in account of one tenant, with its profile in place."""

    tenant: str
    email: str
    password: str
    user_id: str
    access_token: str
    refresh_token: str

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.access_token)

    def session(self, api: httpx.Client) -> dict[str, Any]:
        """Another token pair of this account, for tests that spend or revoke refresh tokens."""
        return login(api, self.email, self.password, self.tenant)


def sign_in(api: httpx.Client, email: str, password: str, tenant: str) -> Actor:
    tokens = login(api, email, password, tenant)
    me = assert_ok(api.get("/auth/me", headers=bearer(tokens["access_token"])))
    assert me["tenant_id"] == tenant, me
    return Actor(tenant, email, password, me["user_id"], tokens["access_token"], tokens["refresh_token"])


def sign_up(api: httpx.Client, tenant: str, *, name: str, email: str | None = None,
            password: str = PASSWORD) -> Actor:
    """A new customer of `tenant`, signed in, once the users service has made their profile."""
    email = email or f"{name.lower().replace(' ', '-')}-{uuid.uuid4().hex[:8]}@example.com"
    created = api.post("/auth/signup", json={"email": email, "password": password, "name": name},
                       headers=tenant_header(tenant))
    assert_ok(created, 201)
    actor = sign_in(api, email, password, tenant)
    assert actor.user_id == created.json()["id"]
    wait_for_profile(api, actor)
    return actor


def wait_for_profile(api: httpx.Client, actor: Actor) -> dict[str, Any]:
    """The profile is made by the users service from user.registered.v1: wait for it.

    Generous: these tests are about who may touch what, not event latency, and a loaded CI machine
    can be slow. (The first signup's events once took 40 s in the distributed topology: the relay's
    first batch, naming a brand-new topic, waited out the producer's request timeout; see
    TestFirstPublish in tests/platform/test_kafka.py.)"""
    return eventually(
        lambda: (r := api.get("/users/me", headers=actor.auth)).status_code == 200 and r.json(),
        timeout=90.0, what=f"the profile of {actor.email} in {actor.tenant}")


def create_tenant(api: httpx.Client, platform_admin: dict[str, str], tenant: str) -> bool:
    """Create `tenant` through `POST /admin/tenants` as a platform admin; True if the platform has
    that endpoint (an existing tenant is fine), False if it has none yet (any well-formed tenant id
    is then usable as is)."""
    response = api.post("/admin/tenants", headers=platform_admin,
                        json={"id": tenant, "name": f"Tenant {tenant}", "currency": "INR", "tax_rate_bp": 0})
    if response.status_code in (404, 405):
        spec = api.get(str(api.base_url.copy_with(path="/openapi.json"))).json()
        if not any(path.endswith("/admin/tenants") for path in spec["paths"]):
            return False
    assert response.status_code in (200, 201, 409), f"creating tenant {tenant}: {response.status_code} {response.text}"
    return True
