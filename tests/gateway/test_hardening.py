"""Security headers on every answer, the client's address in the principal, and resilient upstream calls."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from amazonlite.gateway.app import GatewaySettings, Upstream, create_gateway
from amazonlite.platform.config import PlatformSettings
from amazonlite.platform.resilience import ResilienceSettings
from amazonlite.platform.revocation import MemoryRevocationStore
from tests.gateway.support import client_of, free_port, kernel_app, uvicorn_server

PRODUCTS = "/api/v1/products"
SECURITY_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
                    "x-frame-options": "DENY"}
API_CSP = "default-src 'none'; frame-ancestors 'none'"


@asynccontextmanager
async def client_from(gateway: FastAPI, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway, client=(address, 40000))
    async with gateway.router.lifespan_context(gateway), httpx.AsyncClient(
            transport=transport, base_url="http://gateway") as client:
        yield client


def csp_directives(value: str) -> dict[str, list[str]]:
    return {name: rest for name, *rest in (d.split() for d in value.split(";") if d.strip())}


class TestSecurityHeaders:
    async def test_every_answer_carries_them(self, gateway: FastAPI) -> None:
        async with client_of(gateway) as client:
            answers = [await client.get(PRODUCTS), await client.get("/api/v1/nowhere"),
                       await client.get("/health/live"), await client.get("/openapi.json"),
                       await client.get(PRODUCTS, headers={"X-Tenant-ID": "Not Valid"})]
        assert [a.status_code for a in answers] == [200, 404, 200, 200, 400]
        for answer in answers:
            for name, value in SECURITY_HEADERS.items():
                assert answer.headers.get_list(name) == [value], (answer.url, name)
            assert answer.headers["content-security-policy"] == API_CSP
            assert "strict-transport-security" not in answer.headers

    async def test_hsts_when_behind_tls(self, platform: PlatformSettings, catalog: FastAPI) -> None:
        gateway = create_gateway(platform, [Upstream("catalog", app=catalog)], revocations=MemoryRevocationStore(),
                                 settings=GatewaySettings(behind_tls=True, hsts_max_age_seconds=600))
        async with client_of(gateway) as client:
            answer = await client.get(PRODUCTS)
        assert answer.headers["strict-transport-security"] == "max-age=600; includeSubDomains"

    async def test_the_docs_page_may_load_what_it_references(self, gateway: FastAPI) -> None:
        async with client_of(gateway) as client:
            page = await client.get("/docs")
            spec = await client.get("/openapi.json")
        assert page.status_code == 200 and spec.status_code == 200
        csp = csp_directives(page.headers["content-security-policy"])
        assert csp["default-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
        html = page.text
        scripts = re.findall(r'<script src="([^"]+)"', html)
        styles = re.findall(r'<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"', html)
        assert scripts and styles
        for url in scripts:
            assert any(url.startswith(source) for source in csp["script-src"] if source.startswith("https://")), url
        for url in styles:
            assert any(url.startswith(source) for source in csp["style-src"] if source.startswith("https://")), url
        for inline in re.findall(r"<script>(.*?)</script>", html, re.DOTALL):
            digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in csp["script-src"]
        # The page fetches the API document from the gateway itself.
        assert "'self'" in csp["connect-src"] and "url: '/openapi.json'" in html


class TestClientAddress:
    async def test_the_peer_address_reaches_the_upstream(self, platform: PlatformSettings, catalog: FastAPI) -> None:
        gateway = create_gateway(platform, [Upstream("catalog", app=catalog)], revocations=MemoryRevocationStore())
        async with client_from(gateway, "203.0.113.9") as client:
            answer = await client.get(PRODUCTS, headers={"X-Forwarded-For": "198.51.100.66"})
        assert answer.json()["principal"]["client_address"] == "203.0.113.9"

    async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
            self, platform: PlatformSettings, catalog: FastAPI) -> None:
        gateway = create_gateway(platform, [Upstream("catalog", app=catalog)], revocations=MemoryRevocationStore(),
                                 settings=GatewaySettings(trusted_proxies=["10.0.0.0/8"]))
        async with client_from(gateway, "10.1.2.3") as via_proxy, client_from(gateway, "192.0.2.5") as direct:
            proxied = await via_proxy.get(PRODUCTS, headers={"X-Forwarded-For": "198.51.100.66"})
            # A client's own made-up entries stand left of the address the proxy saw.
            spoofed = await via_proxy.get(PRODUCTS, headers={"X-Forwarded-For": "1.1.1.1, 198.51.100.66, 10.9.9.9"})
            bypass = await direct.get(PRODUCTS, headers={"X-Forwarded-For": "198.51.100.66"})
            no_header = await via_proxy.get(PRODUCTS)
        assert proxied.json()["principal"]["client_address"] == "198.51.100.66"
        assert spoofed.json()["principal"]["client_address"] == "198.51.100.66"
        assert bypass.json()["principal"]["client_address"] == "192.0.2.5"
        assert no_header.json()["principal"]["client_address"] == "10.1.2.3"

    async def test_it_reaches_a_remote_upstream_too(self, platform: PlatformSettings, catalog: FastAPI) -> None:
        async with uvicorn_server(catalog) as url:
            gateway = create_gateway(platform, [Upstream("catalog", url=url)], revocations=MemoryRevocationStore())
            async with client_from(gateway, "203.0.113.10") as client:
                answer = await client.get(PRODUCTS)
        assert answer.json()["principal"]["client_address"] == "203.0.113.10"


def flaky_app(platform: PlatformSettings) -> FastAPI:
    """Answers 500 while `state.failing`; counts the requests that reached it."""
    app = kernel_app("catalog", platform)
    app.state.failing = True
    app.state.reached = 0

    @app.api_route("/api/v1/products", methods=["GET", "POST"])
    async def products(request: Request) -> Any:
        app.state.reached += 1
        if app.state.failing:
            return JSONResponse({"status": 500}, status_code=500)
        return {"ok": True}

    return app


BREAKER = ResilienceSettings(retries=0, breaker_failure_threshold=3, breaker_reset_seconds=0.3)


class TestCircuitBreaker:
    async def test_embedded_upstream_breaker_opens_then_closes_when_it_recovers(
            self, platform: PlatformSettings) -> None:
        flaky = flaky_app(platform)
        gateway = create_gateway(platform, [Upstream("catalog", app=flaky)], revocations=MemoryRevocationStore(),
                                 resilience=BREAKER)
        async with client_of(gateway) as client:
            failures = [(await client.get(PRODUCTS)).status_code for _ in range(3)]
            refused = await client.get(PRODUCTS)
            reached_while_open = flaky.state.reached
            flaky.state.failing = False
            await asyncio.sleep(0.35)
            recovered = [(await client.get(PRODUCTS)).status_code for _ in range(3)]
        assert failures == [500, 500, 500]
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert "retry-after" in refused.headers
        assert reached_while_open == 3  # the refused request never reached it
        assert recovered == [200, 200, 200]

    async def test_remote_upstream_breaker_opens_then_closes_when_it_recovers(
            self, platform: PlatformSettings) -> None:
        flaky = flaky_app(platform)
        async with uvicorn_server(flaky) as url:
            gateway = create_gateway(platform, [Upstream("catalog", url=url)], revocations=MemoryRevocationStore(),
                                     resilience=BREAKER)
            async with client_of(gateway) as client:
                failures = [(await client.post(PRODUCTS)).status_code for _ in range(3)]
                refused = await client.get(PRODUCTS)
                reached_while_open = flaky.state.reached
                flaky.state.failing = False
                await asyncio.sleep(0.35)
                recovered = [(await client.get(PRODUCTS)).status_code for _ in range(2)]
        assert failures == [500, 500, 500]
        assert refused.status_code == 503 and "retry-after" in refused.headers
        assert reached_while_open == 3
        assert recovered == [200, 200]

    async def test_unreachable_upstream_opens_the_breaker(self, platform: PlatformSettings) -> None:
        gateway = create_gateway(platform, [Upstream("catalog", url=f"http://127.0.0.1:{free_port()}")],
                                 revocations=MemoryRevocationStore(), resilience=BREAKER)
        async with client_of(gateway) as client:
            answers = [await client.get(PRODUCTS) for _ in range(4)]
        assert [a.status_code for a in answers] == [503] * 4
        assert "cannot be reached" in answers[0].json()["detail"]
        assert "retry-after" in answers[3].headers  # refused by the open breaker


class TestRetries:
    async def test_an_idempotent_request_is_retried_after_a_503_and_a_post_is_not(
            self, platform: PlatformSettings) -> None:
        app = kernel_app("catalog", platform)
        calls: list[str] = []

        @app.api_route("/api/v1/products", methods=["GET", "POST"])
        async def once_unavailable(request: Request) -> Any:
            calls.append(request.method)
            if len(calls) % 2 == 1:
                return JSONResponse({"status": 503}, status_code=503)
            return {"ok": True}

        async with uvicorn_server(app) as url:
            gateway = create_gateway(platform, [Upstream("catalog", url=url)], revocations=MemoryRevocationStore(),
                                     resilience=ResilienceSettings(retries=2, backoff_initial_seconds=0.01))
            async with client_of(gateway) as client:
                get = await client.get(PRODUCTS)
                post = await client.post(PRODUCTS)
        assert get.status_code == 200
        assert post.status_code == 503
        assert calls == ["GET", "GET", "POST"]


