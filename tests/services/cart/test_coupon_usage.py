"""Coupon uses are counted from order events, once per order, within the limit, under concurrency,
on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select

from amazonlite.contracts.orders import OrderCancelledV1, OrderConfirmedV1
from amazonlite.services.cart.app import SERVICE
from amazonlite.services.cart.models import MESSAGING, CouponRedemption
from tests.support.harness import Harness, running_service

TENANT = "shop"


def confirmed(code: str | None, *, order_id: uuid.UUID | None = None,
              customer_id: uuid.UUID | None = None) -> OrderConfirmedV1:
    return OrderConfirmedV1(order_id=order_id or uuid.uuid4(), customer_id=customer_id or uuid.uuid4(),
                            coupon_code=code, confirmed_at=dt.datetime.now(dt.UTC))


def cancelled(code: str | None, *, order_id: uuid.UUID, customer_id: uuid.UUID | None = None) -> OrderCancelledV1:
    return OrderCancelledV1(order_id=order_id, customer_id=customer_id or uuid.uuid4(), reason="customer",
                            coupon_code=code, cancelled_at=dt.datetime.now(dt.UTC))


async def make(svc: Harness, code: str, **terms: Any) -> None:
    async with svc.client(tenant=TENANT, user_id=uuid.uuid4(), roles=("tenant_admin",)) as admin:
        answer = await admin.post("/api/v1/coupons", json={"code": code, "kind": "percent", "value": 10, **terms})
        assert answer.status_code == 201, answer.text


async def used(svc: Harness, code: str, *, tenant: str = TENANT) -> int:
    async with svc.client(tenant=tenant, user_id=uuid.uuid4(), roles=("tenant_admin",)) as admin:
        return int((await admin.get(f"/api/v1/coupons/{code}")).json()["used_count"])


async def outcomes(svc: Harness) -> list[str]:
    table = CouponRedemption.__table__
    async with svc.runtime.db.engine.connect() as conn:
        return sorted((await conn.scalars(select(table.c.outcome))).all())


async def dead_letters(svc: Harness) -> int:
    async with svc.runtime.db.engine.connect() as conn:
        return len((await conn.execute(select(MESSAGING.dead_letters.c.id))).all())


class TestConcurrentConfirmations:
    async def test_twenty_confirmations_of_a_five_use_coupon_count_five(self, any_database_url: str,
                                                                        tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            await make(svc, "FIVE", usage_limit=5)
            await asyncio.gather(*(svc.deliver(confirmed("five"), tenant=TENANT) for _ in range(20)))
            assert await used(svc, "FIVE") == 5
            assert await outcomes(svc) == ["counted"] * 5 + ["over_limit"] * 15
            assert await dead_letters(svc) == 0

    async def test_one_customer_confirming_a_once_per_customer_coupon_concurrently_counts_once(
            self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            await make(svc, "ONCE", once_per_customer=True)
            customer = uuid.uuid4()
            await asyncio.gather(*(svc.deliver(confirmed("ONCE", customer_id=customer), tenant=TENANT)
                                   for _ in range(10)))
            assert await used(svc, "ONCE") == 1
            assert await outcomes(svc) == ["already_used"] * 9 + ["counted"]
            assert await dead_letters(svc) == 0


class TestCounting:
    async def test_every_event_is_applied_once(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await make(svc, "SALE", usage_limit=2)
            order, customer = uuid.uuid4(), uuid.uuid4()
            event_id = uuid.uuid4()
            confirmation = confirmed("SALE", order_id=order, customer_id=customer)
            await svc.deliver(confirmation, tenant=TENANT, event_id=event_id)
            await svc.deliver(confirmation, tenant=TENANT, event_id=event_id)  # redelivered
            await svc.deliver(confirmed("SALE", order_id=order, customer_id=customer), tenant=TENANT)  # again
            assert await used(svc, "SALE") == 1

            cancel_id = uuid.uuid4()
            for _ in range(2):
                await svc.deliver(cancelled("SALE", order_id=order, customer_id=customer), tenant=TENANT,
                                  event_id=cancel_id)
            await svc.deliver(cancelled("SALE", order_id=order, customer_id=customer), tenant=TENANT)
            assert await used(svc, "SALE") == 0  # given back once
            await svc.deliver(confirmed("SALE", order_id=order, customer_id=customer), tenant=TENANT)
            assert await used(svc, "SALE") == 0  # a cancelled order never counts again
            assert await outcomes(svc) == ["released"]

    async def test_a_cancellation_before_the_confirmation_counts_nothing(self, sqlite_url: str,
                                                                         tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await make(svc, "SALE")
            order = uuid.uuid4()
            await svc.deliver(cancelled("SALE", order_id=order), tenant=TENANT)
            await svc.deliver(confirmed("SALE", order_id=order), tenant=TENANT)
            assert await used(svc, "SALE") == 0
            assert await outcomes(svc) == ["cancelled"]

    async def test_an_uncounted_confirmation_gives_nothing_back_when_cancelled(self, sqlite_url: str,
                                                                              tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await make(svc, "ONE", usage_limit=1)
            first, second = uuid.uuid4(), uuid.uuid4()
            await svc.deliver(confirmed("ONE", order_id=first), tenant=TENANT)
            await svc.deliver(confirmed("ONE", order_id=second), tenant=TENANT)  # over the limit
            await svc.deliver(cancelled("ONE", order_id=second), tenant=TENANT)
            assert await used(svc, "ONE") == 1
            await svc.deliver(cancelled("ONE", order_id=first), tenant=TENANT)
            assert await used(svc, "ONE") == 0
            assert await outcomes(svc) == ["over_limit", "released"]

    async def test_a_customer_whose_use_was_given_back_may_use_it_again(self, sqlite_url: str,
                                                                       tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await make(svc, "ONCE", once_per_customer=True)
            customer, order = uuid.uuid4(), uuid.uuid4()
            await svc.deliver(confirmed("ONCE", order_id=order, customer_id=customer), tenant=TENANT)
            await svc.deliver(cancelled("ONCE", order_id=order, customer_id=customer), tenant=TENANT)
            await svc.deliver(confirmed("ONCE", customer_id=customer), tenant=TENANT)
            assert await used(svc, "ONCE") == 1

    async def test_events_without_a_coupon_or_of_another_tenant_change_nothing(self, sqlite_url: str,
                                                                               tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await make(svc, "SALE")
            await svc.deliver(confirmed(None), tenant=TENANT)
            await svc.deliver(confirmed("SALE"), tenant="elsewhere")  # no such coupon in that tenant
            await svc.deliver(confirmed("UNKNOWN"), tenant=TENANT)
            assert await used(svc, "SALE") == 0
            assert await outcomes(svc) == []
            assert await dead_letters(svc) == 0
