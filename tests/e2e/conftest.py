from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import platforms


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[platforms.Platform]:
    """The running platform, reached only through the gateway's HTTP API."""
    workdir: Path = tmp_path_factory.mktemp(f"platform-{request.param}")
    start = platforms.embedded if request.param == "embedded" else platforms.distributed
    with start(workdir) as running:
        yield running
