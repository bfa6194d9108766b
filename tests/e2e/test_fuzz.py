"""Property-based fuzzing of the merged OpenAPI document: no input may cause a 5xx.

Every operation of the gateway's `/openapi.json` is fed schemathesis-generated requests, both
valid ones and ones that break the schema, against a running embedded platform.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.e2e import platforms

pytestmark = [pytest.mark.xdist_group("fuzz")]

EXAMPLES_PER_OPERATION = 25


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


def _fuzz(operation: Any, mode: GenerationMode, base_url: str, headers: dict[str, str]) -> Callable[[], None]:
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=[not_a_server_error])

    return fuzz  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_causes_a_server_error(fuzzed_platform: platforms.Platform, admin_headers: dict[str, str],
                                        mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed_platform.base_url}/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, "the merged document lost operations"
    for operation in operations:
        # Signed in as an admin so that write endpoints are exercised past authorization; logout
        # would revoke that token for the rest of the run, so it is fuzzed anonymously.
        headers = {} if operation.path.endswith("/logout") else admin_headers
        try:
            _fuzz(operation, mode, fuzzed_platform.base_url, headers)()
        except Unsatisfiable:
            # An operation without parameters or body has no invalid input to generate.
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{operation.label}: {exc}")
    assert failures == [], "\n\n".join(failures)
