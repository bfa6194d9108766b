"""How the tenant-scope walk (test_tenant_scope_walk.py) calls each public method of the orders
service's repositories. A method missing here fails `test_every_repository_method_has_a_plan`."""

from __future__ import annotations

from typing import Any

from tests.platform.tenant_walk import Add, Plan, Read, Rows, World, Write, later


async def _overdue(r: Any, t: Rows, w: World) -> None:
    await r.step(t.orders, status="PAYMENT_PENDING", deadline_at=w.now)


PLANS: dict[str, dict[str, Plan]] = {
    "OrderRepository": {
        "get": Read(lambda r, t, w: r.get(t.orders.id)),
        "page_of": Read(lambda r, t, w: r.page_of(t.orders.customer_id, limit=10, before=None)),
        "add": Add("orders"),
        "step": Write(lambda r, t, w: r.step(t.orders, status="CANCELLED")),
        "due": Read(lambda r, t, w: r.due(later(w), limit=10), prepare=_overdue),
    },
    "StepRepository": {
        "add": Add("order_steps"),
        "of_order": Read(lambda r, t, w: r.of_order(t.order_steps.order_id)),
        "of_orders": Read(lambda r, t, w: r.of_orders([t.order_steps.order_id])),
    },
}
