from __future__ import annotations

import asyncio

from amazonlite.platform.migrations import upgrade
from amazonlite.services.cart.app import SERVICE


async def test_the_history_upgrades_an_empty_database_on_every_store(any_database_url: str) -> None:
    await asyncio.to_thread(upgrade, SERVICE.name, SERVICE.migrations, any_database_url)
    await asyncio.to_thread(upgrade, SERVICE.name, SERVICE.migrations, any_database_url)  # at head: nothing to do
