"""The payments service: a payment opened per reserved order (once, whatever the order of arrival),
completed on the sandbox's page through its signed webhooks delivered later, webhooks verified and
applied once, never backwards, and money given back for cancelled orders, late webhooks included."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from amazonlite.contracts import InventoryReservedV1, OrderCancelledV1, OrderConfirmedV1, OrderCreatedV1
from amazonlite.contracts.base import Money
from amazonlite.contracts.inventory import ReservedLineV1, WarehouseAllocationV1
from amazonlite.contracts.orders import OrderLineV1, OrderTotalsV1
from amazonlite.platform.migrations import alembic_config, upgrade
from amazonlite.services.payments.app import SERVICE
from amazonlite.services.payments.models import MESSAGING, Payment, Refund, WebhookReceipt
from amazonlite.services.payments.providers import (
    Intent,
    ProviderRefused,
    ProviderUnavailable,
    RazorpayProvider,
    SandboxProvider,
)
from amazonlite.services.payments.providers.base import DEV_SANDBOX_WEBHOOK_SECRET
from amazonlite.services.payments.tasks import SandboxGateway, capture_due, redeliver_sandbox_webhooks
from tests.platform.helpers import counter
from tests.support.harness import Harness, running_service

ADMIN = ("tenant_admin",)
CUSTOMER = ("customer",)
WEBHOOKS = "/api/v1/payments/webhooks"


def order_created(*, order_id: uuid.UUID | None = None, customer_id: uuid.UUID | None = None, amount: int = 2500,
                  currency: str = "INR", provider: str = "sandbox") -> OrderCreatedV1:
    zero = Money(amount=0, currency=currency)
    return OrderCreatedV1(
        order_id=order_id or uuid.uuid4(), customer_id=customer_id or uuid.uuid4(),
        lines=[OrderLineV1(sku="PAY-1", quantity=1, unit_price=Money(amount=amount, currency=currency))],
        totals=OrderTotalsV1(subtotal=Money(amount=amount, currency=currency), discount=zero, tax=zero,
                             shipping=zero, total=Money(amount=amount, currency=currency)),
        payment_provider=provider, created_at=dt.datetime.now(dt.UTC))


def reserved(order_id: uuid.UUID) -> InventoryReservedV1:
    return InventoryReservedV1(
        order_id=order_id, reservation_id=uuid.uuid4(),
        lines=[ReservedLineV1(sku="PAY-1", quantity=1,
                              allocations=[WarehouseAllocationV1(warehouse="default", quantity=1)])],
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15))


def cancelled(order_id: uuid.UUID, *, reason: str = "customer") -> OrderCancelledV1:
    return OrderCancelledV1(order_id=order_id, customer_id=uuid.uuid4(), reason=reason,
                            cancelled_at=dt.datetime.now(dt.UTC))


def customer(svc: Harness, customer_id: uuid.UUID, *, tenant: str = "default") -> httpx.AsyncClient:
    return svc.client(tenant=tenant, user_id=customer_id, roles=CUSTOMER)


def sandbox(svc: Harness) -> SandboxProvider:
    provider = svc.runtime.state.providers["sandbox"]
    assert isinstance(provider, SandboxProvider)
    return provider


def gateway(svc: Harness) -> SandboxGateway:
    deliveries: SandboxGateway = svc.runtime.state.sandbox_gateway
    return deliveries


async def open_payment(svc: Harness, *, amount: int = 2500, provider: str = "sandbox", tenant: str = "default"
                       ) -> tuple[uuid.UUID, uuid.UUID, Payment]:
    """An order known and reserved: its id, its customer's and its payment."""
    order = order_created(amount=amount, provider=provider)
    await svc.deliver(order, tenant=tenant)
    await svc.deliver(reserved(order.order_id), tenant=tenant)
    payment = await payment_of(svc, order.order_id, tenant=tenant)
    assert payment is not None
    return order.order_id, order.customer_id, payment


async def payment_of(svc: Harness, order_id: uuid.UUID, *, tenant: str = "default") -> Payment | None:
    async with svc.runtime.db.session(tenant_id=tenant) as session:
        return await session.scalar(select(Payment).where(Payment.order_id == order_id))


async def refunds_of(svc: Harness, payment_id: uuid.UUID, *, tenant: str = "default") -> list[Refund]:
    async with svc.runtime.db.session(tenant_id=tenant) as session:
        return list((await session.scalars(select(Refund).where(Refund.payment_id == payment_id))).all())


async def receipts(svc: Harness, *, tenant: str = "default") -> list[str]:
    async with svc.runtime.db.session(tenant_id=tenant) as session:
        return list((await session.scalars(select(WebhookReceipt.event_id))).all())


async def events(svc: Harness, order_id: uuid.UUID) -> list[dict[str, Any]]:
    """The order's events in the outbox, in order: `{topic, payload}`."""
    table = MESSAGING.outbox
    async with svc.runtime.db.engine.connect() as conn:
        rows = (await conn.execute(select(table.c.topic, table.c.envelope)
                                   .where(table.c.aggregate_id == str(order_id)).order_by(table.c.id))).all()
    return [{"topic": row.topic, "payload": orjson.loads(row.envelope)["payload"]} for row in rows]


async def topics(svc: Harness, order_id: uuid.UUID) -> list[str]:
    return [event["topic"] for event in await events(svc, order_id)]


async def post_webhook(svc: Harness, webhook: tuple[bytes, dict[str, str]], *, provider: str = "sandbox",
                       tenant: str = "default") -> httpx.Response:
    body, headers = webhook
    async with svc.client(tenant=tenant) as anonymous:
        return await anonymous.post(f"{WEBHOOKS}/{provider}", content=body,
                                    headers={**headers, "Content-Type": "application/json"})


def problem(answer: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    document: dict[str, Any] = answer.json()
    assert document["type"].endswith("/" + type_), document
    return document


async def read(svc: Harness, customer_id: uuid.UUID, payment_id: uuid.UUID) -> dict[str, Any]:
    async with customer(svc, customer_id) as api:
        answer = await api.get(f"/api/v1/payments/{payment_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def complete(svc: Harness, customer_id: uuid.UUID, payment_id: uuid.UUID, outcome: str = "success"
                   ) -> httpx.Response:
    async with customer(svc, customer_id) as api:
        return await api.post(f"/api/v1/payments/sandbox/{payment_id}/complete", json={"outcome": outcome})


async def pay_on_sandbox(svc: Harness, customer_id: uuid.UUID, payment_id: uuid.UUID, outcome: str = "success"
                         ) -> None:
    """The customer chooses on the hosted page, and the gateway's webhooks arrive."""
    answer = await complete(svc, customer_id, payment_id, outcome)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"status": "accepted"}
    await gateway(svc).drain()


def webhook(svc: Harness, payment: Payment, type_: str = "payment.authorized", *, amount: int | None = None,
            provider_payment_id: str = "sbxpay_test", reason: str | None = None) -> tuple[bytes, dict[str, str]]:
    """A sandbox webhook about the payment, signed, with a new event id."""
    assert payment.reference is not None
    return sandbox(svc).signed_webhook(type_, reference=payment.reference, provider_payment_id=provider_payment_id,
                                       amount=payment.amount if amount is None else amount, reason=reason)


async def status(svc: Harness, order_id: uuid.UUID) -> str:
    payment = await payment_of(svc, order_id)
    assert payment is not None
    return payment.status


def payments_counter(outcome: str, provider: str = "sandbox") -> float:
    return counter("amazonlite_payments_total", provider=provider, outcome=outcome)


# Opening a payment -----------------------------------------------------------------------------------------

class TestOpening:
    async def test_a_reserved_order_gets_its_payment_requested(self, svc: Harness) -> None:
        before = payments_counter("requested")
        order_id, customer_id, payment = await open_payment(svc, amount=4200)
        assert (payment.status, payment.amount, payment.currency) == ("requested", 4200, "INR")
        [requested] = await events(svc, order_id)
        assert requested["topic"] == "payment.requested.v1"
        payload = requested["payload"]
        assert (payload["payment_id"], payload["provider"], payload["amount"]) == (
            str(payment.id), "sandbox", {"amount": 4200, "currency": "INR"})
        assert payload["client"]["page_url"].endswith(f"/api/v1/payments/sandbox/{payment.id}/complete")
        assert payments_counter("requested") == before + 1
        shown = await read(svc, customer_id, payment.id)
        assert (shown["status"], shown["order_id"], shown["client"]) == ("requested", str(order_id), payload["client"])

    async def test_a_reservation_before_its_order_opens_the_payment_when_the_order_arrives(self, svc: Harness) -> None:
        """The two travel on different topics: a consumer catching up reads them in any order."""
        order = order_created()
        retries = counter("amazonlite_event_retries_total", service="payments", topic="inventory.reserved.v1")
        await svc.deliver(reserved(order.order_id))
        assert await payment_of(svc, order.order_id) is None
        await svc.deliver(reserved(order.order_id))  # delivered again, still early: noted once
        await svc.deliver(order)
        assert await status(svc, order.order_id) == "requested"
        assert await topics(svc, order.order_id) == ["payment.requested.v1"]
        await svc.deliver(order)  # the creation again: nothing more
        assert await topics(svc, order.order_id) == ["payment.requested.v1"]
        assert counter("amazonlite_event_retries_total", service="payments", topic="inventory.reserved.v1") == retries
        assert await svc.runtime.consumer.dead_letters() == []

    async def test_a_cancellation_before_its_order_leaves_the_order_without_a_payment(self, svc: Harness) -> None:
        order = order_created()
        await svc.deliver(reserved(order.order_id))
        await svc.deliver(cancelled(order.order_id, reason="reservation_timeout"))
        await svc.deliver(order)
        await svc.deliver(reserved(order.order_id))
        payment = await payment_of(svc, order.order_id)
        assert payment is not None
        assert (payment.status, payment.reference, payment.amount) == ("cancelled", None, 2500)
        assert await topics(svc, order.order_id) == []
        assert await svc.runtime.consumer.dead_letters() == []

    async def test_going_back_to_the_schema_before_early_notes_drops_them_on_every_database(
            self, any_database_url: str, tmp_path: Path) -> None:
        """The downgrade cannot keep a row that has no order yet (its columns become required
        again); on PostgreSQL it must see past row-level security to find every tenant's."""
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            known, early = order_created(), order_created()
            await svc.deliver(known, tenant="acme")
            await svc.deliver(reserved(early.order_id), tenant="acme")
        await asyncio.to_thread(command.downgrade, alembic_config("payments", SERVICE.migrations, any_database_url),
                                "3c5e9a1f7b20")
        engine = create_async_engine(any_database_url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                if conn.dialect.name == "postgresql":
                    await conn.execute(text("SELECT set_config('app.tenant_id', '*', false)"))
                rows = (await conn.execute(text("SELECT order_id FROM known_orders"))).all()
        finally:
            await engine.dispose()
        assert [uuid.UUID(str(row.order_id)) for row in rows] == [known.order_id]
        await asyncio.to_thread(upgrade, "payments", SERVICE.migrations, any_database_url)  # and forwards again

    async def test_a_reservation_racing_its_orders_creation_opens_one_payment_on_every_database(
            self, any_database_url: str, tmp_path: Path) -> None:
        """Two replicas, each consuming one of the topics: whichever writes the order's row first, the
        other finds it, and the payment is opened exactly once."""
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            orders = [order_created() for _ in range(8)]
            await asyncio.gather(*(delivery for order in orders
                                   for delivery in (svc.deliver(order), svc.deliver(reserved(order.order_id)))))
            for order in orders:
                assert await topics(svc, order.order_id) == ["payment.requested.v1"]
            assert await svc.runtime.consumer.dead_letters() == []
            await svc.runtime.state.sandbox_gateway.drain()

    async def test_the_same_reservation_delivered_again_opens_one_payment(self, svc: Harness) -> None:
        order = order_created()
        await svc.deliver(order)
        await asyncio.gather(*(svc.deliver(reserved(order.order_id)) for _ in range(3)))
        await svc.deliver(reserved(order.order_id))
        assert await topics(svc, order.order_id) == ["payment.requested.v1"]
        assert await svc.runtime.consumer.dead_letters() == []

    async def test_an_unknown_or_refusing_provider_fails_the_payment(
            self, svc: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
        unknown = order_created(provider="paypal")
        await svc.deliver(unknown)
        await svc.deliver(reserved(unknown.order_id))
        [failed] = await events(svc, unknown.order_id)
        assert (failed["topic"], failed["payload"]["reason"]) == ("payment.failed.v1", "unknown_provider")
        assert await status(svc, unknown.order_id) == "failed"

        async def refuse(**_: Any) -> Intent:
            raise ProviderRefused("The amount must be at least INR 1.00")

        monkeypatch.setattr(sandbox(svc), "create_intent", refuse)
        order = order_created()
        await svc.deliver(order)
        await svc.deliver(reserved(order.order_id))
        [failed] = await events(svc, order.order_id)
        assert (failed["topic"], failed["payload"]["reason"]) == ("payment.failed.v1", "provider_refused")

    async def test_an_unavailable_provider_is_asked_again(self, svc: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
        provider = sandbox(svc)
        original = provider.create_intent
        calls = 0

        async def flaky(**kwargs: Any) -> Intent:
            nonlocal calls
            calls += 1
            if calls < 3:
                raise ProviderUnavailable("gateway timeout")
            return await original(**kwargs)

        monkeypatch.setattr(provider, "create_intent", flaky)
        order_id, _customer, payment = await open_payment(svc)
        assert calls == 3 and payment.status == "requested"
        assert await topics(svc, order_id) == ["payment.requested.v1"]


# The sandbox's hosted page ---------------------------------------------------------------------------------

class TestSandboxPage:
    async def test_success_authorizes_the_payment_once_the_gateway_delivers(self, svc: Harness) -> None:
        order_id, customer_id, payment = await open_payment(svc)
        before = payments_counter("authorized")
        await pay_on_sandbox(svc, customer_id, payment.id)
        shown = await read(svc, customer_id, payment.id)
        assert (shown["status"], shown["client"]) == ("authorized", {})  # nothing left to pay
        _requested, authorized = await events(svc, order_id)
        assert authorized["topic"] == "payment.authorized.v1"
        assert (authorized["payload"]["payment_id"], authorized["payload"]["amount"]) == (
            str(payment.id), {"amount": 2500, "currency": "INR"})
        assert payments_counter("authorized") == before + 1
        assert len(await receipts(svc)) == 2  # the outcome and the page's session ending

    async def test_the_answer_does_not_wait_for_the_gateway(
            self, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AMAZONLITE_PAYMENTS_SANDBOX_LATENCY_MS", "1000")
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            _order_id, customer_id, payment = await open_payment(svc)
            answer = await complete(svc, customer_id, payment.id)
            assert answer.status_code == 202, answer.text
            assert (await read(svc, customer_id, payment.id))["status"] == "requested"
            await gateway(svc).drain()
            assert (await read(svc, customer_id, payment.id))["status"] == "authorized"

    async def test_failure_fails_the_payment(self, svc: Harness) -> None:
        order_id, customer_id, payment = await open_payment(svc)
        await pay_on_sandbox(svc, customer_id, payment.id, "failure")
        assert await status(svc, order_id) == "failed"
        _requested, failed = await events(svc, order_id)
        assert (failed["topic"], failed["payload"]["reason"]) == ("payment.failed.v1", "payment_failed")

    async def test_only_the_orders_customer_completes_and_only_once(self, svc: Harness) -> None:
        order_id, customer_id, payment = await open_payment(svc)
        problem(await complete(svc, uuid.uuid4(), payment.id), 404, "payment-not-found")
        async with svc.client(user_id=uuid.uuid4(), roles=ADMIN) as admin:  # admins pay for nobody
            problem(await admin.post(f"/api/v1/payments/sandbox/{payment.id}/complete", json={"outcome": "success"}),
                    404, "payment-not-found")
        async with svc.client() as anonymous:
            problem(await anonymous.post(f"/api/v1/payments/sandbox/{payment.id}/complete",
                                         json={"outcome": "success"}), 401, "unauthorized")
        assert (await complete(svc, customer_id, payment.id)).status_code == 202
        again = problem(await complete(svc, customer_id, payment.id, "failure"), 409, "payment-not-pending")
        assert again["payment_status"] in ("requested", "authorized")
        await gateway(svc).drain()
        problem(await complete(svc, customer_id, payment.id), 409, "payment-not-pending")
        assert await topics(svc, order_id) == ["payment.requested.v1", "payment.authorized.v1"]

    async def test_auto_approve_completes_every_sandbox_payment(
            self, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AMAZONLITE_PAYMENTS_SANDBOX_AUTO_APPROVE", "true")
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            order_id, customer_id, payment = await open_payment(svc)
            await gateway(svc).drain()
            assert await topics(svc, order_id) == ["payment.requested.v1", "payment.authorized.v1"]
            problem(await complete(svc, customer_id, payment.id), 409, "payment-not-pending")


class LostDeliveries:
    """A sandbox gateway that dies holding its deliveries (the process was killed)."""

    def deliver_later(self, **_delivery: Any) -> None:
        pass


class TestSandboxRedelivery:
    """Like a real gateway retrying a webhook nobody acknowledged: a choice whose webhooks were lost
    (the process that held them died) is delivered again, once it has waited long enough."""

    async def lose_deliveries(self, svc: Harness, customer_id: uuid.UUID, payment_id: uuid.UUID,
                              outcome: str = "success") -> None:
        real = svc.runtime.state.sandbox_gateway
        svc.runtime.state.sandbox_gateway = LostDeliveries()
        try:
            assert (await complete(svc, customer_id, payment_id, outcome)).status_code == 202
        finally:
            svc.runtime.state.sandbox_gateway = real

    async def test_a_lost_delivery_is_sent_again_after_the_redelivery_interval(self, svc: Harness) -> None:
        order_id, customer_id, payment = await open_payment(svc)
        await self.lose_deliveries(svc, customer_id, payment.id)
        assert await redeliver_sandbox_webhooks(svc.runtime) == 0  # not waited long enough yet
        assert await status(svc, order_id) == "requested"
        later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=11)
        assert await redeliver_sandbox_webhooks(svc.runtime, now=later) == 1
        await gateway(svc).drain()
        assert await status(svc, order_id) == "authorized"
        assert await topics(svc, order_id) == ["payment.requested.v1", "payment.authorized.v1"]
        assert await redeliver_sandbox_webhooks(svc.runtime, now=later) == 0  # moved: nothing left to send

    async def test_a_lost_failure_is_redelivered_as_a_failure(self, svc: Harness) -> None:
        order_id, customer_id, payment = await open_payment(svc)
        await self.lose_deliveries(svc, customer_id, payment.id, "failure")
        later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=11)
        assert await redeliver_sandbox_webhooks(svc.runtime, now=later) == 1
        await gateway(svc).drain()
        assert await topics(svc, order_id) == ["payment.requested.v1", "payment.failed.v1"]

    async def test_a_redelivery_racing_the_first_delivery_has_one_effect(self, svc: Harness) -> None:
        """Two replicas (or a slow first delivery and the redelivery) send one choice's webhooks at once."""
        order_id, customer_id, payment = await open_payment(svc)
        await self.lose_deliveries(svc, customer_id, payment.id)
        other_replica = SandboxGateway(svc.runtime.db, svc.runtime.state.providers)
        stored = await payment_of(svc, order_id)
        assert stored is not None
        assert stored.reference is not None
        for deliveries in (gateway(svc), other_replica, gateway(svc)):  # the third is in flight already: skipped
            deliveries.deliver_later(tenant_id="default", reference=stored.reference, outcome="success",
                                     amount=stored.amount)
        await asyncio.gather(gateway(svc).drain(), other_replica.drain())
        assert await topics(svc, order_id) == ["payment.requested.v1", "payment.authorized.v1"]
        assert len(await receipts(svc)) == 4  # two deliveries of two webhooks: the second authorization ignored

    async def test_payments_nobody_chose_for_are_left_to_their_orders_deadline(self, svc: Harness) -> None:
        order_id, _customer_id, _payment = await open_payment(svc)
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        assert await redeliver_sandbox_webhooks(svc.runtime, now=later) == 0
        assert await status(svc, order_id) == "requested"


# Webhooks ------------------------------------------------------------------------------------------------------

class TestWebhooks:
    async def test_a_replayed_webhook_changes_nothing(self, svc: Harness) -> None:
        order_id, _customer, payment = await open_payment(svc)
        authorized = webhook(svc, payment)
        for _ in range(3):
            answer = await post_webhook(svc, authorized)
            assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
        assert await topics(svc, order_id) == ["payment.requested.v1", "payment.authorized.v1"]
        assert len(await receipts(svc)) == 1

    async def test_a_bad_signature_is_refused_and_changes_nothing(self, svc: Harness) -> None:
        order_id, _customer, payment = await open_payment(svc)
        body, headers = webhook(svc, payment)
        tampered = body.replace(b'"amount":2500', b'"amount":1')
        problem(await post_webhook(svc, (tampered, headers)), 401, "invalid-signature")
        forged = hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
        problem(await post_webhook(svc, (body, {**headers, "X-Sandbox-Signature": forged})), 401, "invalid-signature")
        problem(await post_webhook(svc, (body, {"X-Sandbox-Event-Id": headers["X-Sandbox-Event-Id"]})), 401,
                "invalid-signature")
        assert await status(svc, order_id) == "requested"
        assert await receipts(svc) == []
        assert await topics(svc, order_id) == ["payment.requested.v1"]

    async def test_a_malformed_webhook_or_an_unknown_provider_is_refused(self, svc: Harness) -> None:
        body = json.dumps({"id": "evt_1", "type": "payment.authorized", "data": {}}).encode()
        signature = hmac.new(DEV_SANDBOX_WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"X-Sandbox-Signature": signature, "X-Sandbox-Event-Id": "evt_1"}
        problem(await post_webhook(svc, (body, headers)), 400, "malformed-webhook")
        problem(await post_webhook(svc, (body, headers), provider="paypal"), 404, "payment-provider-not-found")
        assert await receipts(svc) == []

    async def test_a_webhook_about_no_payment_here_is_noted(self, svc: Harness) -> None:
        noted = sandbox(svc).signed_webhook("payment.authorized", reference="sbx_unknown", amount=100)
        assert (await post_webhook(svc, noted)).status_code == 200
        assert len(await receipts(svc)) == 1

    async def test_events_out_of_order_never_move_a_payment_back(self, svc: Harness) -> None:
        order_id, _customer, payment = await open_payment(svc)
        assert (await post_webhook(svc, webhook(svc, payment))).status_code == 200
        assert (await post_webhook(svc, webhook(svc, payment, "payment.failed", reason="card_declined"))
                ).status_code == 200
        assert (await post_webhook(svc, webhook(svc, payment))).status_code == 200  # redelivered with a new id
        assert await status(svc, order_id) == "authorized"
        assert await topics(svc, order_id) == ["payment.requested.v1", "payment.authorized.v1"]

    async def test_money_taken_after_a_failure_is_refunded(self, svc: Harness) -> None:
        order_id, _customer, payment = await open_payment(svc)
        await post_webhook(svc, webhook(svc, payment, "payment.failed", reason="card_declined"))
        await post_webhook(svc, webhook(svc, payment, provider_payment_id="sbxpay_second_try"))
        assert await status(svc, order_id) == "refunded"
        _requested, failed, refunded = await events(svc, order_id)
        assert (failed["topic"], failed["payload"]["reason"]) == ("payment.failed.v1", "card_declined")
        assert (refunded["topic"], refunded["payload"]["kind"], refunded["payload"]["reason"]) == (
            "payment.refunded.v1", "refund", "late_payment")
        [refund] = await refunds_of(svc, payment.id)
        assert (refund.amount, refund.status) == (2500, "issued")

    async def test_money_that_does_not_pay_the_order_is_given_back(self, svc: Harness) -> None:
        order_id, _customer, payment = await open_payment(svc, amount=2500)
        await post_webhook(svc, webhook(svc, payment, amount=100))
        assert await status(svc, order_id) == "refunded"
        _requested, failed, refunded = await events(svc, order_id)
        assert (failed["topic"], failed["payload"]["reason"]) == ("payment.failed.v1", "amount_mismatch")
        assert (refunded["topic"], refunded["payload"]["amount"]["amount"]) == ("payment.refunded.v1", 100)


# Cancelled orders ------------------------------------------------------------------------------------------------

def confirmed(order_id: uuid.UUID) -> OrderConfirmedV1:
    return OrderConfirmedV1(order_id=order_id, customer_id=uuid.uuid4(), coupon_code=None,
                            confirmed_at=dt.datetime.now(dt.UTC))


class TestCapture:
    """The money is taken when the order is confirmed: the confirmation makes the payment due, and the
    capture job takes it, again and again until the provider answers."""

    async def test_a_confirmed_order_has_its_authorized_money_captured_once(
            self, svc: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
        order_id, customer_id, payment = await open_payment(svc)
        await pay_on_sandbox(svc, customer_id, payment.id)
        captures: list[dict[str, Any]] = []

        async def capture(**call: Any) -> None:
            captures.append(call)

        monkeypatch.setattr(sandbox(svc), "capture", capture)
        before = payments_counter("captured")
        await svc.deliver(confirmed(order_id))
        await svc.deliver(confirmed(order_id))  # delivered again: due already
        assert await status(svc, order_id) == "capture_due"
        assert await capture_due(svc.runtime) == 1
        assert await capture_due(svc.runtime) == 0
        assert await status(svc, order_id) == "captured"
        stored = await payment_of(svc, order_id)
        assert stored is not None
        assert captures == [{"provider_payment_id": stored.provider_payment_id, "amount": 2500, "currency": "INR"}]
        assert payments_counter("captured") == before + 1
        assert await topics(svc, order_id) == ["payment.requested.v1", "payment.authorized.v1"]

    async def test_a_provider_that_cannot_capture_now_is_asked_again_on_the_next_pass(
            self, svc: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
        order_id, customer_id, payment = await open_payment(svc)
        await pay_on_sandbox(svc, customer_id, payment.id)
        await svc.deliver(confirmed(order_id))

        async def unavailable(**_call: Any) -> None:
            raise ProviderUnavailable("the gateway is down")

        async def refused(**_call: Any) -> None:
            raise ProviderRefused("the authorization expired")

        for failure in (unavailable, refused):
            monkeypatch.setattr(sandbox(svc), "capture", failure)
            assert await capture_due(svc.runtime) == 0
            assert await status(svc, order_id) == "capture_due"  # nothing written, still due
        monkeypatch.undo()
        assert await capture_due(svc.runtime) == 1
        assert await status(svc, order_id) == "captured"
        assert await svc.runtime.consumer.dead_letters() == []

    async def test_money_due_for_capture_of_an_order_cancelled_meanwhile_is_given_back(self, svc: Harness) -> None:
        order_id, customer_id, payment = await open_payment(svc)
        await pay_on_sandbox(svc, customer_id, payment.id)
        await svc.deliver(confirmed(order_id))
        await svc.deliver(cancelled(order_id))
        assert await status(svc, order_id) == "refunded"
        assert await capture_due(svc.runtime) == 0
        assert len(await refunds_of(svc, payment.id)) == 1

    async def test_a_captured_payment_of_a_cancelled_order_is_refunded(self, svc: Harness) -> None:
        order_id, customer_id, payment = await open_payment(svc)
        await pay_on_sandbox(svc, customer_id, payment.id)
        await svc.deliver(confirmed(order_id))
        await capture_due(svc.runtime)
        await svc.deliver(cancelled(order_id))
        assert await status(svc, order_id) == "refunded"
        assert len(await refunds_of(svc, payment.id)) == 1


class TestCancellation:
    async def test_a_waiting_payment_is_voided(self, svc: Harness) -> None:
        order_id, customer_id, payment = await open_payment(svc)
        before = payments_counter("voided")
        await svc.deliver(cancelled(order_id, reason="payment_timeout"))
        assert await status(svc, order_id) == "voided"
        _requested, voided = await events(svc, order_id)
        assert voided["topic"] == "payment.refunded.v1"
        assert (voided["payload"]["kind"], voided["payload"]["reason"], voided["payload"]["amount"]) == (
            "void", "payment_timeout", {"amount": 2500, "currency": "INR"})
        assert payments_counter("voided") == before + 1
        assert (await read(svc, customer_id, payment.id))["client"] == {}
        problem(await complete(svc, customer_id, payment.id), 409, "payment-not-pending")

    async def test_a_paid_payment_is_refunded(self, svc: Harness) -> None:
        order_id, customer_id, payment = await open_payment(svc)
        await pay_on_sandbox(svc, customer_id, payment.id)
        before = payments_counter("refunded")
        await svc.deliver(cancelled(order_id))
        await svc.deliver(cancelled(order_id))  # another delivery, another event id
        assert await status(svc, order_id) == "refunded"
        topics_ = await topics(svc, order_id)
        assert topics_ == ["payment.requested.v1", "payment.authorized.v1", "payment.refunded.v1"]
        refunded = (await events(svc, order_id))[-1]["payload"]
        assert (refunded["kind"], refunded["reason"]) == ("refund", "customer")
        assert payments_counter("refunded") == before + 1
        [refund] = await refunds_of(svc, payment.id)
        assert (refund.idempotency_key, refund.amount, refund.status) == (f"refund-{payment.id.hex}", 2500, "issued")
        # The gateway says the money went back.
        settled = await payment_of(svc, order_id)
        assert settled is not None and settled.provider_payment_id is not None
        await post_webhook(svc, webhook(svc, payment, "refund.processed",
                                        provider_payment_id=settled.provider_payment_id))
        [refund] = await refunds_of(svc, payment.id)
        assert refund.status == "processed"
        assert await topics(svc, order_id) == topics_

    async def test_money_arriving_after_the_cancellation_is_refunded_at_once(self, svc: Harness) -> None:
        order_id, _customer, payment = await open_payment(svc)
        await svc.deliver(cancelled(order_id))
        await post_webhook(svc, webhook(svc, payment))  # the customer paid as the order was cancelled
        assert await status(svc, order_id) == "refunded"
        _requested, voided, refunded = await events(svc, order_id)
        assert voided["payload"]["kind"] == "void"
        assert (refunded["topic"], refunded["payload"]["kind"], refunded["payload"]["reason"]) == (
            "payment.refunded.v1", "refund", "order_cancelled")
        assert len(await refunds_of(svc, payment.id)) == 1

    async def test_an_order_cancelled_before_its_reservation_gets_no_payment(self, svc: Harness) -> None:
        order = order_created()
        await svc.deliver(order)
        await svc.deliver(cancelled(order.order_id))
        await svc.deliver(reserved(order.order_id))
        payment = await payment_of(svc, order.order_id)
        assert payment is not None and (payment.status, payment.reference) == ("cancelled", None)
        assert await topics(svc, order.order_id) == []


# Reading ---------------------------------------------------------------------------------------------------------

class TestReading:
    async def test_the_customer_and_admins_read_a_payment_and_nobody_else(self, svc: Harness) -> None:
        _order_id, customer_id, payment = await open_payment(svc)
        shown = await read(svc, customer_id, payment.id)
        assert set(shown) == {"id", "order_id", "provider", "status", "amount", "client", "created_at", "updated_at"}
        assert (shown["id"], shown["provider"], shown["amount"]) == (
            str(payment.id), "sandbox", {"amount": 2500, "currency": "INR"})
        async with svc.client(user_id=uuid.uuid4(), roles=ADMIN) as admin:
            assert (await admin.get(f"/api/v1/payments/{payment.id}")).status_code == 200
        async with customer(svc, uuid.uuid4()) as stranger:
            problem(await stranger.get(f"/api/v1/payments/{payment.id}"), 404, "payment-not-found")
        async with svc.client(tenant="other", user_id=uuid.uuid4(), roles=ADMIN) as elsewhere:
            problem(await elsewhere.get(f"/api/v1/payments/{payment.id}"), 404, "payment-not-found")
        async with svc.client() as anonymous:
            problem(await anonymous.get(f"/api/v1/payments/{payment.id}"), 401, "unauthorized")


# Razorpay's client callback ----------------------------------------------------------------------------------

RAZORPAY_KEY_SECRET = "razorpay-key-secret"
RAZORPAY_WEBHOOK_SECRET = "razorpay-webhook-secret"
RAZORPAY_ORDER = "order_TESTPAY00001"


class TestClientCallback:
    async def test_a_verified_callback_authorizes_and_a_forged_one_is_refused(
            self, svc: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
        razorpay = RazorpayProvider(key_id="rzp_test_key", key_secret=RAZORPAY_KEY_SECRET,
                                    webhook_secret=RAZORPAY_WEBHOOK_SECRET)

        async def create_intent(**_: Any) -> Intent:  # Razorpay's orders API, faked at the edge
            return Intent(reference=RAZORPAY_ORDER, client={"key_id": "rzp_test_key", "order_id": RAZORPAY_ORDER})

        monkeypatch.setattr(razorpay, "create_intent", create_intent)
        svc.runtime.state.providers["razorpay"] = razorpay
        order_id, customer_id, payment = await open_payment(svc, provider="razorpay")
        verify = f"/api/v1/payments/{payment.id}/verify"
        signed = hmac.new(RAZORPAY_KEY_SECRET.encode(), f"{RAZORPAY_ORDER}|pay_1".encode(), hashlib.sha256).hexdigest()
        fields = {"razorpay_order_id": RAZORPAY_ORDER, "razorpay_payment_id": "pay_1", "razorpay_signature": signed}

        async with customer(svc, customer_id) as api:
            problem(await api.post(verify, json={**fields, "razorpay_payment_id": "pay_2"}), 401, "invalid-signature")
            problem(await api.post(f"/api/v1/payments/sandbox/{payment.id}/complete", json={"outcome": "success"}),
                    409, "not-a-sandbox-payment")
            async with customer(svc, uuid.uuid4()) as stranger:
                problem(await stranger.post(verify, json=fields), 404, "payment-not-found")
            assert await status(svc, order_id) == "requested"
            answer = await api.post(verify, json=fields)
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "authorized"
            assert (await api.post(verify, json=fields)).json()["status"] == "authorized"  # again: nothing more
        assert await topics(svc, order_id) == ["payment.requested.v1", "payment.authorized.v1"]

        # Razorpay's webhook says it captured the payment: a step forward, and no second authorization.
        body = json.dumps({"event": "payment.captured", "payload": {"payment": {"entity": {
            "id": "pay_1", "order_id": RAZORPAY_ORDER, "amount": 2500}}}}).encode()
        headers = {"X-Razorpay-Signature": hmac.new(RAZORPAY_WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest(),
                   "X-Razorpay-Event-Id": "evt_rzp_1"}
        assert (await post_webhook(svc, (body, headers), provider="razorpay")).status_code == 200
        assert await status(svc, order_id) == "captured"
        assert await topics(svc, order_id) == ["payment.requested.v1", "payment.authorized.v1"]


# Concurrency -------------------------------------------------------------------------------------------------

class TestConcurrentWebhooks:
    async def test_webhooks_racing_for_one_payment_apply_once(self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            order_id, _customer, payment = await open_payment(svc)
            authorized = webhook(svc, payment)
            failed = webhook(svc, payment, "payment.failed", reason="card_declined")

            async def send(delivery: tuple[bytes, dict[str, str]]) -> int:
                """As a gateway does: again while the answer says to retry."""
                for _ in range(100):
                    answer = await post_webhook(svc, delivery)
                    if answer.status_code != 409:
                        return answer.status_code
                    await asyncio.sleep(0.01)
                return 409

            answers = await asyncio.gather(*(send(authorized) for _ in range(4)), send(failed), send(failed))
            assert set(answers) == {200}
            final = await status(svc, order_id)
            found = await topics(svc, order_id)
            # Whichever came first decided: paid, or declined with the money that came after it given back.
            assert (final, found) in (
                ("authorized", ["payment.requested.v1", "payment.authorized.v1"]),
                ("refunded", ["payment.requested.v1", "payment.failed.v1", "payment.refunded.v1"]))
            assert len(await receipts(svc)) == 2
            assert len(await refunds_of(svc, payment.id)) == (1 if final == "refunded" else 0)
