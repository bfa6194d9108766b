"""The command line refuses configurations that would silently lose events or ignore logouts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from amazonlite.cli import app
from amazonlite.platform.config import platform_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in ("AMAZONLITE_KAFKA_BOOTSTRAP", "AMAZONLITE_REDIS_URL", "AMAZONLITE_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    platform_settings.cache_clear()
    yield monkeypatch
    platform_settings.cache_clear()


class TestDistributedProcessesNeedTheirServers:
    def test_serve_without_kafka_redis_and_environment_refuses_and_says_what_is_missing(
            self, clean_env: pytest.MonkeyPatch) -> None:
        result = CliRunner().invoke(app, ["serve", "users", "--port", "1"])
        assert result.exit_code == 2
        for missing in ("AMAZONLITE_KAFKA_BOOTSTRAP", "AMAZONLITE_REDIS_URL", "AMAZONLITE_ENVIRONMENT"):
            assert missing in result.output

    def test_gateway_needs_redis_and_kafka(self, clean_env: pytest.MonkeyPatch) -> None:
        # Kafka too: catalog events invalidate the gateway's response cache.
        clean_env.setenv("AMAZONLITE_ENVIRONMENT", "test")
        platform_settings.cache_clear()
        result = CliRunner().invoke(app, ["gateway", "--upstream", "auth=http://127.0.0.1:1"])
        assert result.exit_code == 2
        assert "AMAZONLITE_REDIS_URL" in result.output
        assert "AMAZONLITE_KAFKA_BOOTSTRAP" in result.output

    def test_demo_data_is_refused_in_production(self, clean_env: pytest.MonkeyPatch, tmp_path: object) -> None:
        clean_env.setenv("AMAZONLITE_ENVIRONMENT", "production")
        clean_env.setenv("AMAZONLITE_INTERNAL_TOKEN_SECRET", "x" * 40)
        platform_settings.cache_clear()
        result = CliRunner().invoke(app, ["seed", "--data-dir", str(tmp_path)])
        assert result.exit_code == 1
        assert "production" in result.output
