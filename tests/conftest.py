from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import servers
from tests.support.logs import Logs, read_json_logs


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'service.sqlite3'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with servers.postgres_database() as url:
        yield url


@pytest.fixture
def mysql_url() -> Iterator[str]:
    with servers.mysql_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def any_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on SQLite, PostgreSQL and MariaDB/MySQL."""
    with servers.database(request.param, tmp_path / "service.sqlite3") as url:
        yield url


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    with servers.tansu_broker() as bootstrap:
        yield bootstrap


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Logs]:
    """The JSON log lines written so far by this test (its logging configured as a server's)."""
    yield from read_json_logs(capsys)
