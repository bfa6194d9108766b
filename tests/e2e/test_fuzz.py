"""Property-based fuzzing of the merged OpenAPI document: no input may cause a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.e2e import platforms

pytestmark = [pytest.mark.xdist_group("fuzz")]


@pytest.fixture(scope="module")
def fuzzed_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[platforms.Platform]:
    workdir: Path = tmp_path_factory.mktemp("platform-fuzz")
    with platforms.embedded(workdir) as running:
        yield running


@pytest.fixture(scope="module")
def admin_headers(fuzzed_platform: platforms.Platform) -> dict[str, str]:
    response = httpx.post(f"{fuzzed_platform.base_url}/api/v1/auth/login",
                          json={"email": platforms.ADMIN_EMAIL, "password": platforms.ADMIN_PASSWORD})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def gateway_schema(fuzzed_platform: platforms.Platform) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzzed_platform.base_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("gateway_schema")


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_no_input_causes_a_server_error(case: schemathesis.Case, fuzzed_platform: platforms.Platform,
                                        admin_headers: dict[str, str]) -> None:
    # Signed in as an admin so that write endpoints are exercised past authorization; logout
    # would revoke that token for the rest of the run, so it is fuzzed anonymously.
    headers = {} if case.path.endswith("/logout") else admin_headers
    case.call_and_validate(base_url=fuzzed_platform.base_url, headers=headers, checks=[not_a_server_error])
