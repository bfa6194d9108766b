from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.services.orders.shop import OrdersShop, running_orders


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OrdersShop]:
    """One shop per test module (each test makes its own tenant): six services started once."""
    data_dir: Path = tmp_path_factory.mktemp("orders-shop")
    async with running_orders(data_dir) as started:
        yield started
