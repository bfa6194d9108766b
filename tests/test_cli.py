"""The command line refuses configurations that would silently lose events or ignore logouts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amazonlite.cli import app
from amazonlite.platform.config import platform_settings
from tests.e2e.operator import query


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


class TestTenantsCommands:
    """An operator's way back in: a suspended tenant is reactivated from the command line, on the
    tenants database, when nobody can sign in to do it through the API."""

    def test_suspend_list_and_activate_a_tenant_but_never_suspend_default(
            self, clean_env: pytest.MonkeyPatch, tmp_path: object) -> None:
        clean_env.setenv("AMAZONLITE_ENVIRONMENT", "test")
        platform_settings.cache_clear()
        runner, data_dir = CliRunner(), ["--data-dir", str(tmp_path)]
        for tenant in ("default", "acme"):
            created = runner.invoke(app, ["users", "create-admin", "--tenant", tenant, "--email",
                                          f"admin@{tenant}.example.com", "--password", "road-runner-catalog-7",
                                          *data_dir])
            assert created.exit_code == 0, created.output

        assert runner.invoke(app, ["tenants", "suspend", "acme", *data_dir]).exit_code == 0
        listed = runner.invoke(app, ["tenants", "list", *data_dir])
        assert listed.exit_code == 0, listed.output
        assert _status_of(listed.output, "acme") == "suspended"

        refused = runner.invoke(app, ["tenants", "suspend", "default", *data_dir])
        assert refused.exit_code == 1
        assert "holds the platform's administrators" in refused.output, refused.output
        assert runner.invoke(app, ["tenants", "suspend", "nope", *data_dir]).exit_code == 1

        assert runner.invoke(app, ["tenants", "activate", "acme", *data_dir]).exit_code == 0
        listed = runner.invoke(app, ["tenants", "list", *data_dir]).output
        assert (_status_of(listed, "acme"), _status_of(listed, "default")) == ("active", "active")


def _status_of(table: str, tenant: str) -> str:
    """The status column of a tenant's row in `tenants list`'s table."""
    row = next(line for line in table.splitlines() if f" {tenant} " in line)
    return next(cell for cell in ("suspended", "active") if cell in row)


class TestSeed:
    """`amazonlite seed` on a fresh data directory, read back as an operator would (plain SQL)."""

    def test_every_demo_sku_is_stocked_in_two_warehouses_and_the_catalogs_events_still_go_out(
            self, clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
        clean_env.setenv("AMAZONLITE_ENVIRONMENT", "development")
        platform_settings.cache_clear()
        seeded = CliRunner().invoke(app, ["seed", "--data-dir", str(tmp_path)])
        assert seeded.exit_code == 0, seeded.output

        catalog, inventory = (f"sqlite+aiosqlite:///{tmp_path / f'{name}.sqlite3'}"
                              for name in ("catalog", "inventory"))
        demo_skus = {row.sku for row in query(catalog, "SELECT sku FROM variants WHERE tenant_id = 'default'")}
        stocked = query(inventory, "SELECT sku, warehouse, on_hand FROM stock WHERE tenant_id = 'default'")
        assert len(demo_skus) > 50
        assert {row.sku for row in stocked} == demo_skus
        assert {row.warehouse for row in stocked} == {"default", "east"}
        assert len(stocked) == 2 * len(demo_skus) and all(row.on_hand > 0 for row in stocked)
        # Inventory took the catalog's events through its inbox; the catalog's outbox still holds them
        # for the bus, so the running platform's delivery of them is a duplicate the inbox drops.
        unpublished = query(catalog, "SELECT event_id FROM outbox WHERE published_at IS NULL")
        applied = query(inventory, "SELECT event_id FROM inbox WHERE topic = 'product.updated.v1'")
        assert len(unpublished) >= len({row.event_id for row in applied}) > 0
        assert {row.event_id for row in applied} <= {row.event_id for row in unpublished}

        again = CliRunner().invoke(app, ["seed", "--data-dir", str(tmp_path)])
        assert again.exit_code == 0, again.output
        assert query(inventory, "SELECT sku, warehouse, on_hand FROM stock WHERE tenant_id = 'default'") == stocked
