"""Resilience of the gateway's calls to a service, black-box, in the distributed topology (the one
where those calls cross the network): a proxy the test controls stands between the gateway and the
catalog service (tests/support/fault_proxy.py) and makes catalog slow, broken or gone.

What a user notices: a slow or failing catalog costs its own callers a quick problem answer, never
the other routes (auth answers while catalog calls hang); once catalog has failed a few times in a
row the gateway stops calling it and answers 503 at once (the proxy sees no request); when catalog
is back, calls succeed again after the breaker's reset time. Reads are retried a bounded number of
times, writes only when they carry an `Idempotency-Key`; at most a few catalog calls are in flight
at once, the next is refused rather than queued.

Every read of catalog here is an admin's: the gateway's response cache serves public catalog reads
(anonymous and customer) from memory, which would hide a catalog that is down; admins' reads
always go to the service.
"""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e import platforms
from tests.e2e.actors import Actor, assert_ok, assert_problem, eventually, problem_type, sign_in
from tests.support.fault_proxy import FaultProxy

pytestmark = [pytest.mark.xdist_group("e2e"), pytest.mark.distributed]

# The gateway's resilience settings for this platform: short, so the test is quick, and small
# numbers so that every count below is exact.
DEADLINE_SECONDS = 8  # generous: the other routes must answer well within it, even on a loaded machine
RETRIES = 2
FAILURE_THRESHOLD = 5
RESET_SECONDS = 8  # generous: the open breaker is checked well within it, even on a loaded machine
MAX_CONCURRENT = 2
GATEWAY_ENV = {
    "AMAZONLITE_GATEWAY_UPSTREAM_TIMEOUT_SECONDS": str(DEADLINE_SECONDS),
    "AMAZONLITE_GATEWAY_UPSTREAM_MAX_CONCURRENT": str(MAX_CONCURRENT),
    "AMAZONLITE_GATEWAY_UPSTREAM_MAX_WAITING": "0",
    "AMAZONLITE_RESILIENCE_RETRIES": str(RETRIES),
    "AMAZONLITE_RESILIENCE_BREAKER_FAILURE_THRESHOLD": str(FAILURE_THRESHOLD),
    "AMAZONLITE_RESILIENCE_BREAKER_RESET_SECONDS": str(RESET_SECONDS),
}


@dataclass
class Rig:
    api: httpx.Client
    proxy: FaultProxy  # between the gateway and catalog
    admin: Actor

    def products(self) -> httpx.Response:
        return self.api.get("/products", headers=self.admin.auth)

    def new_category(self, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.api.post("/categories", json={"name": f"Resilience {uuid.uuid4().hex[:8]}"},
                             headers={**self.admin.auth, **(headers or {})})

    def me(self) -> httpx.Response:
        return self.api.get("/auth/me", headers=self.admin.auth)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    workdir: Path = tmp_path_factory.mktemp("platform-resilience")
    proxy = FaultProxy()
    catalog_via_proxy = {"catalog": proxy.forward_to}
    with proxy.running(), \
            platforms.distributed(workdir, gateway_env=GATEWAY_ENV, upstream_via=catalog_via_proxy) as running, \
            httpx.Client(base_url=f"{running.base_url}/api/v1", timeout=60) as api:
        yield Rig(api, proxy, sign_in(api, platforms.ADMIN_EMAIL, platforms.ADMIN_PASSWORD, "default"))


@pytest.fixture(autouse=True)
def healthy_catalog(rig: Rig) -> None:
    """Each test starts with catalog reachable and its breaker closed with no failures counted (a
    success resets the count; after an earlier test's open breaker, the first success comes once
    its reset time is over)."""
    rig.proxy.pass_through()
    eventually(lambda: rig.products().status_code == 200, timeout=60, what="catalog answering through the gateway")


def assert_broken_off(response: httpx.Response) -> None:
    """A reset connection: 502 when it broke off an exchange, 503 when the connection was never made
    (on loopback the reset may come before the caller sees its connection established)."""
    assert response.status_code in (502, 503), response.text
    assert_problem(response, response.status_code)


class TestSlowCatalog:
    def test_its_callers_get_a_timeout_a_full_bulkhead_refuses_and_other_routes_answer(self, rig: Rig) -> None:
        rig.proxy.delay(120)  # far past the gateway's deadline
        with concurrent.futures.ThreadPoolExecutor(MAX_CONCURRENT) as pool:
            hanging = [pool.submit(rig.products) for _ in range(MAX_CONCURRENT)]
            eventually(lambda: rig.proxy.held == MAX_CONCURRENT, what="the slow calls to reach catalog")
            seen = rig.proxy.connections

            # Catalog holds as many calls as the gateway allows: the next is refused at once...
            busy = assert_problem(rig.products(), 503)
            assert problem_type(busy) == "service-busy", busy
            assert rig.proxy.connections == seen  # ...without being sent
            # ...and the other routes answer while the catalog calls still hang.
            assert_ok(rig.me())
            assert not any(call.done() for call in hanging), "the slow calls ended before the other routes answered"

            for call in hanging:
                problem = assert_problem(call.result(), 504)
                assert problem_type(problem) == "upstream-timeout"
        assert rig.proxy.connections == seen  # a timed-out read is not tried again past its deadline


class TestRetries:
    def test_a_read_is_retried_a_bounded_number_of_times_and_a_plain_write_is_not(self, rig: Rig) -> None:
        rig.proxy.reset()
        before = rig.proxy.connections
        assert_broken_off(rig.products())
        assert rig.proxy.connections - before == 1 + RETRIES

        before = rig.proxy.connections
        assert_broken_off(rig.new_category())
        assert rig.proxy.connections - before == 1  # not safe to repeat: one attempt only

    def test_a_write_with_an_idempotency_key_is_retried(self, rig: Rig) -> None:
        rig.proxy.reset()
        before = rig.proxy.connections
        assert_broken_off(rig.new_category({"Idempotency-Key": uuid.uuid4().hex}))
        assert rig.proxy.connections - before == 1 + RETRIES


class TestCircuitBreaker:
    def test_opens_after_repeated_failures_answers_503_without_calling_and_closes_when_catalog_returns(
            self, rig: Rig) -> None:
        rig.proxy.fail(500)  # answered by the proxy: a 500 is not retried, so one request is one call
        before = rig.proxy.connections
        for _ in range(FAILURE_THRESHOLD):
            assert rig.products().status_code == 500
        assert rig.proxy.connections - before == FAILURE_THRESHOLD

        # Open: refused at once, catalog is not called.
        for _ in range(3):
            response = rig.products()
            refused = assert_problem(response, 503)
            assert problem_type(refused) == "circuit-open" and int(response.headers["retry-after"]) >= 1, refused
        assert rig.proxy.connections - before == FAILURE_THRESHOLD
        assert_ok(rig.me())  # the other routes are untouched

        # Back: after the reset time a trial call goes through, succeeds and closes the breaker.
        rig.proxy.pass_through()
        eventually(lambda: rig.products().status_code == 200, timeout=60, what="the breaker to close")
        assert rig.proxy.connections > before + FAILURE_THRESHOLD
        assert_ok(rig.products())


class TestCatalogDown:
    def test_its_callers_get_503_and_other_routes_answer(self, rig: Rig) -> None:
        rig.proxy.refuse()
        down = assert_problem(rig.products(), 503)
        assert problem_type(down) == "service-unreachable", down
        assert_ok(rig.me())
