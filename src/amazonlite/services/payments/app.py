from __future__ import annotations

from pathlib import Path

from amazonlite.platform.service import ServiceModule
from amazonlite.services.payments.endpoints import router
from amazonlite.services.payments.handlers import handlers
from amazonlite.services.payments.models import Base
from amazonlite.services.payments.settings import PaymentsSettings
from amazonlite.services.payments.tasks import on_startup, tasks

SERVICE = ServiceModule(
    name="payments",
    description="Payments: one per order, opened with the order's provider (the sandbox, Razorpay), "
                "confirmed by signed webhooks or a verified client callback, voided or refunded for a "
                "cancelled order.",
    router=router,
    metadata=Base.metadata,
    settings=PaymentsSettings,
    handlers=handlers,
    tasks=tasks(PaymentsSettings()),
    on_startup=on_startup,
    migrations=Path(__file__).parent / "migrations",
)
