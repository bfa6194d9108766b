"""Resilience on every outgoing call: a deadline, bounded retries, a circuit breaker and a bulkhead.

One `DownstreamPolicy` per downstream per caller bundles them, built from `ResilienceSettings`:

- **Deadline**: `timeout_seconds` bounds the whole call, retries and backoff included
  (`asyncio.timeout`); each HTTP attempt also carries httpx connect/read timeouts (`httpx_timeout()`).
  An expired deadline raises `DownstreamTimeout` (504, type `upstream-timeout`).
- **Retries** (tenacity): only for idempotent requests (GET, HEAD, OPTIONS, or any request carrying
  an `Idempotency-Key`), only after a connection error, a timeout of the attempt, or a 502/503/504
  answer; at most `retries` more attempts, exponential backoff with full jitter, never past the
  deadline and never once the breaker is open.
- **Circuit breaker**: opens after `breaker_failure_threshold` *consecutive* failures (a failure is a
  connection error, a timeout or a 5xx answer; a 4xx is the downstream working). While open, calls fail
  fast with `CircuitOpen` (503 with `Retry-After`) without touching the downstream. After
  `breaker_reset_seconds` it is half-open: up to `breaker_half_open_calls` trial calls go through;
  the first trial that succeeds closes it, one that fails re-opens it for another reset period.
  Outcomes of calls admitted before the last state change are ignored.
- **Bulkhead**: at most `bulkhead_max_concurrent` attempts in flight; up to `bulkhead_max_waiting`
  more wait for a slot for at most `bulkhead_queue_timeout_seconds`; anything beyond is rejected at
  once with `BulkheadFull` (503).

State lives in plain attributes changed without awaiting in between, so a policy is safe for any number
of tasks of one event loop (it is not meant to be shared across threads or loops).

Metrics (labels `caller`, `downstream`): `amazonlite_downstream_breaker_state` (0 closed,
1 half-open, 2 open), `amazonlite_downstream_rejected_total` (`reason` breaker|bulkhead),
`amazonlite_downstream_retries_total`, `amazonlite_downstream_attempt_seconds` (per attempt that
reached the downstream, `outcome` success|failure|cancelled).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import TracebackType
from typing import Any, TypeVar

import httpx
import structlog
from prometheus_client import Counter, Gauge, Histogram
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    stop_any,
    stop_before_delay,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from amazonlite.platform.errors import AppError, ServiceUnavailable

log = structlog.get_logger("amazonlite.resilience")

R = TypeVar("R")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
IDEMPOTENCY_KEY_HEADER = "idempotency-key"
RETRYABLE_STATUSES = frozenset({502, 503, 504})

BREAKER_STATE = Gauge("amazonlite_downstream_breaker_state",
                      "Circuit breaker state per downstream: 0 closed, 1 half-open, 2 open",
                      ["caller", "downstream"])
REJECTED = Counter("amazonlite_downstream_rejected_total",
                   "Calls refused without reaching the downstream (open breaker, full bulkhead)",
                   ["caller", "downstream", "reason"])
RETRIES = Counter("amazonlite_downstream_retries_total", "Attempts repeated after a transient failure",
                  ["caller", "downstream"])
ATTEMPT_SECONDS = Histogram("amazonlite_downstream_attempt_seconds", "Time of one attempt at a downstream",
                            ["caller", "downstream", "outcome"],
                            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


class ResilienceSettings(BaseSettings):
    """Per-downstream resilience settings (`AMAZONLITE_RESILIENCE_*`); defaults suit a shop's calls."""

    model_config = SettingsConfigDict(env_prefix="AMAZONLITE_RESILIENCE_", extra="ignore", frozen=True)

    # The whole call, retries and backoff included.
    timeout_seconds: float = Field(default=5.0, gt=0)
    connect_timeout_seconds: float = Field(default=1.0, gt=0)
    retries: int = Field(default=2, ge=0)
    backoff_initial_seconds: float = Field(default=0.1, ge=0)
    backoff_max_seconds: float = Field(default=1.0, ge=0)
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_reset_seconds: float = Field(default=10.0, gt=0)
    breaker_half_open_calls: int = Field(default=1, ge=1)
    bulkhead_max_concurrent: int = Field(default=50, ge=1)
    bulkhead_max_waiting: int = Field(default=100, ge=0)
    bulkhead_queue_timeout_seconds: float = Field(default=1.0, ge=0)


# Errors -------------------------------------------------------------------------------------

class CircuitOpen(ServiceUnavailable):
    """The downstream failed repeatedly; calls to it are refused until its breaker lets a trial through."""

    type = "circuit-open"

    def __init__(self, downstream: str, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(f"The {downstream} service is unavailable after repeated failures; "
                         f"try again in {seconds} s", headers={"Retry-After": str(seconds)})
        self.downstream = downstream
        self.retry_after = seconds


class BulkheadFull(ServiceUnavailable):
    """Too many calls to the downstream are already in flight or waiting."""

    type = "service-busy"

    def __init__(self, downstream: str) -> None:
        super().__init__(f"The {downstream} service is busy; try again shortly", headers={"Retry-After": "1"})
        self.downstream = downstream


class DownstreamUnavailable(ServiceUnavailable):
    """The downstream could not be reached (connection refused, reset or not made in time)."""

    type = "service-unreachable"

    def __init__(self, downstream: str) -> None:
        super().__init__(f"The {downstream} service cannot be reached")
        self.downstream = downstream


class DownstreamTimeout(AppError):
    status = 504
    type = "upstream-timeout"
    title = "A service took too long to answer"

    def __init__(self, downstream: str, seconds: float) -> None:
        super().__init__(f"The {downstream} service did not answer within {seconds:g} s")
        self.downstream = downstream


class DownstreamFailed(AppError):
    status = 502
    type = "bad-gateway"
    title = "A service gave an answer that could not be read"

    def __init__(self, downstream: str) -> None:
        super().__init__(f"The {downstream} service broke off its answer")
        self.downstream = downstream


# What the errors of a call look like to an endpoint's OpenAPI `responses=problem_responses(...)`.
DOWNSTREAM_ERRORS: tuple[type[AppError], ...] = (ServiceUnavailable, DownstreamTimeout, DownstreamFailed)


def downstream_error(downstream: str, exc: BaseException, *, timeout: float) -> AppError | None:
    """The `AppError` a caller sees for a transport failure `exc` (None: not a transport failure)."""
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError):
        return DownstreamUnavailable(downstream)
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return DownstreamTimeout(downstream, timeout)
    if isinstance(exc, httpx.TransportError | ConnectionError):
        return DownstreamFailed(downstream)
    return None


class NetworkTransport(httpx.AsyncHTTPTransport):
    """httpx's transport for calls over the network, with one library fault turned into what it
    is. A peer that resets a connection while it is being opened can make anyio (4.16) fail with
    `AttributeError: 'NoneType' object has no attribute 'getpeername'` inside httpcore's connect;
    escaping as a bug, it was a 500 from the gateway instead of the 503 of a refused connection."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except AttributeError as exc:
            if "getpeername" not in str(exc):
                raise
            raise httpx.ConnectError(f"the connection was reset while it opened ({exc})", request=request) from exc


# Classification -----------------------------------------------------------------------------

def is_idempotent(method: str, headers: Mapping[str, str] | Iterable[tuple[bytes, bytes]] | None = None) -> bool:
    """Safe to repeat: GET, HEAD, OPTIONS, or a request carrying an `Idempotency-Key` header.

    `headers` is a mapping (`dict`, `httpx.Headers`) or raw ASGI header pairs.
    """
    if method.upper() in IDEMPOTENT_METHODS:
        return True
    if headers is None:
        return False
    if isinstance(headers, Mapping):
        return any(str(name).lower() == IDEMPOTENCY_KEY_HEADER for name in headers)
    wanted = IDEMPOTENCY_KEY_HEADER.encode()
    return any(name.lower() == wanted for name, _ in headers)


def is_retryable_error(exc: BaseException) -> bool:
    """A transient transport failure of one attempt: worth repeating an idempotent request."""
    return isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


def is_failure_status(status: int) -> bool:
    return status >= 500


# Circuit breaker ----------------------------------------------------------------------------

class BreakerState(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass(frozen=True, slots=True)
class Ticket:
    """An admission by the breaker; hand it back with the call's outcome."""

    generation: int
    trial: bool


class CircuitBreaker:
    """Closed → open after `failure_threshold` consecutive failures → half-open after `reset_timeout`
    (up to `half_open_max_calls` trials in flight) → closed on a trial's success, open on its failure."""

    def __init__(self, name: str, *, failure_threshold: int = 5, reset_timeout: float = 10.0,
                 half_open_max_calls: int = 1, clock: Callable[[], float] = time.monotonic,
                 on_state_change: Callable[[BreakerState], None] | None = None) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.half_open_max_calls = half_open_max_calls
        self._clock = clock
        self._on_state_change = on_state_change
        self._state = BreakerState.CLOSED
        self._generation = 0
        self._failures = 0
        self._opened_at = 0.0
        self._trials = 0

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_timeout:
            self._become(BreakerState.HALF_OPEN)
        return self._state

    @property
    def retry_after(self) -> float:
        """Seconds until the breaker lets a trial call through (0 when it would admit one now)."""
        state = self.state
        if state is BreakerState.OPEN:
            return self.reset_timeout - (self._clock() - self._opened_at)
        if state is BreakerState.HALF_OPEN and self._trials >= self.half_open_max_calls:
            return 1.0
        return 0.0

    def admit(self) -> Ticket:
        """Let a call through, or raise `CircuitOpen` (open, or half-open with every trial slot taken)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return Ticket(self._generation, trial=False)
        if state is BreakerState.HALF_OPEN and self._trials < self.half_open_max_calls:
            self._trials += 1
            return Ticket(self._generation, trial=True)
        raise CircuitOpen(self.name, self.retry_after)

    def record(self, ticket: Ticket, ok: bool | None) -> None:
        """The outcome of an admitted call: True success, False failure, None neither (never reached
        the downstream, or the caller gave up)."""
        current = ticket.generation == self._generation
        if ticket.trial and current:
            self._trials -= 1
        if not current or ok is None:
            return
        if self._state is BreakerState.HALF_OPEN:
            self._become(BreakerState.CLOSED if ok else BreakerState.OPEN)
        elif ok:
            self._failures = 0
        else:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._become(BreakerState.OPEN)

    def _become(self, state: BreakerState) -> None:
        previous = self._state
        self._state = state
        self._generation += 1
        self._failures = 0
        self._trials = 0
        if state is BreakerState.OPEN:
            self._opened_at = self._clock()
        log_method = log.warning if state is BreakerState.OPEN else log.info
        log_method("resilience.breaker_changed", downstream=self.name, state=state.name.lower(),
                   previous=previous.name.lower())
        if self._on_state_change is not None:
            self._on_state_change(state)


# Bulkhead -----------------------------------------------------------------------------------

class Bulkhead:
    """At most `max_concurrent` holders; at most `max_waiting` waiters, each for `queue_timeout` s.

    `async with bulkhead:` holds a slot, or raises `BulkheadFull` without waiting when the queue is full.
    A freed slot goes to the longest waiter (first come, first served).
    """

    def __init__(self, name: str, *, max_concurrent: int = 50, max_waiting: int = 100,
                 queue_timeout: float = 1.0) -> None:
        self.name = name
        self.max_concurrent = max_concurrent
        self.max_waiting = max_waiting
        self.queue_timeout = queue_timeout
        self._active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def in_flight(self) -> int:
        return self._active

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> None:
        if self._active < self.max_concurrent and not self._waiters:
            self._active += 1
            return
        if len(self._waiters) >= self.max_waiting:
            raise BulkheadFull(self.name)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.queue_timeout):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self.release()  # a slot was handed over just as we gave up: pass it on
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise BulkheadFull(self.name) from exc
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to the waiter; `_active` is unchanged
                return
        self._active -= 1

    async def __aenter__(self) -> Bulkhead:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()


# The policy ---------------------------------------------------------------------------------

def _status_code(response: Any) -> int:
    return int(response.status_code)


def _last_outcome(state: RetryCallState) -> Any:
    assert state.outcome is not None
    return state.outcome.result()  # the last answer, or the last error raised again


class _StopWhenOpen(stop_base):
    """No retry once the breaker is open: the last answer or error goes back to the caller."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._breaker.state is BreakerState.OPEN


class Attempt:
    """One guarded attempt: admitted by the breaker, holding a bulkhead slot, timed, and judged on exit.

    Inside the block, call the downstream and `record_status(status)` once an answer arrives. On exit:
    no exception → success unless the status was 5xx; a cancellation → a failure if `deadline` expired,
    else no outcome; an `AppError` under 500 → success (the downstream answered); anything else → failure.
    """

    def __init__(self, policy: DownstreamPolicy, deadline: asyncio.Timeout | None) -> None:
        self._policy = policy
        self._deadline = deadline
        self._ticket: Ticket | None = None
        self._started = 0.0
        self.status: int | None = None

    def record_status(self, status: int) -> None:
        self.status = status

    async def __aenter__(self) -> Attempt:
        policy = self._policy
        try:
            ticket = policy.breaker.admit()
        except CircuitOpen:
            REJECTED.labels(policy.caller, policy.name, "breaker").inc()
            raise
        try:
            await policy.bulkhead.acquire()
        except BaseException as exc:
            policy.breaker.record(ticket, None)
            if isinstance(exc, BulkheadFull):
                REJECTED.labels(policy.caller, policy.name, "bulkhead").inc()
            raise
        self._ticket = ticket
        self._started = time.perf_counter()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        policy = self._policy
        policy.bulkhead.release()
        ok = self._judge(exc)
        outcome = "cancelled" if ok is None else "success" if ok else "failure"
        ATTEMPT_SECONDS.labels(policy.caller, policy.name, outcome).observe(time.perf_counter() - self._started)
        assert self._ticket is not None
        policy.breaker.record(self._ticket, ok)

    def _judge(self, exc: BaseException | None) -> bool | None:
        if exc is None:
            return self.status is None or not is_failure_status(self.status)
        if isinstance(exc, asyncio.CancelledError):
            return False if self._deadline is not None and self._deadline.expired() else None
        if isinstance(exc, AppError):
            return not is_failure_status(exc.status)
        return False


class DownstreamPolicy:
    """Deadline, retries, circuit breaker and bulkhead for one downstream, as seen by one caller.

    Keep one per downstream for the life of the process (the breaker and bulkhead are its state):
    `ServiceDirectory` does this for service clients; the gateway keeps one per upstream.
    """

    def __init__(self, name: str, settings: ResilienceSettings | None = None, *, caller: str = "unknown",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.caller = caller
        self.settings = s = settings if settings is not None else ResilienceSettings()
        gauge = BREAKER_STATE.labels(caller, name)
        gauge.set(BreakerState.CLOSED)
        self.breaker = CircuitBreaker(name, failure_threshold=s.breaker_failure_threshold,
                                      reset_timeout=s.breaker_reset_seconds,
                                      half_open_max_calls=s.breaker_half_open_calls, clock=clock,
                                      on_state_change=gauge.set)
        self.bulkhead = Bulkhead(name, max_concurrent=s.bulkhead_max_concurrent,
                                 max_waiting=s.bulkhead_max_waiting,
                                 queue_timeout=s.bulkhead_queue_timeout_seconds)

    def httpx_timeout(self) -> httpx.Timeout:
        """Per-attempt httpx timeouts matching the settings (the deadline bounds the whole call)."""
        return httpx.Timeout(self.settings.timeout_seconds, connect=self.settings.connect_timeout_seconds)

    def httpx_limits(self) -> httpx.Limits:
        """A connection pool as large as the bulkhead, so the pool never queues behind it."""
        return httpx.Limits(max_connections=self.settings.bulkhead_max_concurrent,
                            max_keepalive_connections=min(self.settings.bulkhead_max_concurrent, 20))

    def attempt(self, *, deadline: asyncio.Timeout | None = None) -> Attempt:
        """One guarded attempt, without retries or deadline of its own: `async with policy.attempt() as a:`.

        For callers that cannot replay a call (a streamed answer); `call` is built on it.
        """
        return Attempt(self, deadline)

    async def call(self, send: Callable[[], Awaitable[R]], *, idempotent: bool,
                   status: Callable[[R], int] = _status_code,
                   discard: Callable[[R], Awaitable[None]] | None = None,
                   deadline_seconds: float | None = None) -> R:
        """Run `send()` (one attempt: returns an answer with a status, or raises) under the policy.

        Returns the last answer, whatever its status (a 5xx after the retries ran out included).
        Raises `CircuitOpen` or `BulkheadFull` (503) when refused, `DownstreamTimeout` (504) past the
        deadline, `DownstreamUnavailable` (503) when the downstream cannot be reached, and
        `DownstreamFailed` (502) when its answer broke off. `discard` closes an answer that is dropped
        for a retry (a streamed httpx response); `deadline_seconds` overrides the settings' deadline.
        """
        s = self.settings
        budget = s.timeout_seconds if deadline_seconds is None else deadline_seconds

        async def attempt(deadline: asyncio.Timeout) -> R:
            async with self.attempt(deadline=deadline) as guard:
                answer = await send()
                guard.record_status(status(answer))
                return answer

        async def before_retry(state: RetryCallState) -> None:
            RETRIES.labels(self.caller, self.name).inc()
            outcome = state.outcome
            assert outcome is not None
            if outcome.failed:
                reason = repr(outcome.exception())
            else:
                answer = outcome.result()
                reason = f"HTTP {status(answer)}"
                if discard is not None:
                    await discard(answer)
            log.info("resilience.retrying", downstream=self.name, attempt=state.attempt_number, reason=reason,
                     sleep_ms=round((state.upcoming_sleep or 0) * 1000))

        retrying = AsyncRetrying(
            stop=stop_any(stop_after_attempt(1 + (s.retries if idempotent else 0)), stop_before_delay(budget),
                          _StopWhenOpen(self.breaker)),
            wait=wait_random_exponential(multiplier=s.backoff_initial_seconds, max=s.backoff_max_seconds),
            retry=retry_if_exception(is_retryable_error) | retry_if_result(lambda r: status(r) in RETRYABLE_STATUSES),
            before_sleep=before_retry,
            retry_error_callback=_last_outcome,
            sleep=asyncio.sleep,
        )
        try:
            async with asyncio.timeout(budget) as deadline:
                answer: R = await retrying(attempt, deadline)
                return answer
        except (TimeoutError, httpx.TransportError) as exc:
            error = downstream_error(self.name, exc, timeout=budget)
            assert error is not None
            # One line per failed call, at info: the outage itself is a warning once, when the breaker opens.
            log.info("resilience.call_failed", downstream=self.name, error=repr(exc), problem=error.type)
            raise error from exc
