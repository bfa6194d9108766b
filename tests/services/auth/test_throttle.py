"""Login throttling, on in-memory counters and on Redis (shared by replicas)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from amazonlite.platform.security import INTERNAL_TOKEN_HEADER, Principal
from amazonlite.services.auth import passwords
from amazonlite.services.auth.app import SERVICE
from tests.services.auth.factories import PASSWORD, log_in, problem_type, sign_up
from tests.support import servers
from tests.support.harness import Harness, fast_platform_settings, running_service
from tests.support.logs import Logs, at_level

ATTACKER = "203.0.113.9"
OTHER_ADDRESS = "198.51.100.7"
WRONG = "not-the-password-1"


@pytest.fixture(params=["memory", "redis"])
def counters(request: pytest.FixtureRequest) -> dict[str, str]:
    """Platform settings selecting where the counters live (a fresh Redis key prefix per test)."""
    if request.param == "memory":
        return {}
    return {"redis_url": servers.redis_url(), "redis_prefix": servers.redis_prefix()}


@asynccontextmanager
async def auth_service(sqlite_url: str, tmp_path: Path, counters: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                       **limits: int) -> AsyncIterator[Harness]:
    """The auth service with throttle settings from the environment (as an operator sets them)."""
    for name, value in limits.items():
        monkeypatch.setenv(f"AMAZONLITE_AUTH_{name.upper()}", str(value))
    platform = fast_platform_settings(tmp_path, **counters)
    async with running_service(SERVICE, sqlite_url, tmp_path, platform=platform) as svc:
        yield svc


def from_address(svc: Harness, address: str, *, tenant: str = "default") -> httpx.AsyncClient:
    """A client whose requests the gateway saw coming from `address`."""
    token = svc.runtime.internal_tokens.mint(Principal(tenant_id=tenant, client_address=address),
                                             audience="auth", caller="test")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=svc.app), base_url="http://test",
                             headers={INTERNAL_TOKEN_HEADER: token})


async def sign_up_all(svc: Harness, *emails: str, tenant: str = "default") -> None:
    async with svc.client(tenant=tenant) as client:
        for email in emails:
            assert (await sign_up(client, email=email)).status_code == 201


def assert_throttled(response: httpx.Response, *, window: int) -> None:
    assert response.status_code == 429, response.text
    assert problem_type(response) == "too-many-login-attempts"
    assert 1 <= int(response.headers["Retry-After"]) <= window


class TestPerAccount:
    async def test_the_sixth_failure_is_refused_and_other_accounts_are_unaffected(
            self, sqlite_url: str, tmp_path: Path, counters: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
        async with auth_service(sqlite_url, tmp_path, counters, monkeypatch) as svc:
            await sign_up_all(svc, "ada@example.com", "grace@example.com")
            await sign_up_all(svc, "ada@example.com", tenant="acme")
            async with from_address(svc, ATTACKER) as attacker:
                for _ in range(5):
                    assert (await log_in(attacker, password=WRONG)).status_code == 401
                # Refused even with the right password, and from any address: the account is the target.
                assert_throttled(await log_in(attacker, password=WRONG), window=900)
                assert_throttled(await log_in(attacker), window=900)
                async with from_address(svc, OTHER_ADDRESS) as elsewhere:
                    assert_throttled(await log_in(elsewhere), window=900)
                # Another account, and the same email in another tenant, are other accounts.
                assert (await log_in(attacker, email="grace@example.com")).status_code == 200
            async with from_address(svc, ATTACKER, tenant="acme") as acme:
                assert (await log_in(acme)).status_code == 200

    async def test_an_unknown_email_is_throttled_like_a_real_one(
            self, sqlite_url: str, tmp_path: Path, counters: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
        async with auth_service(sqlite_url, tmp_path, counters, monkeypatch) as svc, \
                from_address(svc, ATTACKER) as attacker:
            for _ in range(5):
                assert (await log_in(attacker, email="nobody@example.com")).status_code == 401
            assert_throttled(await log_in(attacker, email="nobody@example.com"), window=900)

    async def test_a_refused_attempt_costs_no_password_verification(
            self, sqlite_url: str, tmp_path: Path, counters: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
        async with auth_service(sqlite_url, tmp_path, counters, monkeypatch) as svc:
            await sign_up_all(svc, "ada@example.com")
            async with from_address(svc, ATTACKER) as attacker:
                for _ in range(5):
                    await log_in(attacker, password=WRONG)
                verifications: list[Any] = []
                real = passwords.verify_password

                async def counting(*args: Any) -> bool:
                    verifications.append(args)
                    return await real(*args)

                monkeypatch.setattr(passwords, "verify_password", counting)
                for _ in range(3):
                    assert (await log_in(attacker, password=WRONG)).status_code == 429
                assert verifications == []
                assert (await log_in(attacker, email="grace@example.com")).status_code == 401
                assert len(verifications) == 1  # the unknown email still costs a (dummy) verification

    async def test_after_the_window_the_owner_can_log_in_again(
            self, sqlite_url: str, tmp_path: Path, counters: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
        # Each failure costs an argon2 verification (~0.5 s here): two failures fit a 4 s window.
        async with auth_service(sqlite_url, tmp_path, counters, monkeypatch, login_failures_per_account=2,
                                login_failure_window_seconds=4) as svc:
            await sign_up_all(svc, "ada@example.com")
            async with from_address(svc, ATTACKER) as attacker:
                for _ in range(2):
                    assert (await log_in(attacker, password=WRONG)).status_code == 401
                refused = await log_in(attacker)
                assert_throttled(refused, window=4)
                await asyncio.sleep(int(refused.headers["Retry-After"]) + 0.2)
                assert (await log_in(attacker)).status_code == 200


class TestPerAddress:
    async def test_one_address_failing_on_many_accounts_is_refused_and_others_are_not(
            self, sqlite_url: str, tmp_path: Path, counters: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
        """With 3 failures allowed per address: the address is refused after failing once on each of
        three accounts (none of them near its own limit of 5); a success in between does not count
        and does not reset the address's failures; another address reaches the same accounts."""
        async with auth_service(sqlite_url, tmp_path, counters, monkeypatch, login_failures_per_address=3) as svc:
            emails = [f"user{i}@example.com" for i in range(4)]
            await sign_up_all(svc, *emails)
            async with from_address(svc, ATTACKER) as attacker:
                assert (await log_in(attacker, email=emails[0], password=WRONG)).status_code == 401
                assert (await log_in(attacker, email=emails[1], password=WRONG)).status_code == 401
                assert (await log_in(attacker, email=emails[3])).status_code == 200
                assert (await log_in(attacker, email=emails[2], password=WRONG)).status_code == 401
                assert_throttled(await log_in(attacker, email=emails[3]), window=900)
                # The address is throttled in every tenant: one client trying many tenants is one client.
                async with from_address(svc, ATTACKER, tenant="acme") as other_tenant:
                    assert_throttled(await log_in(other_tenant, email=emails[3]), window=900)
            async with from_address(svc, OTHER_ADDRESS) as neighbour:
                for email in emails:
                    assert (await log_in(neighbour, email=email)).status_code == 200


class TestUnreachableCounters:
    async def test_logins_go_on_unthrottled_and_the_outage_is_not_logged_per_login(
            self, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: Logs) -> None:
        dead = {"redis_url": "redis://127.0.0.1:1/0", "redis_prefix": servers.redis_prefix()}
        async with auth_service(sqlite_url, tmp_path, dead, monkeypatch) as svc:
            await sign_up_all(svc, "ada@example.com")
            async with from_address(svc, ATTACKER) as client:
                for _ in range(6):
                    assert (await log_in(client, password=WRONG)).status_code == 401
                assert (await log_in(client, password=PASSWORD)).status_code == 200
        lines = logs()
        assert at_level(lines, "error") == []
        # At most the outage's beginning (once per process: an earlier test may have seen it begin).
        warnings = [line for line in lines if line["level"] == "warning"]
        assert [line.get("dependency") for line in warnings] in ([], ["auth.redis"]), warnings


class TestSharedByReplicas:
    async def test_failures_on_one_replica_count_on_another(self, sqlite_url: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
        shared = {"redis_url": servers.redis_url(), "redis_prefix": servers.redis_prefix()}
        async with auth_service(sqlite_url, tmp_path, shared, monkeypatch) as one, \
                auth_service(sqlite_url, tmp_path, shared, monkeypatch) as two:
            await sign_up_all(one, "ada@example.com")
            async with from_address(one, ATTACKER) as first, from_address(two, ATTACKER) as second:
                for client in (first, second, first, second, first):
                    assert (await log_in(client, password=WRONG)).status_code == 401
                assert_throttled(await log_in(second), window=900)
                assert_throttled(await log_in(first), window=900)
