"""Chaos, black-box through the gateway, in the distributed topology (a durable broker, a process per
service). While a bounded load of signups, profile reads and catalog writes runs, each scenario
breaks one part of the platform, then ends the fault:

1. the users service (the consumer of user.registered.v1) is killed with SIGKILL, then started again;
2. the gateway is killed, then started again;
3. the broker is killed, then started again on its storage: it keeps its topics and offsets;
4. the users' and the catalog's databases refuse connections for 10 s (a proxy stands between each
   service and its database), then are back;
5. the broker comes back with empty storage, as one whose disk was lost: consumers must resume by
   themselves. Events it held that nobody had consumed are lost with it, by design: so signups pause
   and the load drains first, and everything made from the fault on is asserted.

What a user would notice is asserted after each scenario:
- no request got a 500, or any answer but its success or a problem saying something is down (503,
  504, and 502 where a killed process broke off an exchange); no answer at all only while the
  gateway itself is down;
- every signup's profile exists, exactly once (the users database as an operator reads it: every
  account in auth's, including those whose signup answer was lost, has one profile);
- every catalog change reached the gateway's cache invalidation: the public read after a write shows
  it, the catalog's outbox has published it, and the gateway's consumer group has applied every
  product event the broker holds (its committed offsets, as an operator reads them);
- no event is in a dead letter (every one here is valid and its consumer's faults are transient).

Each scenario prints its recovery times (from the fault's end to the first success of each flow that
started after it, and until every signup's profile exists) and writes them to one JSON file
(`AMAZONLITE_CHAOS_REPORT`, default build/chaos-recovery.json in the repository). The only bound
asserted on them is generous: it proves that the platform recovers by itself.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from amazonlite.gateway.cache import CONSUMER_GROUP as GATEWAY_GROUP
from amazonlite.topology import CATALOG_CACHE
from tests.e2e import platforms
from tests.e2e.actors import (
    PASSWORD,
    Actor,
    assert_ok,
    eventually,
    problem_type,
    sign_in,
    sign_up,
    tenant_header,
)
from tests.e2e.operator import query

pytestmark = [pytest.mark.xdist_group("e2e"), pytest.mark.distributed]

TENANT = platforms.OTHER_TENANT
SIGNUP, PROFILE_READ, CATALOG_WRITE = "signup", "profile read", "catalog write"
PROFILES = "every profile made"  # not a flow: what the users service makes of the signups
# Seconds between two steps of a flow: a few requests a second in all, under the tenant's client
# rate limit (600 a minute from one address) with room for the checks.
INTERVALS = {SIGNUP: 0.5, PROFILE_READ: 0.3, CATALOG_WRITE: 0.6}
LOAD_LIMIT = 600.0  # the load stops by itself after this many seconds, whatever becomes of the test
CLIENT_TIMEOUT = 30.0  # past the gateway's upstream deadline (10 s): a hang, not an outage
RECOVERY_BOUND = 120.0  # "recovers by itself": generous, not a performance target
KILLED_FOR = 3.0  # seconds a killed process stays down before it is started again
DATABASE_DOWN_FOR = 10.0
DOWN = (502, 503, 504)
SIGNUP_EMAIL = "chaos-{}@example.com"
REPORT = Path(os.environ.get("AMAZONLITE_CHAOS_REPORT")
              or Path(__file__).resolve().parents[2] / "build" / "chaos-recovery.json")


# The load ---------------------------------------------------------------------------------------

class Verdict(NamedTuple):
    ok: bool
    answer: str  # "201", "503 service-unreachable", "no answer (ConnectError)"
    unexpected: str | None = None  # what a user must never get: a 500, a stale read, ...
    answered: bool = True


@dataclass(frozen=True)
class Outcome:
    flow: str
    started: float  # time.monotonic()
    ended: float
    verdict: Verdict


def judge(response: httpx.Response, success: int) -> Verdict:
    status = response.status_code
    if status == success:
        return Verdict(True, str(status))
    is_problem = response.headers.get("content-type", "").startswith("application/problem+json")
    answer = f"{status} {problem_type(response.json())}" if is_problem else str(status)
    if status in DOWN and is_problem:
        return Verdict(False, answer)
    request = response.request
    return Verdict(False, answer, f"{request.method} {request.url.path}: {status} {response.text[:300]}")


Step = Callable[[httpx.Client], Verdict]


class Load:
    """A bounded load through the gateway: a thread per flow, a step every `INTERVALS[flow]` seconds,
    until its block ends or `LOAD_LIMIT` seconds have passed, whichever comes first. A flow can be
    paused."""

    def __init__(self, base_url: str, steps: Mapping[str, Step]) -> None:
        self.outcomes: list[Outcome] = []
        self.paused: set[str] = set()
        self._stepping = {flow: threading.Lock() for flow in steps}  # held during a step of the flow
        self._stopping = threading.Event()
        self._deadline = time.monotonic() + LOAD_LIMIT
        self._threads = [threading.Thread(target=self._run, args=(base_url, flow, step), name=f"load-{flow}",
                                          daemon=True) for flow, step in steps.items()]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(CLIENT_TIMEOUT + 5)

    def _run(self, base_url: str, flow: str, step: Step) -> None:
        with httpx.Client(base_url=f"{base_url}/api/v1", timeout=CLIENT_TIMEOUT) as api:
            while not self._stopping.is_set() and time.monotonic() < self._deadline:
                with self._stepping[flow]:
                    if flow not in self.paused:
                        self.outcomes.append(self._step(flow, step, api))
                self._stopping.wait(INTERVALS[flow])

    @staticmethod
    def _step(flow: str, step: Step, api: httpx.Client) -> Outcome:
        started = time.monotonic()
        try:
            verdict = step(api)
        except httpx.TransportError as exc:
            verdict = Verdict(False, f"no answer ({type(exc).__name__})", answered=False)
        except Exception as exc:  # an answer the step could not read: a user could not either
            verdict = Verdict(False, type(exc).__name__, unexpected=f"{flow}: {exc!r}")
        return Outcome(flow, started, time.monotonic(), verdict)

    def pause(self, flow: str) -> None:
        """No new step of `flow` from now on, and none under way once this returns."""
        self.paused.add(flow)
        with self._stepping[flow]:
            pass

    def resume(self, flow: str) -> None:
        self.paused.discard(flow)

    def since(self, moment: float) -> list[Outcome]:
        return [o for o in list(self.outcomes) if o.started >= moment]

    def first_success(self, flow: str, after: float) -> Outcome | None:
        return next((o for o in self.since(after) if o.flow == flow and o.verdict.ok), None)


def signup_step(api: httpx.Client) -> Verdict:
    email = SIGNUP_EMAIL.format(uuid.uuid4().hex[:16])
    return judge(api.post("/auth/signup", json={"email": email, "password": PASSWORD, "name": "Chaos Load"},
                          headers=tenant_header(TENANT)), 201)


def profile_read_step(readers: list[Actor]) -> Step:
    turns = itertools.cycle(readers)

    def step(api: httpx.Client) -> Verdict:
        reader = next(turns)
        response = api.get("/users/me", headers=reader.auth)
        verdict = judge(response, 200)
        if verdict.ok and response.json()["id"] != reader.user_id:
            return verdict._replace(ok=False, unexpected=f"/users/me of {reader.user_id} answered {response.text}")
        return verdict

    return step


def catalog_write_step(admin: Actor, product_id: str) -> Step:
    """An admin renames a product; the public read that follows (through the gateway's cache) must
    show the new name."""
    path = f"/products/{product_id}"
    numbers = itertools.count()

    def step(api: httpx.Client) -> Verdict:
        name = f"Chaos Kettle {next(numbers)}"
        written = judge(api.patch(path, json={"name": name}, headers=admin.auth), 200)
        if not written.ok:
            return written
        response = api.get(path, headers=tenant_header(TENANT))
        verdict = judge(response, 200)
        if verdict.ok and response.json()["name"] != name:
            return verdict._replace(ok=False, unexpected=(
                f"the public read after renaming to {name!r} showed {response.json()['name']!r} "
                f"(x-cache: {response.headers.get('x-cache')})"))
        return verdict

    return step


# What an operator reads ---------------------------------------------------------------------------

def signed_up(platform: platforms.Platform) -> set[str]:
    """The accounts the load has signed up so far (auth's database: whatever their answer said)."""
    return {str(row.id) for row in query(platform.auth_database_url,
                                         "SELECT id FROM users WHERE email LIKE 'chaos-%@example.com'")}


def without_profile(platform: platforms.Platform, accounts: set[str]) -> set[str]:
    """Those of `accounts` that have no profile in the users database. (Once at most, by its primary
    key: the user's id.)"""
    return accounts - {str(row.id) for row in query(platform.database_urls["users"], "SELECT id FROM profiles")}


def dead_letters(platform: platforms.Platform) -> dict[str, list[str]]:
    found = {name: [f"{row.consumer} {row.topic}: {row.error[:200]}"
                    for row in query(url, "SELECT consumer, topic, error FROM dead_letters")]
             for name, url in platform.database_urls.items()}
    return {name: rows for name, rows in found.items() if rows}


def unpublished_catalog_events(platform: platforms.Platform) -> int:
    return int(query(platform.database_urls["catalog"],
                     "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")[0].n)


async def _gateway_lag(bootstrap: str) -> dict[str, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, client_id="chaos-operator")
    await consumer.start()
    try:
        await consumer.topics()  # fetches the metadata the partitions are read from
        partitions = [TopicPartition(topic, partition) for topic in CATALOG_CACHE.invalidated_by
                      for partition in sorted(consumer.partitions_for_topic(topic) or ())]
        ends = await consumer.end_offsets(partitions) if partitions else {}
    finally:
        await consumer.stop()
    if not partitions:
        return {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="chaos-operator")
    await admin.start()
    try:  # named partitions: tansu cannot answer "every offset of the group"
        committed = await admin.list_consumer_group_offsets(GATEWAY_GROUP, partitions=partitions)
    finally:
        await admin.close()
    lag = {f"{tp.topic}[{tp.partition}]": end - max(committed[tp].offset if tp in committed else 0, 0)
           for tp, end in ends.items()}
    return {partition: behind for partition, behind in lag.items() if behind}


def gateway_lag(platform: platforms.Platform) -> dict[str, int]:
    """The product events the broker holds that the gateway's consumer group has not applied yet."""
    assert platform.kafka_bootstrap is not None
    return asyncio.run(_gateway_lag(platform.kafka_bootstrap))


def settled(pending: Callable[[], Any], deadline: float, what: str) -> None:
    """Wait until nothing is `pending()` (an empty collection, zero), until `deadline` at most."""
    left = pending()
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = pending()
    assert not left, f"{what}: {len(left) if isinstance(left, set) else left} (still after {RECOVERY_BOUND}s)"


# Scenarios --------------------------------------------------------------------------------------

@dataclass
class Chaos:
    platform: platforms.Platform
    load: Load
    say: Callable[[str], None]  # to the terminal, past pytest's capture
    report: dict[str, Any] = field(default_factory=dict)
    # The end of the previous scenario: each one judges every answer from there on.
    since: float = field(default_factory=time.monotonic)

    def healthy(self) -> None:
        """Every flow succeeds again (after the previous scenario, or at the start)."""
        now = time.monotonic()
        for flow in INTERVALS:
            if flow not in self.load.paused:
                eventually(lambda: self.load.first_success(flow, now),  # noqa: B023 (called at once)
                           timeout=RECOVERY_BOUND, what=f"a {flow} to succeed before the fault")

    def run(self, name: str, fault: Callable[[], None], end_fault: Callable[[], None], *, down_for: float,
            unanswered_allowed: bool = False) -> None:
        """Inject `fault`, keep it `down_for` seconds, end it with `end_fault`; then wait for every flow
        to succeed again, and for every signup's profile; assert what a user would notice."""
        self.healthy()
        fault()
        fault_started = time.monotonic()
        felt = self._felt(until=fault_started + down_for)
        time.sleep(max(0.0, fault_started + down_for - time.monotonic()))
        fault_ended = time.monotonic()
        end_fault()
        recovery = self._recovery(fault_ended)
        outcomes = self.load.since(self.since)
        self.since = time.monotonic()
        result = {
            "fault_seconds": round(fault_ended - fault_started, 2),
            "recovery_seconds": recovery,
            "answers": {flow: dict(Counter(o.verdict.answer for o in outcomes if o.flow == flow))
                        for flow in INTERVALS},
        }
        self._record(name, result)
        self.say(f"chaos, {name}: recovered after the fault ended: "
                 + ", ".join(f"{what} {seconds}s" for what, seconds in recovery.items()) + f" (report: {REPORT})")

        assert felt, f"{name}: the fault never showed in the gateway's readiness: was it injected at all?"
        failed = {flow: seconds for flow, seconds in recovery.items() if seconds is None}
        assert not failed, (f"{name}: not recovered within {RECOVERY_BOUND}s: {sorted(failed)}\n"
                            f"{self.platform.log_tail(15)}")
        unexpected = [o.verdict.unexpected for o in outcomes if o.verdict.unexpected]
        assert not unexpected, f"{name}: answers a user must never get: {unexpected[:10]}"
        if not unanswered_allowed:
            unanswered = [o.verdict.answer for o in outcomes if not o.verdict.answered]
            assert not unanswered, f"{name}: requests the gateway never answered: {Counter(unanswered)}"
        self.assert_consistent()

    def assert_consistent(self) -> None:
        """Nothing lost, nothing dead-lettered, every catalog change applied by the gateway."""
        deadline = time.monotonic() + RECOVERY_BOUND  # for all of it: a stalled platform fails once
        accounts = signed_up(self.platform)  # the load goes on: those made later are the next check's
        settled(lambda: without_profile(self.platform, accounts), deadline, "accounts without a profile")
        assert not dead_letters(self.platform), dead_letters(self.platform)
        settled(lambda: unpublished_catalog_events(self.platform), deadline, "catalog events not published")
        settled(lambda: gateway_lag(self.platform), deadline, "product events the gateway has not applied")

    def _felt(self, *, until: float) -> bool:
        """Whether the fault showed while it lasted, as an orchestrator sees it: the gateway's
        readiness (every upstream's stores, bus and consumers) not ok, or no gateway at all."""
        while time.monotonic() < until:
            try:
                if httpx.get(f"{self.platform.base_url}/health/ready", timeout=2).status_code != 200:
                    return True
            except httpx.HTTPError:
                return True
            time.sleep(0.2)
        return False

    def _recovery(self, fault_ended: float) -> dict[str, float | None]:
        """Seconds from the fault's end to the first success of each flow that started after it, and
        until every account signed up by the time signups succeed again has its profile (None: not
        within `RECOVERY_BOUND`)."""
        recovered: dict[str, float] = {}
        pending = [*INTERVALS, PROFILES]
        accounts: set[str] | None = None  # those signed up until signups succeed again
        while pending and time.monotonic() < fault_ended + RECOVERY_BOUND:
            for what in list(pending):
                if what == PROFILES:
                    if accounts is None and SIGNUP in recovered:
                        accounts = signed_up(self.platform)
                    done = accounts is not None and not without_profile(self.platform, accounts)
                    moment = time.monotonic() if done else None
                else:
                    success = self.load.first_success(what, fault_ended)
                    moment = success.ended if success is not None else None
                if moment is not None:
                    recovered[what] = round(moment - fault_ended, 2)
                    pending.remove(what)
            time.sleep(0.2)
        return {what: recovered.get(what) for what in [*INTERVALS, PROFILES]}

    def _record(self, name: str, result: dict[str, Any]) -> None:
        self.report[name] = result
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps({"recovery_bound_seconds": RECOVERY_BOUND, "scenarios": self.report},
                                     indent=2) + "\n")


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[Chaos]:
    workdir: Path = tmp_path_factory.mktemp("platform-chaos")
    terminal = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")

    def say(line: str) -> None:
        if terminal is not None and capture is not None:  # else no terminal: the report file says it
            with capture.global_and_fixture_disabled():
                terminal.write_line(line)

    with platforms.distributed(workdir, database_faults=("users", "catalog")) as platform, \
            httpx.Client(base_url=f"{platform.base_url}/api/v1", timeout=CLIENT_TIMEOUT) as api:
        admin = sign_in(api, platforms.OTHER_ADMIN_EMAIL, platforms.OTHER_ADMIN_PASSWORD, TENANT)
        product = assert_ok(api.post("/products", headers=admin.auth, json={
            "name": "Chaos Kettle", "slug": "chaos-kettle", "status": "active",
            "variants": [{"sku": "CHAOS-KETTLE-1", "name": "1 litre", "price": {"amount": 1999, "currency": "INR"}}]}),
            201)
        readers = [sign_up(api, TENANT, name=f"Chaos Reader {n}") for n in range(2)]
        steps = {SIGNUP: signup_step, PROFILE_READ: profile_read_step(readers),
                 CATALOG_WRITE: catalog_write_step(admin, product["id"])}
        with Load(platform.base_url, steps) as load:
            yield Chaos(platform, load, say)


def test_a_service_killed_and_started_again(chaos: Chaos) -> None:
    chaos.run("kill users", lambda: chaos.platform.kill("users"), lambda: chaos.platform.start("users"),
              down_for=KILLED_FOR)


def test_the_gateway_killed_and_started_again(chaos: Chaos) -> None:
    chaos.run("kill gateway", lambda: chaos.platform.kill(platforms.GATEWAY),
              lambda: chaos.platform.start(platforms.GATEWAY), down_for=KILLED_FOR, unanswered_allowed=True)


def test_the_broker_killed_and_started_again_on_its_storage(chaos: Chaos) -> None:
    chaos.run("kill broker", lambda: chaos.platform.kill(platforms.BROKER),
              lambda: chaos.platform.start(platforms.BROKER), down_for=KILLED_FOR)


def test_databases_refusing_connections_for_a_while(chaos: Chaos) -> None:
    proxies = chaos.platform.database_proxies

    def refuse() -> None:
        for proxy in proxies.values():
            proxy.refuse()

    def restore() -> None:
        for proxy in proxies.values():
            proxy.pass_through()

    chaos.run("databases refuse", refuse, restore, down_for=DATABASE_DOWN_FOR)


def test_the_broker_back_with_empty_storage(chaos: Chaos) -> None:
    """Events the old broker held and nobody had consumed are lost with it: signups pause and every
    earlier one's profile is made before the broker goes, and resume once it is back."""
    chaos.load.pause(SIGNUP)
    accounts = signed_up(chaos.platform)
    settled(lambda: without_profile(chaos.platform, accounts), time.monotonic() + RECOVERY_BOUND,
            "accounts without a profile before the broker goes")

    def empty_broker() -> None:
        chaos.platform.start(platforms.BROKER, empty_storage=True)
        chaos.load.resume(SIGNUP)

    chaos.run("broker back empty", lambda: chaos.platform.kill(platforms.BROKER), empty_broker,
              down_for=KILLED_FOR)
