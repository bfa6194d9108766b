"""How the tenant-scope walk (test_tenant_scope_walk.py) calls each public method of the payments
service's repositories. A method missing here fails `test_every_repository_method_has_a_plan`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from amazonlite.services.payments.models import KnownOrder, Refund
from tests.platform.tenant_walk import Add, Plan, Read, Rows, World, Write, later


async def _issued_then_processed(r: Any, t: Rows, w: World) -> int:
    # The walk's refund row has a made-up status: make it one the provider has not confirmed yet
    # (in the session's own scope), then mark it processed.
    await r.session.execute(update(Refund).where(Refund.payment_id == t.refunds.payment_id).values(status="issued")
                            .execution_options(synchronize_session=False))
    return int(await r.mark_processed(t.refunds.payment_id))


async def _noted_before_creation(r: Any, t: Rows, w: World) -> int:
    # The walk's row is a complete one: make it one noted early (in the session's own scope), then note.
    await r.session.execute(update(KnownOrder).where(KnownOrder.id == t.known_orders.id).values(customer_id=None)
                            .execution_options(synchronize_session=False))
    return int(await r.write_before_creation(t.known_orders, cancelled_early="noted by the walk"))


async def _chosen_on_the_page(r: Any, t: Rows, w: World) -> None:
    await r.step(t.payments, status="requested", hosted_outcome="success", updated_at=w.now)


async def _due_for_capture(r: Any, t: Rows, w: World) -> None:
    await r.step(t.payments, status="capture_due")


PLANS: dict[str, dict[str, Plan]] = {
    "KnownOrderRepository": {
        "get": Read(lambda r, t, w: r.get(t.known_orders.order_id)),
        "add": Add("known_orders"),
        "write_before_creation": Write(_noted_before_creation),
    },
    "PaymentRepository": {
        "get": Read(lambda r, t, w: r.get(t.payments.id)),
        "of_order": Read(lambda r, t, w: r.of_order(t.payments.order_id)),
        "by_reference": Read(lambda r, t, w: r.by_reference(t.payments.provider, t.payments.reference)),
        "by_provider_payment_id": Read(lambda r, t, w: r.by_provider_payment_id(t.payments.provider,
                                                                               t.payments.provider_payment_id)),
        "add": Add("payments"),
        "step": Write(lambda r, t, w: r.step(t.payments, status="failed")),
        "awaiting_webhooks": Read(lambda r, t, w: r.awaiting_webhooks(t.payments.provider, later(w), limit=10),
                                  prepare=_chosen_on_the_page),
        "due_for_capture": Read(lambda r, t, w: r.due_for_capture(limit=10), prepare=_due_for_capture),
    },
    "ReceiptRepository": {
        "add": Add("webhook_receipts"),
    },
    "RefundRepository": {
        "add": Add("refunds"),
        "of_payment": Read(lambda r, t, w: r.of_payment(t.refunds.payment_id)),
        "mark_processed": Write(_issued_then_processed),
    },
}
