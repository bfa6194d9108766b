from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import platforms
from tests.support.oidc import CLIENT_ID, CLIENT_SECRET, LocalOidcProvider, local_oidc_provider


@pytest.fixture(scope="module")
def oidc_provider() -> Iterator[LocalOidcProvider]:
    """The OpenID provider the platform's auth service signs users in with ("Google")."""
    with local_oidc_provider() as provider:
        yield provider


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             oidc_provider: LocalOidcProvider) -> Iterator[platforms.Platform]:
    """The running platform, reached only through the gateway's HTTP API."""
    workdir: Path = tmp_path_factory.mktemp(f"platform-{request.param}")
    google = platforms.GoogleSignIn(oidc_provider.issuer, CLIENT_ID, CLIENT_SECRET)
    with platforms.started(request.param, workdir, google=google) as running:
        yield running
