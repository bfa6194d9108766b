"""`amazonlite migrate` on a server where the service databases do not exist yet: a clear answer, and
`--create-databases` makes them (the README's distributed section relies on both)."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from amazonlite.cli import app
from amazonlite.platform.config import platform_settings
from tests.support import servers


@pytest.fixture(params=["postgresql", "mysql"])
def missing_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a database that does not exist yet on a real server; dropped afterwards."""
    name = f"al_cli_{uuid.uuid4().hex[:10]}"
    if request.param == "postgresql":
        with servers.postgres_database() as existing:  # proves the server is there, gives the URL's shape
            url = existing.rsplit("/", 1)[0] + f"/{name}"
        yield url
        servers._run(servers._pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        with servers.mysql_database() as existing:
            base, _, query = existing.partition("?")
            url = base.rsplit("/", 1)[0] + f"/{name}?{query}"
        yield url
        with warnings.catch_warnings():  # MariaDB warns when IF EXISTS finds none (the test made none)
            warnings.simplefilter("ignore")
            servers._run(servers._mysql_execute(f"DROP DATABASE IF EXISTS `{name}`"))


@pytest.fixture
def tenants_database(monkeypatch: pytest.MonkeyPatch, missing_database_url: str) -> Iterator[str]:
    monkeypatch.setenv("AMAZONLITE_TENANTS_DATABASE_URL", missing_database_url)
    platform_settings.cache_clear()
    yield missing_database_url
    platform_settings.cache_clear()


class TestMigrateWithoutTheDatabase:
    def test_says_which_database_is_missing_and_how_to_create_it_without_a_traceback(
            self, tenants_database: str) -> None:
        result = CliRunner().invoke(app, ["migrate", "tenants"])
        assert result.exit_code == 2, result.output
        said = " ".join(result.output.split())  # the console wraps long lines
        database = tenants_database.rsplit("/", 1)[1].split("?")[0]
        assert f"'{database}' of the tenants service does not exist" in said
        assert "--create-databases" in said and f"CREATE DATABASE {database};" in said
        assert "Traceback" not in said

    def test_create_databases_creates_it_then_migrates_and_a_second_run_changes_nothing(
            self, tenants_database: str) -> None:
        first = CliRunner().invoke(app, ["migrate", "tenants", "--create-databases"])
        assert first.exit_code == 0, first.output
        assert "Created the database of tenants" in first.output
        second = CliRunner().invoke(app, ["migrate", "tenants", "--create-databases"])
        assert second.exit_code == 0, second.output
        assert "Created the database" not in second.output
