"""Distributed upstreams: the gateway proxies over HTTP to real uvicorn servers."""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi import FastAPI

from amazonlite.contracts import UserRegisteredV1
from amazonlite.gateway.app import GatewaySettings, Upstream, create_gateway
from amazonlite.platform.config import PlatformSettings
from amazonlite.platform.revocation import MemoryRevocationStore
from amazonlite.services.users.app import SERVICE as USERS
from tests.gateway.support import SigningKeys, bearer, client_of, free_port, received, uvicorn_server
from tests.support.harness import running_service


class TestProxy:
    async def test_the_users_service_over_http_with_keys_fetched_over_http(
            self, sqlite_url: str, tmp_path: Path, platform: PlatformSettings, auth: FastAPI,
            keys: SigningKeys) -> None:
        user_id = uuid.uuid4()
        async with running_service(USERS, sqlite_url, tmp_path, platform=platform) as users:
            await users.deliver(UserRegisteredV1(user_id=user_id, email="ada@example.com", name="Ada",
                                                 roles=["customer"]))
            async with uvicorn_server(users.app) as users_url, uvicorn_server(auth) as auth_url:
                gateway = create_gateway(platform, [Upstream("auth", url=auth_url), Upstream("users", url=users_url)],
                                         revocations=MemoryRevocationStore())
                async with client_of(gateway) as client:
                    token = keys.token(sub=str(user_id))
                    me = await client.get("/api/v1/users/me", headers=bearer(token))
                    patched = await client.patch("/api/v1/users/me", json={"locale": "en-GB"}, headers=bearer(token))
                    invalid = await client.patch("/api/v1/users/me", json={"email": "x@evil.test"},
                                                 headers=bearer(token))
                    forged = await client.get("/api/v1/users/me", headers={"X-Internal-Token": "forged"})
        assert me.status_code == 200, me.text
        assert me.json()["email"] == "ada@example.com"
        assert patched.json()["locale"] == "en-GB"
        assert invalid.status_code == 422
        assert invalid.headers["content-type"] == "application/problem+json"
        assert forged.status_code == 401  # anonymous: the forged token never reached users
        assert auth.state.jwks_fetches == 1

    async def test_method_path_query_body_and_headers_are_relayed(
            self, platform: PlatformSettings, catalog: FastAPI) -> None:
        async with uvicorn_server(catalog) as catalog_url:
            gateway = create_gateway(platform, [Upstream("catalog", url=catalog_url)],
                                     revocations=MemoryRevocationStore())
            async with client_of(gateway) as client:
                answer = await client.put(
                    "/api/v1/products/a%2Fb?sort=price&q=caf%C3%A9", content=b"\x00binary",
                    headers={"X-Correlation-ID": "dist-1", "X-Cart-Id": "cart-9", "Connection": "close, X-Secret",
                             "X-Secret": "hop", "X-Tenant-ID": "acme"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["method"], body["query"]) == ("PUT", "sort=price&q=caf%C3%A9")
        assert body["path"] == "/api/v1/products/a/b"
        assert body["body"] == "\x00binary"
        assert body["principal"]["tenant"] == "acme"
        assert received(answer, "x-cart-id") == ["cart-9"]
        assert received(answer, "x-correlation-id") == ["dist-1"]
        assert received(answer, "x-secret") == []  # named by Connection: hop-by-hop
        assert received(answer, "x-forwarded-for") == ["127.0.0.1"]
        assert answer.headers.get_list("x-correlation-id") == ["dist-1"]
        assert "server" not in answer.headers  # the upstream server's own headers stay behind

    async def test_an_unreachable_upstream_is_503(self, platform: PlatformSettings) -> None:
        gateway = create_gateway(platform, [Upstream("catalog", url=f"http://127.0.0.1:{free_port()}")],
                                 revocations=MemoryRevocationStore())
        async with client_of(gateway) as client:
            answer = await client.get("/api/v1/products", headers={"X-Correlation-ID": "down-1"})
        assert answer.status_code == 503
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"].endswith("/service-unreachable")
        assert answer.json()["correlation_id"] == "down-1"

    async def test_a_slow_upstream_is_504(self, platform: PlatformSettings, catalog: FastAPI) -> None:
        async with uvicorn_server(catalog) as catalog_url:
            gateway = create_gateway(platform, [Upstream("catalog", url=catalog_url)],
                                     revocations=MemoryRevocationStore(),
                                     settings=GatewaySettings(upstream_timeout_seconds=0.2))
            async with client_of(gateway) as client:
                slow = await client.get("/api/v1/products/slow")
                fast = await client.get("/api/v1/products")
        assert slow.status_code == 504
        assert slow.json()["type"].endswith("/upstream-timeout")
        assert fast.status_code == 200

    async def test_a_signed_in_request_whose_auth_is_down_is_503(
            self, platform: PlatformSettings, catalog: FastAPI, keys: SigningKeys) -> None:
        gateway = create_gateway(platform, [Upstream("auth", url=f"http://127.0.0.1:{free_port()}"),
                                            Upstream("catalog", app=catalog)], revocations=MemoryRevocationStore())
        async with client_of(gateway) as client:
            answer = await client.get("/api/v1/products", headers=bearer(keys.token()))
        assert answer.status_code == 503
