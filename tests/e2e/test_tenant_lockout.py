"""Nobody can lock the platform out, black-box, in both topologies: the platform's own tenant
(`default`, where the platform admins live) cannot be suspended, and a suspended tenant comes back
when a platform admin reactivates it, through the API or from an operator's command line.

The gateway re-reads a tenant's status every second here (it caches it for 30 s by default), so
that waiting for it to notice a change takes seconds."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e import platforms
from tests.e2e.actors import (
    assert_ok,
    assert_problem,
    bearer,
    create_tenant,
    eventually,
    login,
    problem_type,
    tenant_header,
)

pytestmark = [pytest.mark.xdist_group("e2e")]

TENANT_CACHE_SECONDS = 1


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[platforms.Platform]:
    workdir: Path = tmp_path_factory.mktemp(f"lockout-{request.param}")
    caches = {"AMAZONLITE_GATEWAY_TENANT_CACHE_SECONDS": str(TENANT_CACHE_SECONDS),
              "AMAZONLITE_GATEWAY_UNKNOWN_TENANT_CACHE_SECONDS": "1"}
    with platforms.started(request.param, workdir, extra_env=caches) as running:
        yield running


@pytest.fixture
def api(platform: platforms.Platform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{platform.base_url}/api/v1", timeout=30) as client:
        yield client


@pytest.fixture
def root(api: httpx.Client) -> dict[str, str]:
    """A platform admin's authorization header."""
    return bearer(login(api, platforms.ADMIN_EMAIL, platforms.ADMIN_PASSWORD)["access_token"])


def new_tenant(api: httpx.Client, root: dict[str, str]) -> str:
    """A tenant of its own for the test, once the gateway admits it."""
    tenant = f"shop-{uuid.uuid4().hex[:8]}"
    assert create_tenant(api, root, tenant)
    admitted(api, tenant)
    return tenant


def admitted(api: httpx.Client, tenant: str) -> None:
    eventually(lambda: api.get("/categories", headers=tenant_header(tenant)).status_code == 200, timeout=30,
               what=f"the gateway to admit {tenant}")


def refused_as_suspended(api: httpx.Client, tenant: str) -> None:
    response = eventually(lambda: (r := api.get("/categories", headers=tenant_header(tenant))).status_code == 403 and r,
                          timeout=30, what=f"the gateway to refuse {tenant}")
    assert problem_type(assert_problem(response, 403)) == "tenant-suspended"


def test_the_platforms_own_tenant_cannot_be_suspended(platform: platforms.Platform, api: httpx.Client,
                                                      root: dict[str, str]) -> None:
    refused = assert_problem(api.patch("/admin/tenants/default", headers=root, json={"status": "suspended"}), 409)
    assert problem_type(refused) == "platform-tenant-not-suspendable"
    with pytest.raises(RuntimeError, match="holds the platform's administrators"):
        platform.cli("tenants", "suspend", "default")

    time.sleep(TENANT_CACHE_SECONDS + 1)  # past the gateway's cache: it reads the status again
    assert assert_ok(api.get("/admin/tenants/default", headers=root))["status"] == "active"
    again = login(api, platforms.ADMIN_EMAIL, platforms.ADMIN_PASSWORD)
    assert assert_ok(api.get("/auth/me", headers=bearer(again["access_token"])))["tenant_id"] == "default"


def test_a_platform_admin_reactivates_a_suspended_tenant_through_the_api(api: httpx.Client,
                                                                          root: dict[str, str]) -> None:
    tenant = new_tenant(api, root)
    assert assert_ok(api.patch(f"/admin/tenants/{tenant}", headers=root, json={"status": "suspended"})
                     )["status"] == "suspended"
    refused_as_suspended(api, tenant)

    assert assert_ok(api.patch(f"/admin/tenants/{tenant}", headers=root, json={"status": "active"})
                     )["status"] == "active"
    admitted(api, tenant)


def test_an_operator_reactivates_a_suspended_tenant_from_the_command_line(
        platform: platforms.Platform, api: httpx.Client, root: dict[str, str]) -> None:
    tenant = new_tenant(api, root)
    platform.cli("tenants", "suspend", tenant)
    refused_as_suspended(api, tenant)
    assert assert_ok(api.get(f"/admin/tenants/{tenant}", headers=root))["status"] == "suspended"

    platform.cli("tenants", "activate", tenant)
    admitted(api, tenant)
