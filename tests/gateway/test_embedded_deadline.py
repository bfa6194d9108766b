"""The gateway's deadline on a service mounted in its process: until the service starts its answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from amazonlite.gateway.app import GatewaySettings, Upstream, create_gateway
from amazonlite.platform.config import PlatformSettings
from amazonlite.platform.revocation import MemoryRevocationStore
from tests.gateway.support import client_of, kernel_app

DEADLINE = 0.3


def slow_catalog(platform: PlatformSettings, events: list[str]) -> FastAPI:
    app = kernel_app("catalog", platform)

    @app.get("/api/v1/products/stuck")
    async def stuck() -> dict[str, str]:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise
        return {"status": "late"}

    @app.get("/api/v1/products/trickle")
    async def trickle() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for part in (b"one ", b"two ", b"three"):
                await asyncio.sleep(DEADLINE * 0.6)  # the whole answer takes longer than the deadline
                yield part

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/api/v1/products/quick")
    async def quick() -> dict[str, str]:
        return {"status": "ok"}

    return app


def gateway(platform: PlatformSettings, events: list[str]) -> FastAPI:
    return create_gateway(platform, [Upstream("catalog", app=slow_catalog(platform, events))],
                          revocations=MemoryRevocationStore(),
                          settings=GatewaySettings(upstream_timeout_seconds=DEADLINE))


class TestEmbeddedDeadline:
    async def test_a_service_that_does_not_start_its_answer_in_time_is_504_and_its_work_is_cancelled(
            self, platform: PlatformSettings) -> None:
        events: list[str] = []
        async with client_of(gateway(platform, events)) as client:
            stuck = await client.get("/api/v1/products/stuck")
            quick = await client.get("/api/v1/products/quick")
        assert stuck.status_code == 504
        assert stuck.json()["type"].endswith("/upstream-timeout")
        assert events == ["cancelled"]
        assert quick.status_code == 200

    async def test_an_answer_that_has_started_streams_on_past_the_deadline(self, platform: PlatformSettings) -> None:
        async with client_of(gateway(platform, [])) as client:
            answer = await client.get("/api/v1/products/trickle")
        assert answer.status_code == 200
        assert answer.text == "one two three"
