"""The order saga, black-box through the gateway, in both topologies: checkout to `CONFIRMED` with the
stock deducted and the coupon counted, in one trace; an unpaid order cancelled at its deadline with
its stock released, and a success webhook after that refunded at once; a checkout submitted twice at
once; two customers racing for the last unit; and, in the distributed topology, payments and
inventory killed with SIGKILL mid-saga.

The sandbox misbehaves throughout, as real gateways do: every webhook arrives twice and the webhooks
of one payment arrive last first, after a delay. Every process exports its spans to a local OTLP
collector."""

from __future__ import annotations

import datetime as dt
import functools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from amazonlite.services.payments.providers import ProviderSettings, SandboxProvider
from tests.e2e import platforms
from tests.e2e.actors import (
    Actor,
    assert_ok,
    assert_problem,
    bearer,
    eventually,
    login,
    problem_type,
    sign_up,
    tenant_header,
)
from tests.e2e.operator import query
from tests.e2e.platforms import ADMIN_EMAIL, ADMIN_PASSWORD, Platform
from tests.support.otlp import Collector, local_collector

pytestmark = [pytest.mark.xdist_group("saga")]

SAGA_ENV = {
    "AMAZONLITE_PAYMENTS_SANDBOX_LATENCY_MS": "300",
    "AMAZONLITE_PAYMENTS_SANDBOX_DUPLICATE_WEBHOOKS": "true",
    "AMAZONLITE_PAYMENTS_SANDBOX_REORDER_WEBHOOKS": "true",
    # A delivery lost with a killed payments process is sent again this long after the choice.
    "AMAZONLITE_PAYMENTS_SANDBOX_REDELIVERY_SECONDS": "2",
}
SAGA_TIMEOUT = 60.0  # one order's saga, on a loaded CI machine
PAYMENT_MINUTES = 1  # the shop's payment deadline: the shortest a tenant can set
KILLED_FOR = 1.0
ADDRESS = {"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London", "postal_code": "SW1Y 4JH",
           "country": "GB"}
TERMINAL = ("CONFIRMED", "CANCELLED")


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    with local_collector() as running:
        yield running


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             collector: Collector) -> Iterator[Platform]:
    workdir = tmp_path_factory.mktemp(f"saga-{request.param}")
    with platforms.started(request.param, workdir, extra_env={**SAGA_ENV, **collector.env()}) as running:
        yield running


@pytest.fixture(scope="module")
def api(platform: Platform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{platform.base_url}/api/v1", timeout=30) as client:
        yield client


class Shop:
    """A tenant of its own (INR, 18 % tax, one minute to pay) with its admin, a product whose SKUs
    each test has to itself, their stock, and a coupon."""

    def __init__(self, platform: Platform, api: httpx.Client) -> None:
        self.api = api
        tag = uuid.uuid4().hex[:6]
        self.tenant = f"saga-{tag}"
        root = bearer(login(api, ADMIN_EMAIL, ADMIN_PASSWORD)["access_token"])
        assert_ok(api.post("/admin/tenants", headers=root, json={
            "id": self.tenant, "name": f"Saga {tag}", "currency": "INR", "tax_rate_bp": 1800,
            "payment_minutes": PAYMENT_MINUTES}), 201)
        email, password = f"admin@{self.tenant}.example.com", "saga-keeper-2026"
        platform.cli("users", "create-admin", "--tenant", self.tenant, "--email", email, "--password", password)
        self.admin = bearer(login(api, email, password, self.tenant)["access_token"])
        stock = {"HAPPY": 10, "TIMEOUT": 10, "TWICE": 10, "LAST-1": 1, "LAST-2": 1, "LAST-3": 1, "KILL-P": 20,
                 "KILL-I": 20}
        self.sku = {name: f"SAGA-{tag}-{name}" for name in stock}
        assert_ok(api.post("/products", headers=self.admin, json={
            "name": f"Lamp {tag}", "description": "brass", "status": "active", "attributes": {}, "media": [],
            "variants": [{"sku": sku, "name": name, "options": {"model": name},
                          "price": {"amount": 5_000, "currency": "INR"}} for name, sku in self.sku.items()]}), 201)
        for name, units in stock.items():
            # Inventory learns the SKUs from product.updated.v1: stock can be set once it has.
            eventually(functools.partial(self._set_stock, self.sku[name], units), timeout=60,
                       what=f"inventory to know {self.sku[name]}")
        now = dt.datetime.now(dt.UTC)
        self.coupon = assert_ok(api.post("/coupons", headers=self.admin, json={
            "code": f"SAGA{tag}".upper(), "kind": "percent", "value": 10, "min_subtotal": 1_000,
            "starts_at": (now - dt.timedelta(hours=1)).isoformat(), "ends_at": (now + dt.timedelta(days=1)).isoformat(),
            "usage_limit": 100, "once_per_customer": True}), 201)["code"]

    def _set_stock(self, sku: str, units: int) -> bool:
        answer = self.api.put(f"/inventory/{sku}/warehouses/default", headers=self.admin,
                              json={"set": units, "reason": "first delivery"})
        return answer.status_code == 200

    def customer(self, name: str, sku: str, quantity: int = 1) -> Actor:
        """A new customer with `quantity` of the shop's SKU `sku` in the cart."""
        actor = sign_up(self.api, self.tenant, name=name)
        added = self.api.post("/cart/items", headers=actor.auth, json={"sku": self.sku[sku], "quantity": quantity})
        assert added.status_code in (200, 201), added.text
        return actor

    def stock(self, sku: str) -> dict[str, int]:
        """The SKU's stock in its one warehouse: on_hand, reserved, available."""
        detail = assert_ok(self.api.get(f"/inventory/{self.sku[sku]}", headers=self.admin))
        [warehouse] = detail["warehouses"]
        return {key: warehouse[key] for key in ("on_hand", "reserved", "available")}

    def order(self, actor: Actor, order_id: str) -> dict[str, Any]:
        return dict(assert_ok(self.api.get(f"/orders/{order_id}", headers=actor.auth)))

    def wait_for(self, actor: Actor, order_id: str, *statuses: str, timeout: float = SAGA_TIMEOUT) -> dict[str, Any]:
        return dict(eventually(lambda: (o := self.order(actor, order_id))["status"] in statuses and o,
                               timeout=timeout, what=f"order {order_id} to be {' or '.join(statuses)}"))

    def pay(self, actor: Actor, order: dict[str, Any], outcome: str = "success",
            headers: dict[str, str] | None = None) -> None:
        assert_ok(self.api.post(f"/payments/sandbox/{order['payment']['id']}/complete", json={"outcome": outcome},
                                headers={**actor.auth, **(headers or {})}), 202)


def checkout(api: httpx.Client, actor: Actor, *, key: str | None = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
    return api.post("/orders", json={"payment_provider": "sandbox", "address": ADDRESS},
                    headers={**actor.auth, "Idempotency-Key": key or uuid.uuid4().hex, **(headers or {})})


@pytest.fixture(scope="module")
def shop(platform: Platform, api: httpx.Client) -> Shop:
    return Shop(platform, api)


class TestSaga:
    def test_a_paid_order_is_confirmed_its_stock_deducted_its_coupon_counted_in_one_trace(
            self, api: httpx.Client, shop: Shop, platform: Platform, collector: Collector) -> None:
        before = shop.stock("HAPPY")
        customer = shop.customer("Grace Hopper", "HAPPY", 2)
        assert_ok(api.post("/cart/coupon", headers=customer.auth, json={"code": shop.coupon}))
        trace_id = uuid.uuid4().hex
        traced = {"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"}
        placed = assert_ok(checkout(api, customer, headers=traced), 202)
        # 2 x 50.00 = 100.00, 10 % off = 90.00, 18 % tax = 16.20
        assert (placed["status"], placed["total"]["amount"], placed["coupon_code"]) == (
            "RESERVATION_PENDING", 10_620, shop.coupon)
        waiting = shop.wait_for(customer, placed["id"], "PAYMENT_PENDING")
        assert shop.stock("HAPPY") == {**before, "reserved": before["reserved"] + 2,
                                       "available": before["available"] - 2}
        shop.pay(customer, waiting, headers=traced)

        confirmed = shop.wait_for(customer, placed["id"], *TERMINAL)
        assert confirmed["status"] == "CONFIRMED", confirmed
        assert [step["status"] for step in confirmed["history"]] == ["RESERVATION_PENDING", "PAYMENT_PENDING",
                                                                     "CONFIRMED"]
        payment = assert_ok(api.get(f"/payments/{waiting['payment']['id']}", headers=customer.auth))
        assert payment["status"] in ("authorized", "capture_due", "captured")
        eventually(lambda: api.get(f"/payments/{waiting['payment']['id']}", headers=customer.auth).json()["status"]
                   == "captured", timeout=SAGA_TIMEOUT, what="the confirmed order's money to be captured")
        eventually(lambda: shop.stock("HAPPY") == {**before, "on_hand": before["on_hand"] - 2,
                                                   "available": before["available"] - 2},
                   timeout=SAGA_TIMEOUT, what="inventory to deduct the confirmed order's stock")
        eventually(lambda: assert_ok(api.get(f"/coupons/{shop.coupon}", headers=shop.admin))["used_count"] == 1,
                   timeout=SAGA_TIMEOUT, what="the coupon's use to be counted")

        # One trace: the gateway, orders, and every consumer of the saga's events (the webhooks the
        # sandbox sends after the customer's choice carry that request's trace).
        expected = {"consume order.created.v1", "consume inventory.reserved.v1", "consume payment.requested.v1",
                    "consume payment.authorized.v1", "consume order.confirmed.v1"}
        eventually(lambda: expected <= {span.name for span in collector.spans(trace_id)}, timeout=SAGA_TIMEOUT,
                   what="the checkout's spans to reach the collector")
        spans = collector.spans(trace_id)
        servers = {span.service for span in spans if span.name == "POST /api/v1/orders" and span.kind == 2}
        if platform.control is not None:  # distributed: a process per service
            assert servers == {"gateway", "orders"}, sorted({(span.service, span.name) for span in spans})
            consumers = {span.service for span in spans if span.name.startswith("consume ")}
            assert {"inventory", "payments", "orders", "cart"} <= consumers, consumers
        else:
            assert servers == {"amazonlite"}, servers

    def test_an_unpaid_order_is_cancelled_at_its_deadline_and_money_paid_after_it_is_refunded(
            self, api: httpx.Client, shop: Shop, platform: Platform) -> None:
        before = shop.stock("TIMEOUT")
        customer = shop.customer("Alan Turing", "TIMEOUT")
        placed = assert_ok(checkout(api, customer), 202)
        waiting = shop.wait_for(customer, placed["id"], "PAYMENT_PENDING")
        # The tenant's minute to pay runs from the payment's request, which follows the reservation.
        to_pay = dt.datetime.fromisoformat(waiting["payment"]["expires_at"]) - dt.datetime.fromisoformat(
            placed["created_at"])
        assert dt.timedelta(minutes=PAYMENT_MINUTES) <= to_pay < dt.timedelta(minutes=PAYMENT_MINUTES,
                                                                               seconds=SAGA_TIMEOUT)

        cancelled = shop.wait_for(customer, placed["id"], "CANCELLED", timeout=PAYMENT_MINUTES * 60 + SAGA_TIMEOUT)
        assert cancelled["cancel_reason"] == "payment_timeout"
        eventually(lambda: shop.stock("TIMEOUT") == before, timeout=SAGA_TIMEOUT,
                   what="the unpaid order's stock to be released")
        payment_path = f"/payments/{waiting['payment']['id']}"
        eventually(lambda: api.get(payment_path, headers=customer.auth).json()["status"] == "voided",
                   timeout=SAGA_TIMEOUT, what="the payment to be voided")
        assert problem_type(assert_problem(api.post(f"/payments/sandbox/{waiting['payment']['id']}/complete",
                                                    json={"outcome": "success"}, headers=customer.auth), 409)) == (
            "payment-not-pending")

        # The customer paid anyway (the gateway's success arrives after the cancellation): refunded.
        reference = f"sbx_{uuid.UUID(waiting['payment']['id']).hex}"
        # As the sandbox signs it (the platform under test keeps the development secret).
        body, headers = SandboxProvider(ProviderSettings()).signed_webhook(
            "payment.authorized", reference=reference, provider_payment_id=f"sbxpay_{uuid.uuid4().hex}",
            amount=waiting["total"]["amount"])
        late = (body, {**headers, "Content-Type": "application/json"})
        webhooks = "/payments/webhooks/sandbox"
        tenant = tenant_header(shop.tenant)
        forged = (late[0], {**late[1], "X-Sandbox-Signature": "0" * 64})
        assert_problem(api.post(webhooks, content=forged[0], headers={**tenant, **forged[1]}), 401)
        for _delivery in range(2):  # the second is a replay: no second refund
            assert_ok(api.post(webhooks, content=late[0], headers={**tenant, **late[1]}))
        eventually(lambda: api.get(payment_path, headers=customer.auth).json()["status"] == "refunded",
                   timeout=SAGA_TIMEOUT, what="the late payment to be refunded")
        after = shop.order(customer, placed["id"])
        assert (after["status"], after["cancel_reason"]) == ("CANCELLED", "payment_timeout")
        assert shop.stock("TIMEOUT") == before

        # The saga's outcomes by reason and its durations, on the orders service's /metrics.
        metrics = httpx.get(f"{platform.service_urls['orders']}/metrics", timeout=10).text
        timeouts = 'amazonlite_orders_saga_outcomes_total{outcome="cancelled",reason="payment_timeout"}'
        assert saga_metric(metrics, timeouts) >= 1
        # A cancelled saga's duration: a minute to pay, and the sweeper's pass after it.
        assert saga_metric(metrics, 'amazonlite_orders_saga_seconds_bucket{le="60.0",outcome="cancelled"}') < (
            saga_metric(metrics, 'amazonlite_orders_saga_seconds_bucket{le="300.0",outcome="cancelled"}'))

    def test_a_checkout_submitted_twice_at_once_creates_one_order(self, api: httpx.Client, shop: Shop) -> None:
        customer = shop.customer("Edsger Dijkstra", "TWICE")
        key = uuid.uuid4().hex
        answers = at_once(2, lambda: checkout(api, customer, key=key))
        placed = [answer.json() for answer in answers if answer.status_code == 202]
        refused = [problem_type(answer.json()) for answer in answers if answer.status_code != 202]
        assert placed, [answer.text for answer in answers]
        assert refused in ([], ["request-in-progress"]), refused
        assert len({order["id"] for order in placed}) == 1
        assert assert_ok(checkout(api, customer, key=key), 202)["id"] == placed[0]["id"]  # the stored answer
        mine = assert_ok(api.get("/orders", headers=customer.auth))["items"]
        assert [order["id"] for order in mine] == [placed[0]["id"]]

    def test_two_customers_racing_for_the_last_unit_one_is_confirmed_one_cancelled_out_of_stock(
            self, api: httpx.Client, shop: Shop) -> None:
        # Both checkouts must pass the availability check before either reservation is made; a round
        # where one was refused at checkout already (409) is played again on another last unit.
        for sku in ("LAST-1", "LAST-2", "LAST-3"):
            racers = [shop.customer(f"Racer {n}", sku) for n in (1, 2)]
            answers = at_once(2, *[lambda racer=racer: checkout(api, racer) for racer in racers])
            if any(answer.status_code == 409 for answer in answers):
                assert [problem_type(a.json()) for a in answers if a.status_code == 409] == ["insufficient-stock"]
                continue
            orders = [assert_ok(answer, 202) for answer in answers]
            ends = [shop.wait_for(racer, order["id"], "PAYMENT_PENDING", "CANCELLED")
                    for racer, order in zip(racers, orders, strict=True)]
            [(winner, won)] = [(racer, end) for racer, end in zip(racers, ends, strict=True)
                               if end["status"] == "PAYMENT_PENDING"]
            [lost] = [end for end in ends if end["status"] == "CANCELLED"]
            assert lost["cancel_reason"] == "out_of_stock"
            shop.pay(winner, won)
            assert shop.wait_for(winner, won["id"], *TERMINAL)["status"] == "CONFIRMED"
            eventually(functools.partial(sold_out, shop, sku), timeout=SAGA_TIMEOUT,
                       what="the last unit to be sold once")
            return
        pytest.fail("every round was decided at checkout: the race never reached inventory")


class TestKilledMidSaga:
    """SIGKILL, then started again: every order reaches a terminal state, nothing is charged or
    deducted twice."""

    @pytest.mark.parametrize("platform", ["distributed"], indirect=True)
    @pytest.mark.parametrize("service", ["payments", "inventory"])
    def test_every_order_ends_once_charged_and_once_deducted(
            self, api: httpx.Client, shop: Shop, platform: Platform, service: str) -> None:
        sku = "KILL-P" if service == "payments" else "KILL-I"
        before = shop.stock(sku)
        customers = [shop.customer(f"{service} {n}", sku) for n in range(4)]
        orders = [assert_ok(checkout(api, customer), 202)["id"] for customer in customers]
        restart_after_kill(platform, service)  # the orders' reservations and payments in flight

        waiting = [shop.wait_for(customer, order, "PAYMENT_PENDING", *TERMINAL)
                   for customer, order in zip(customers, orders, strict=True)]
        assert [order["status"] for order in waiting] == ["PAYMENT_PENDING"] * 4, waiting
        for customer, order in zip(customers, waiting, strict=True):
            shop.pay(customer, order)
        restart_after_kill(platform, service)  # the webhooks, the confirmations and deductions in flight

        ends = [shop.wait_for(customer, order, *TERMINAL, timeout=2 * SAGA_TIMEOUT)
                for customer, order in zip(customers, orders, strict=True)]
        assert [end["status"] for end in ends] == ["CONFIRMED"] * 4, ends
        eventually(lambda: shop.stock(sku) == {**before, "on_hand": before["on_hand"] - 4,
                                               "available": before["available"] - 4},
                   timeout=SAGA_TIMEOUT, what="the four orders' stock to be deducted")
        payments = query(platform.database_urls["payments"],
                         "SELECT id, order_id, status FROM payments WHERE tenant_id = :t", {"t": shop.tenant})
        ours = [row for row in payments if str(row.order_id) in orders]
        assert sorted(str(row.order_id) for row in ours) == sorted(orders), payments  # one payment each
        assert {row.status for row in ours} <= {"authorized", "capture_due", "captured"}
        refunded = query(platform.database_urls["payments"], "SELECT payment_id FROM refunds WHERE tenant_id = :t",
                         {"t": shop.tenant})
        assert {str(row.payment_id) for row in refunded} & {str(row.id) for row in ours} == set()  # none given back
        deducted = query(platform.database_urls["inventory"],
                         "SELECT order_id, sum(on_hand_delta) AS units FROM ledger "
                         "WHERE tenant_id = :t AND sku = :sku AND kind = 'deduct' GROUP BY order_id",
                         {"t": shop.tenant, "sku": shop.sku[sku]})
        assert sorted((str(row.order_id), row.units) for row in deducted) == sorted(
            (order, -1) for order in orders)


def saga_metric(exposition: str, sample: str) -> float:
    """The value of one sample (`name{labels}`, labels in Prometheus's order) in a /metrics text."""
    values = [float(line.rsplit(" ", 1)[1]) for line in exposition.splitlines() if line.startswith(sample + " ")]
    assert values, f"{sample} is not exposed"
    return values[0]


def sold_out(shop: Shop, sku: str) -> bool:
    return shop.stock(sku) == {"on_hand": 0, "reserved": 0, "available": 0}


def restart_after_kill(platform: Platform, service: str) -> None:
    platform.kill(service)
    time.sleep(KILLED_FOR)
    platform.start(service)


def at_once(count: int, *calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Run the calls (or the one call `count` times) in threads released together."""
    work = list(calls) if len(calls) > 1 else [calls[0]] * count
    barrier = threading.Barrier(len(work))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(work)) as pool:
        return list(pool.map(run, work))
