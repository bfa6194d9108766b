from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from amazonlite.gateway.app import GatewaySettings, Upstream, create_gateway
from amazonlite.platform.config import PlatformSettings
from amazonlite.platform.revocation import MemoryRevocationStore
from tests.gateway.support import SigningKeys, auth_app, echo_app
from tests.support.harness import fast_platform_settings


@pytest.fixture
def platform(tmp_path: Path) -> PlatformSettings:
    return fast_platform_settings(tmp_path)


@pytest.fixture
def keys() -> SigningKeys:
    ring = SigningKeys()
    ring.add("k1")
    return ring


@pytest.fixture
def revocations() -> MemoryRevocationStore:
    return MemoryRevocationStore()


@pytest.fixture
def auth(platform: PlatformSettings, keys: SigningKeys) -> FastAPI:
    return auth_app(platform, keys)


@pytest.fixture
def catalog(platform: PlatformSettings) -> FastAPI:
    return echo_app("catalog", platform)


@pytest.fixture
def gateway(platform: PlatformSettings, auth: FastAPI, catalog: FastAPI,
            revocations: MemoryRevocationStore) -> FastAPI:
    """Embedded: a stand-in auth (JWKS) and an echoing catalog, both called in-process."""
    return create_gateway(platform, [Upstream("auth", app=auth), Upstream("catalog", app=catalog)],
                          revocations=revocations, settings=GatewaySettings(jwks_refresh_min_interval_seconds=60))
