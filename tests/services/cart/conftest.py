from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.services.cart.shop import Shop, running_shop


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    """One shop per test module (each test makes its own tenant): four services started once."""
    data_dir: Path = tmp_path_factory.mktemp("shop")
    async with running_shop(data_dir) as started:
        yield started
