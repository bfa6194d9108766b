"""The gateway's own endpoints and edge: health, metrics, body limit, lifespan hooks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI

from amazonlite.gateway.app import GatewaySettings, Upstream, create_gateway
from amazonlite.platform.config import PlatformSettings
from amazonlite.platform.revocation import MemoryRevocationStore
from amazonlite.services.users.app import SERVICE as USERS
from tests.gateway.support import client_of, echo_app, free_port
from tests.support.harness import fast_platform_settings as settings_for_tests
from tests.support.harness import running_service


class TestHealth:
    async def test_live(self, gateway: FastAPI) -> None:
        async with client_of(gateway) as client:
            answer = await client.get("/health/live")
        assert answer.json() == {"status": "ok"}

    async def test_ready_asks_every_upstream(self, sqlite_url: str, tmp_path: Path, platform: PlatformSettings,
                                             catalog: FastAPI) -> None:
        async with running_service(USERS, sqlite_url, tmp_path, platform=platform) as users:
            gateway = create_gateway(platform, [Upstream("users", app=users.app, ready=users.runtime.check_ready),
                                                Upstream("catalog", app=catalog)],
                                     revocations=MemoryRevocationStore())
            async with client_of(gateway) as client:
                answer = await client.get("/health/ready")
        assert answer.status_code == 200, answer.text
        assert answer.json()["checks"] == {"users.database": "ok", "users.bus": "ok", "users.consumer.users": "ok",
                                           "users.outbox": "ok", "catalog.self": "ok"}

    async def test_not_ready_when_an_embedded_upstream_fails_its_checks(
            self, platform: PlatformSettings, catalog: FastAPI) -> None:
        async def failing() -> dict[str, str]:
            return {"database": "failing: OperationalError", "bus": "ok"}

        gateway = create_gateway(platform, [Upstream("catalog", app=catalog, ready=failing)],
                                 revocations=MemoryRevocationStore())
        async with client_of(gateway) as client:
            answer = await client.get("/health/ready")
        assert answer.status_code == 503
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["checks"]["catalog.database"] == "failing: OperationalError"
        assert "catalog.database" in answer.json()["detail"]

    async def test_not_ready_when_a_remote_upstream_is_down(self, platform: PlatformSettings,
                                                            catalog: FastAPI) -> None:
        gateway = create_gateway(platform, [Upstream("catalog", app=catalog),
                                            Upstream("users", url=f"http://127.0.0.1:{free_port()}")],
                                 revocations=MemoryRevocationStore())
        async with client_of(gateway) as client:
            answer = await client.get("/health/ready")
        assert answer.status_code == 503
        assert answer.json()["checks"] == {"catalog.self": "ok", "users": "failing: ConnectError"}


class TestMetrics:
    async def test_requests_are_counted_per_route_prefix(self, gateway: FastAPI) -> None:
        async with client_of(gateway) as client:
            await client.get("/api/v1/brands/99")
            answer = await client.get("/metrics")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        assert ('amazonlite_http_requests_total{method="GET",route="/api/v1/brands",service="gateway",status="200"}'
                in answer.text)


class TestBodyLimit:
    async def test_a_body_over_the_limit_is_413_before_any_service_sees_it(self, tmp_path: Path) -> None:
        platform = settings_for_tests(tmp_path, max_body_bytes=1024)
        gateway = create_gateway(platform, [Upstream("catalog", app=echo_app("catalog", platform))],
                                 revocations=MemoryRevocationStore())

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"x" * 512

        async with client_of(gateway) as client:
            declared = await client.post("/api/v1/products", content=b"x" * 2048)
            chunked = await client.post("/api/v1/products", content=chunks())
            small = await client.post("/api/v1/products", content=b"x" * 1000)
        assert declared.status_code == 413
        assert declared.json()["type"].endswith("/payload-too-large")
        assert chunked.status_code == 413
        assert small.json()["body"] == "x" * 1000


class TestLifespan:
    async def test_startup_hooks_in_order_and_shutdown_hooks_in_reverse(
            self, platform: PlatformSettings, catalog: FastAPI) -> None:
        calls: list[str] = []

        def hook(name: str) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                calls.append(name)
            return run

        gateway = create_gateway(platform, [Upstream("catalog", app=catalog)], revocations=MemoryRevocationStore(),
                                 on_startup=[hook("start-a"), hook("start-b")],
                                 on_shutdown=[hook("stop-a"), hook("stop-b")])
        async with client_of(gateway) as client:
            assert calls == ["start-a", "start-b"]
            assert (await client.get("/api/v1/products")).status_code == 200
        assert calls == ["start-a", "start-b", "stop-b", "stop-a"]


class TestCors:
    async def test_an_allowed_origin_gets_a_preflight_answer_and_the_correlation_id_exposed(
            self, platform: PlatformSettings, catalog: FastAPI) -> None:
        gateway = create_gateway(platform, [Upstream("catalog", app=catalog)], revocations=MemoryRevocationStore(),
                                 settings=GatewaySettings(cors_allow_origins=["https://shop.example"]))
        preflight_headers = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
                             "Access-Control-Request-Headers": "authorization, x-tenant-id"}
        async with client_of(gateway) as client:
            preflight = await client.options("/api/v1/products", headers=preflight_headers)
            stranger = await client.options("/api/v1/products",
                                            headers={**preflight_headers, "Origin": "https://evil.example"})
            read = await client.get("/api/v1/products", headers={"Origin": "https://shop.example"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
        assert stranger.status_code == 400
        assert read.headers["access-control-allow-origin"] == "https://shop.example"
        assert "x-correlation-id" in read.headers["access-control-expose-headers"]
