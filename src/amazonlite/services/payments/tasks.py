"""Start-up, and the service's background work: captures, and the sandbox gateway's webhook
deliveries and redeliveries.

`payments.capture_due` takes the money of confirmed orders (`service.capture`), each payment in a unit
of work of its own tenant, every `capture_interval_seconds`: a provider that cannot answer, or
refuses, leaves the payment due for the next pass (a refusal is logged as an error: an operator
looks). Safe in several replicas: a payment is captured over the version it was read at, once.

At start: the providers this deployment offers (`runtime.state.providers`) and the sandbox's gateway
(`runtime.state.sandbox_gateway`, which holds its delivery tasks). An order's deadline (orders'
sweeper) ends a payment nobody completes, with `order.cancelled.v1`.

The sandbox gateway's side of its hosted page: once the customer chose an outcome there, it sends
the sandbox's signed webhooks, after its latency, as a real gateway does after a customer paid.
They are delivered in-process, to the service function the webhook endpoint calls
(`service.receive_webhook`), signature check and de-duplication included, each webhook in a unit of
work of its own in the payment's tenant (one that loses a race is done again). The customer's
request does not wait for them. A deployment whose sandbox should sit even further away could post
the same bodies and headers to the public webhook URL instead (`public_base_url` +
`/api/v1/payments/webhooks/sandbox`, through the gateway and the tenant's host); in-process needs
neither a route back into the platform nor the tenant's host name.

Deliveries are background tasks (`payments.deliver_sandbox_webhooks`) kept referenced by the gateway
(so none is collected half-way); `drain()` waits for every one, those they start included. A
delivery can be lost (the process ends with it, killed or restarted) or fail: like a real gateway
retrying a webhook nobody acknowledged, the periodic `payments.redeliver_sandbox_webhooks` sends a
payment's webhooks again while its outcome is chosen and no webhook has moved it, every
`sandbox_redelivery_seconds`, from any replica (de-duplication and the payment's version make a
second delivery, or two replicas redelivering at once, harmless).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import cast

import structlog

from amazonlite.platform.context import bind_tenant
from amazonlite.platform.db import Database, is_transient_conflict, utcnow
from amazonlite.platform.service import PeriodicTask, ServiceRuntime
from amazonlite.platform.tenancy import UNSCOPED
from amazonlite.services.payments import service
from amazonlite.services.payments.errors import PaymentProviderUnavailable
from amazonlite.services.payments.providers import ProviderRefused, SandboxProvider, build_providers
from amazonlite.services.payments.providers.base import DEV_SANDBOX_WEBHOOK_SECRET
from amazonlite.services.payments.providers.sandbox import Webhook
from amazonlite.services.payments.repository import PaymentRepository
from amazonlite.services.payments.settings import PaymentsSettings

log = structlog.get_logger("amazonlite.payments")

CONFLICT_ATTEMPTS = 10
REDELIVERY_BATCH = 500  # payments redelivered per pass, at most
CAPTURE_BATCH = 200  # payments captured per unit of listing


class SandboxGateway:
    """`service.HostedPage` for the sandbox: delivers its webhooks later, in the background."""

    def __init__(self, db: Database, providers: service.Providers) -> None:
        self.db = db
        self.providers = providers
        self.tasks: set[asyncio.Task[None]] = set()
        self.in_flight: set[str] = set()  # the intents whose webhooks this process is delivering

    def deliver_later(self, *, tenant_id: str, reference: str, outcome: service.Outcome, amount: int) -> None:
        if reference in self.in_flight:
            return
        self.in_flight.add(reference)
        task = asyncio.create_task(self._deliver(tenant_id, reference, outcome, amount),
                                   name="payments.deliver_sandbox_webhooks")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(lambda _task: self.in_flight.discard(reference))

    async def drain(self) -> None:
        """Wait until every delivery scheduled so far (and any they scheduled) is done."""
        while self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _deliver(self, tenant_id: str, reference: str, outcome: service.Outcome, amount: int) -> None:
        sandbox = self.providers.get(SandboxProvider.name)
        assert isinstance(sandbox, SandboxProvider)  # a sandbox payment exists only where it is offered
        bind_tenant(tenant_id)
        await asyncio.sleep(sandbox.latency_s)
        for webhook in sandbox.webhooks_for(reference, outcome, amount):
            try:
                await self._deliver_one(tenant_id, webhook)
            except Exception:
                log.exception("payments.sandbox_webhook_failed", reference=reference)

    async def _deliver_one(self, tenant_id: str, webhook: Webhook) -> None:
        body, headers = webhook
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                async with self.db.session(tenant_id=tenant_id) as session:
                    await service.receive_webhook(session, self.providers, SandboxProvider.name, body=body,
                                                  headers=headers)
                return
            except Exception as exc:
                if attempt == CONFLICT_ATTEMPTS or not is_transient_conflict(exc):
                    raise
                await asyncio.sleep(random.uniform(0, 0.01 * attempt))


async def redeliver_sandbox_webhooks(runtime: ServiceRuntime, *, now: dt.datetime | None = None) -> int:
    """Send again the webhooks of every sandbox payment whose customer chose an outcome more than
    `sandbox_redelivery_seconds` (plus the sandbox's latency) before `now` and that is still
    `requested`; how many payments were redelivered."""
    settings = cast(PaymentsSettings, runtime.settings)
    gateway: SandboxGateway = runtime.state.sandbox_gateway
    waited = dt.timedelta(seconds=settings.sandbox_redelivery_seconds + settings.sandbox_latency_ms / 1000)
    # The one cross-tenant read: which payments wait, and whose. Each is delivered in its tenant.
    async with runtime.db.session(tenant_id=UNSCOPED) as session:
        waiting = await PaymentRepository(session).awaiting_webhooks(
            SandboxProvider.name, (now or utcnow()) - waited, limit=REDELIVERY_BATCH)
    for payment in waiting:
        assert payment.reference is not None  # an intent's page was used
        assert payment.hosted_outcome is not None
        log.info("payments.sandbox_webhooks_redelivered", payment_id=str(payment.id), outcome=payment.hosted_outcome)
        gateway.deliver_later(tenant_id=payment.tenant_id, reference=payment.reference,
                              outcome=cast(service.Outcome, payment.hosted_outcome), amount=payment.amount)
    return len(waiting)


async def capture_due(runtime: ServiceRuntime) -> int:
    """Capture every payment due for it, a batch per pass until none is left or none moved; how many
    were captured."""
    captured = 0
    while True:
        async with runtime.db.session(tenant_id=UNSCOPED) as session:
            due = await PaymentRepository(session).due_for_capture(limit=CAPTURE_BATCH)
        moved = 0
        for tenant, payment_id in due:
            bind_tenant(tenant)
            try:
                async with runtime.db.session(tenant_id=tenant) as session:
                    moved += await service.capture(session, runtime.state.providers, payment_id)
            except ProviderRefused as exc:
                log.error("payments.capture_refused", payment_id=str(payment_id), error=str(exc)[:300])
            except Exception as exc:
                if not (isinstance(exc, PaymentProviderUnavailable) or is_transient_conflict(exc)):
                    raise
                log.info("payments.capture_postponed", payment_id=str(payment_id), error=str(exc)[:300])
        captured += moved
        if moved == 0 or len(due) < CAPTURE_BATCH:
            return captured


async def _capture(runtime: ServiceRuntime) -> None:
    await capture_due(runtime)


async def _redeliver(runtime: ServiceRuntime) -> None:
    await redeliver_sandbox_webhooks(runtime)


def tasks(settings: PaymentsSettings) -> list[PeriodicTask]:
    jobs = [PeriodicTask("payments.capture_due", settings.capture_interval_seconds, _capture)]
    if settings.sandbox_enabled:
        jobs.append(PeriodicTask("payments.redeliver_sandbox_webhooks", settings.sandbox_redelivery_seconds,
                                 _redeliver))
    return jobs


async def on_startup(runtime: ServiceRuntime) -> None:
    """The providers by name (`runtime.state.providers`) and the sandbox's gateway
    (`runtime.state.sandbox_gateway`)."""
    settings = cast(PaymentsSettings, runtime.settings)
    runtime.state.providers = build_providers(settings)
    runtime.state.sandbox_gateway = SandboxGateway(runtime.db, runtime.state.providers)
    log.info("payments.providers", providers=sorted(runtime.state.providers))
    if settings.sandbox_enabled and settings.sandbox_webhook_secret.get_secret_value() == DEV_SANDBOX_WEBHOOK_SECRET:
        log.warning("payments.development_sandbox_secret",
                    detail="sandbox webhooks are signed with the public development secret")
