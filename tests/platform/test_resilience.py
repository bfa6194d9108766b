"""Resilience of service-to-service calls against a real downstream: a Starlette app served by a real
uvicorn server (and once over ASGI), whose behaviour each test switches: healthy, slow, failing,
flaky, or not listening at all. The downstream counts the requests that reach it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from amazonlite.platform.clients import ServiceClient, ServiceDirectory
from amazonlite.platform.errors import AppError, ServiceUnavailable, Unauthorized
from amazonlite.platform.http import install_problem_handlers, new_app
from amazonlite.platform.resilience import (
    BreakerState,
    Bulkhead,
    BulkheadFull,
    CircuitOpen,
    DownstreamTimeout,
    DownstreamUnavailable,
    ResilienceSettings,
)
from amazonlite.platform.security import INTERNAL_TOKEN_HEADER, InternalTokens, Principal
from tests.platform.helpers import eventually
from tests.support.servers import free_port, uvicorn_in_thread

TARGET = "inventory"
TOKENS = InternalTokens("resilience-tests-secret-" + "x" * 32)
PRINCIPAL = Principal(tenant_id="default")
# Fast backoff so retries cost milliseconds; everything else is set per test.
FAST = {"backoff_initial_seconds": 0.01, "backoff_max_seconds": 0.05}


@dataclass
class Downstream:
    """What the downstream does with the next requests, and how many reached it."""

    status: int = 200
    delay: float = 0.0
    fail_next: int = 0
    fail_status: int = 503
    hits: int = 0
    in_flight: int = 0

    async def handle(self, request: Request) -> JSONResponse:
        self.hits += 1
        if not _carries_a_token_for_us(request):
            return JSONResponse({"detail": "no internal token"}, status_code=401)
        self.in_flight += 1
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if self.fail_next > 0:
            self.fail_next -= 1
            return JSONResponse({"detail": "transient"}, status_code=self.fail_status)
        return JSONResponse({"method": request.method, "path": request.url.path}, status_code=self.status)

    def app(self) -> Starlette:
        return _app(self.handle)


def _app(endpoint: Callable[[Request], Awaitable[JSONResponse]]) -> Starlette:
    methods = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])


def _carries_a_token_for_us(request: Request) -> bool:
    for audience in (TARGET, "catalog"):
        try:
            TOKENS.verify(request.headers.get(INTERNAL_TOKEN_HEADER, ""), audience=audience)
        except Unauthorized:
            continue
        return True
    return False


@dataclass
class Switch:
    """The downstream the server answers as now: each test gets a fresh one, so requests a previous
    test left sleeping count against that test's downstream, not this one's."""

    current: Downstream


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Switch, str]]:
    """The downstream behind a real uvicorn server on a free port, in a thread with its own loop."""
    switch = Switch(Downstream())

    async def endpoint(request: Request) -> JSONResponse:
        return await switch.current.handle(request)

    with uvicorn_in_thread(_app(endpoint), log_level="warning") as port:
        yield switch, f"http://127.0.0.1:{port}"


@pytest.fixture
def downstream(served: tuple[Switch, str]) -> Downstream:
    served[0].current = Downstream()
    return served[0].current


@pytest.fixture
def url(served: tuple[Switch, str]) -> str:
    return served[1]


@pytest.fixture
def caller() -> str:
    """A caller name of this test alone, so its metrics start from zero."""
    return f"caller-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def make_client(caller: str) -> AsyncIterator[Callable[..., ServiceClient]]:
    clients: list[ServiceClient] = []

    def make(base_url: str, **settings: Any) -> ServiceClient:
        client = ServiceClient(TARGET, caller=caller, tokens=TOKENS, base_url=base_url,
                               resilience=ResilienceSettings(**{**FAST, **settings}))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def metric(name: str, caller: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"caller": caller, "downstream": TARGET, **labels}) or 0.0


async def get(client: ServiceClient, path: str = "/api/v1/stock") -> httpx.Response:
    return await client.request("GET", path, principal=PRINCIPAL)


async def timed(call: Any) -> tuple[float, Any]:
    """(seconds taken, the answer or the error raised)."""
    started = time.perf_counter()
    try:
        outcome = await call
    except AppError as exc:
        outcome = exc
    return time.perf_counter() - started, outcome


class TestDeadline:
    async def test_a_slow_downstream_times_out_within_the_deadline_then_trips_the_breaker(
            self, downstream: Downstream, url: str, make_client: Callable[..., ServiceClient], caller: str) -> None:
        downstream.delay = 5.0
        client = make_client(url, timeout_seconds=0.5, retries=2, breaker_failure_threshold=3)
        for _ in range(3):
            elapsed, outcome = await timed(get(client))
            assert isinstance(outcome, DownstreamTimeout)
            assert 0.4 < elapsed < 2.0  # about the deadline, never the downstream's 5 s
        # The deadline covers the retries: a timed-out attempt used the whole budget, so none was made.
        assert downstream.hits == 3
        problem = outcome.problem()
        assert (problem["status"], problem["type"]) == (504, "https://amazonlite.dev/problems/upstream-timeout")
        assert TARGET in problem["detail"]

        elapsed, refused = await timed(get(client))
        assert isinstance(refused, CircuitOpen)
        assert elapsed < 0.25
        assert downstream.hits == 3
        assert client.policy.breaker.state is BreakerState.OPEN
        assert metric("amazonlite_downstream_attempt_seconds_count", caller, outcome="failure") == 3


class TestCircuitBreaker:
    async def test_repeated_5xx_open_it_and_calls_then_fail_fast_without_reaching_the_downstream(
            self, downstream: Downstream, url: str, make_client: Callable[..., ServiceClient], caller: str) -> None:
        downstream.status = 500
        client = make_client(url, breaker_failure_threshold=3, breaker_reset_seconds=30)
        for _ in range(3):
            assert (await get(client)).status_code == 500
        assert metric("amazonlite_downstream_breaker_state", caller) == BreakerState.OPEN

        for _ in range(2):
            with pytest.raises(CircuitOpen) as refused:
                await get(client)
        assert downstream.hits == 3
        error = refused.value
        assert isinstance(error, ServiceUnavailable) and error.status == 503
        assert error.headers["Retry-After"] in {"29", "30"}
        assert TARGET in error.detail
        assert metric("amazonlite_downstream_rejected_total", caller, reason="breaker") == 2

    async def test_after_the_reset_timeout_a_successful_trial_closes_it(
            self, downstream: Downstream, url: str, make_client: Callable[..., ServiceClient], caller: str) -> None:
        downstream.status = 500
        client = make_client(url, breaker_failure_threshold=2, breaker_reset_seconds=0.3)
        for _ in range(2):
            await get(client)
        with pytest.raises(CircuitOpen):
            await get(client)

        downstream.status = 200
        await asyncio.sleep(0.35)
        assert (await get(client)).status_code == 200
        assert downstream.hits == 3
        assert client.policy.breaker.state is BreakerState.CLOSED
        assert metric("amazonlite_downstream_breaker_state", caller) == BreakerState.CLOSED
        assert [(await get(client)).status_code for _ in range(3)] == [200, 200, 200]

    async def test_after_the_reset_timeout_a_failed_trial_reopens_it(
            self, downstream: Downstream, url: str, make_client: Callable[..., ServiceClient]) -> None:
        downstream.status = 500
        client = make_client(url, breaker_failure_threshold=2, breaker_reset_seconds=0.3)
        for _ in range(2):
            await get(client)
        await asyncio.sleep(0.35)

        assert (await get(client)).status_code == 500  # the trial reached the downstream
        assert downstream.hits == 3
        with pytest.raises(CircuitOpen):
            await get(client)
        assert downstream.hits == 3

    async def test_half_open_lets_only_its_trial_calls_through(
            self, downstream: Downstream, url: str, make_client: Callable[..., ServiceClient]) -> None:
        downstream.status = 503
        client = make_client(url, retries=0, breaker_failure_threshold=1, breaker_reset_seconds=0.2,
                             breaker_half_open_calls=1)
        await get(client)
        await asyncio.sleep(0.25)
        downstream.status, downstream.delay = 200, 0.3

        trial = asyncio.create_task(get(client))
        await eventually(lambda: downstream.in_flight == 1, what="the trial call at the downstream")
        with pytest.raises(CircuitOpen):
            await get(client)
        assert (await trial).status_code == 200
        assert downstream.hits == 2

    async def test_client_errors_do_not_trip_it(
            self, downstream: Downstream, url: str, make_client: Callable[..., ServiceClient]) -> None:
        downstream.status = 404
        client = make_client(url, breaker_failure_threshold=3)
        statuses = [(await get(client)).status_code for _ in range(8)]
        assert statuses == [404] * 8
        assert downstream.hits == 8
        assert client.policy.breaker.state is BreakerState.CLOSED

    async def test_an_unreachable_downstream_trips_it(self, make_client: Callable[..., ServiceClient]) -> None:
        client = make_client(f"http://127.0.0.1:{free_port()}", retries=0, breaker_failure_threshold=2)
        for _ in range(2):
            with pytest.raises(DownstreamUnavailable) as unreachable:
                await get(client)
        assert unreachable.value.status == 503 and TARGET in unreachable.value.detail
        with pytest.raises(CircuitOpen):
            await get(client)


class TestRetries:
    async def test_a_get_is_retried_on_503_and_the_last_answer_comes_back(
            self, downstream: Downstream, url: str, make_client: Callable[..., ServiceClient], caller: str) -> None:
        downstream.status = 503
        client = make_client(url, retries=2)
        assert (await get(client)).status_code == 503
        assert downstream.hits == 1 + 2
        assert metric("amazonlite_downstream_retries_total", caller) == 2

    async def test_a_get_succeeds_when_the_downstream_recovers(
            self, downstream: Downstream, url: str, make_client: Callable[..., ServiceClient]) -> None:
        downstream.fail_next, downstream.fail_status = 1, 502
        client = make_client(url, retries=2)
        response = await get(client)
        assert response.status_code == 200
        assert response.json() == {"method": "GET", "path": "/api/v1/stock"}
        assert downstream.hits == 2

    async def test_a_post_without_an_idempotency_key_is_never_retried(
            self, downstream: Downstream, url: str, make_client: Callable[..., ServiceClient], caller: str) -> None:
        downstream.status = 503
        client = make_client(url, retries=2)
        response = await client.request("POST", "/api/v1/reservations", principal=PRINCIPAL, json={"sku": "A-1"})
        assert response.status_code == 503
        assert downstream.hits == 1
        assert metric("amazonlite_downstream_retries_total", caller) == 0

    async def test_a_post_with_an_idempotency_key_is_retried(
            self, downstream: Downstream, url: str, make_client: Callable[..., ServiceClient]) -> None:
        downstream.fail_next, downstream.fail_status = 2, 503
        client = make_client(url, retries=2)
        response = await client.request("POST", "/api/v1/reservations", principal=PRINCIPAL, json={"sku": "A-1"},
                                        headers={"Idempotency-Key": "order-42"})
        assert response.status_code == 200
        assert downstream.hits == 3

    async def test_a_500_is_not_retried(
            self, downstream: Downstream, url: str, make_client: Callable[..., ServiceClient]) -> None:
        downstream.status = 500
        client = make_client(url, retries=2)
        assert (await get(client)).status_code == 500
        assert downstream.hits == 1

    async def test_connection_errors_are_retried(
            self, make_client: Callable[..., ServiceClient], caller: str) -> None:
        client = make_client(f"http://127.0.0.1:{free_port()}", retries=2)
        with pytest.raises(DownstreamUnavailable):
            await get(client)
        assert metric("amazonlite_downstream_retries_total", caller) == 2

    async def test_retries_stop_once_the_breaker_opens(
            self, downstream: Downstream, url: str, make_client: Callable[..., ServiceClient]) -> None:
        downstream.status = 503
        client = make_client(url, retries=5, breaker_failure_threshold=2)
        assert (await get(client)).status_code == 503
        assert downstream.hits == 2
        assert client.policy.breaker.state is BreakerState.OPEN


class TestBulkhead:
    async def test_a_call_beyond_the_limit_is_rejected_at_once(
            self, downstream: Downstream, url: str, make_client: Callable[..., ServiceClient], caller: str) -> None:
        downstream.delay = 0.5
        client = make_client(url, timeout_seconds=5, bulkhead_max_concurrent=2, bulkhead_max_waiting=0)
        running = [asyncio.create_task(get(client)) for _ in range(2)]
        await eventually(lambda: downstream.in_flight == 2, what="two calls at the downstream")

        elapsed, outcome = await timed(get(client))
        assert isinstance(outcome, BulkheadFull)
        assert outcome.status == 503 and TARGET in outcome.detail
        assert elapsed < 0.25
        assert [r.status_code for r in await asyncio.gather(*running)] == [200, 200]
        assert downstream.hits == 2
        assert metric("amazonlite_downstream_rejected_total", caller, reason="bulkhead") == 1
        # The slots are free again.
        assert (await get(client)).status_code == 200

    async def test_a_waiting_call_takes_a_freed_slot_and_one_beyond_the_queue_is_refused(
            self, downstream: Downstream, url: str, make_client: Callable[..., ServiceClient]) -> None:
        downstream.delay = 0.3
        client = make_client(url, bulkhead_max_concurrent=1, bulkhead_max_waiting=1,
                             bulkhead_queue_timeout_seconds=2)
        first = asyncio.create_task(get(client))
        await eventually(lambda: downstream.in_flight == 1, what="the first call at the downstream")
        queued = asyncio.create_task(get(client))
        await eventually(lambda: client.policy.bulkhead.waiting == 1, what="a call waiting for a slot")
        with pytest.raises(BulkheadFull):
            await get(client)
        assert [(await first).status_code, (await queued).status_code] == [200, 200]
        assert downstream.hits == 2

    async def test_a_waiter_gives_up_after_the_queue_timeout(self) -> None:
        bulkhead = Bulkhead(TARGET, max_concurrent=1, max_waiting=5, queue_timeout=0.1)
        await bulkhead.acquire()
        elapsed, outcome = await timed(bulkhead.acquire())
        assert isinstance(outcome, BulkheadFull)
        assert 0.05 < elapsed < 1.0
        assert bulkhead.waiting == 0
        bulkhead.release()
        async with bulkhead:
            assert bulkhead.in_flight == 1
        assert bulkhead.in_flight == 0


class TestEmbedded:
    async def test_over_asgi_the_deadline_and_the_breaker_hold(self, caller: str) -> None:
        downstream = Downstream(delay=5.0)
        directory = ServiceDirectory(caller, TOKENS, resilience=ResilienceSettings(
            timeout_seconds=0.3, breaker_failure_threshold=2, **FAST))
        directory.register(TARGET, app=downstream.app())
        client = directory.client(TARGET)
        try:
            # No socket, so no httpx timeout: the deadline alone ends the call.
            elapsed, outcome = await timed(get(client))
            assert isinstance(outcome, DownstreamTimeout)
            assert 0.2 < elapsed < 2.0
            downstream.delay, downstream.status = 0.0, 500
            assert (await get(client)).status_code == 500
            with pytest.raises(CircuitOpen):
                await get(client)
            assert downstream.hits == 2
        finally:
            await directory.aclose()


class TestServiceDirectory:
    async def test_each_target_has_its_own_breaker(self, downstream: Downstream, url: str, caller: str) -> None:
        directory = ServiceDirectory(caller, TOKENS, resilience=ResilienceSettings(breaker_failure_threshold=2,
                                                                                   **FAST))
        directory.register(TARGET, url=url)
        directory.register("catalog", url=url, resilience=ResilienceSettings(breaker_failure_threshold=50, **FAST))
        try:
            assert directory.policy(TARGET) is directory.client(TARGET).policy
            assert directory.policy(TARGET) is not directory.policy("catalog")
            downstream.status = 500
            for _ in range(2):
                await get(directory.client(TARGET))
            with pytest.raises(CircuitOpen):
                await get(directory.client(TARGET))
            # Another downstream's breaker is its own: catalog is still called.
            assert (await directory.client("catalog").request("GET", "/x", principal=PRINCIPAL)).status_code == 500
            assert downstream.hits == 3
        finally:
            await directory.aclose()


class TestProblems:
    async def test_an_endpoint_that_lets_the_errors_propagate_answers_with_problems(
            self, downstream: Downstream, url: str, make_client: Callable[..., ServiceClient]) -> None:
        downstream.delay = 5.0
        client = make_client(url, timeout_seconds=0.3, breaker_failure_threshold=1, breaker_reset_seconds=20)
        app = new_app()
        install_problem_handlers(app)

        @app.get("/stock")
        async def stock() -> Any:
            return (await get(client)).json()

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            timed_out = await http.get("/stock")
            assert timed_out.status_code == 504
            assert timed_out.headers["content-type"] == "application/problem+json"
            assert timed_out.json()["type"].endswith("/upstream-timeout")

            refused = await http.get("/stock")
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] in {"19", "20"}
            body = refused.json()
            assert body["type"].endswith("/circuit-open") and TARGET in body["detail"]
        assert downstream.hits == 1


class TestAConnectionResetWhileOpening:
    async def test_is_the_downstream_being_unavailable_not_a_bug(
            self, make_client: Callable[..., ServiceClient], url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """anyio (4.16) can fail a connect that the peer resets at once with an AttributeError from
        deep inside httpcore (seen from the gateway under the fault proxy's resets): the caller gets
        the 503 of a downstream it cannot reach, as for any refused connection, never a 500."""
        async def reset_while_opening(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
            raise AttributeError("'NoneType' object has no attribute 'getpeername'")

        monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", reset_while_opening)
        client = make_client(url, retries=0)
        with pytest.raises(DownstreamUnavailable):
            await get(client)
