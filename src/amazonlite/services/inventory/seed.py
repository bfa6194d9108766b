"""Demo stock (`amazonlite seed`): a second warehouse and stock for every SKU the catalog's seed
created. It runs after the catalog's seed, whose product events have reached inventory's consumer."""

from __future__ import annotations

import zlib

import structlog

from amazonlite.platform.service import ServiceRuntime
from amazonlite.services.inventory import service

log = structlog.get_logger("amazonlite.inventory")


def demo_amounts(sku: str) -> tuple[int, int]:
    """Deterministic units for `default` (20-60) and `east` (10-30)."""
    digest = zlib.crc32(sku.encode())
    return 20 + digest % 41, 10 + (digest // 41) % 21


async def seed(runtime: ServiceRuntime, tenant_id: str) -> None:
    """The warehouse `east` and stock for each SKU of the tenant that has none yet: a second run
    changes nothing."""
    async with runtime.db.session(tenant_id=tenant_id) as session:
        stocked = await service.seed_stock(session, demo_amounts)
    log.info("inventory.seeded", tenant_id=tenant_id, skus=stocked)
