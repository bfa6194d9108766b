from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from amazonlite.services.payments.app import SERVICE
from tests.support.harness import Harness, running_service


@pytest_asyncio.fixture
async def svc(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    """The payments service on its own SQLite database, with the sandbox's webhooks delivered in the
    background drained before it stops."""
    async with running_service(SERVICE, sqlite_url, tmp_path) as started:
        yield started
        await started.runtime.state.sandbox_gateway.drain()
