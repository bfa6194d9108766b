"""The gateway's circuit breaker in the embedded topology, black-box. There is no network between
the gateway and the services in one process, so the fault is the one an operator meets there: a
service's database goes away. This platform keeps catalog's data in PostgreSQL (the embedded
topology takes any supported database per service), and the test, as the operator, stops that
database from accepting connections and then lets it back. (test_resilience.py covers the
distributed topology, where the fault is in the network.)"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.e2e import platforms
from tests.e2e.actors import Actor, assert_ok, assert_problem, eventually, problem_type, sign_in
from tests.support import servers

pytestmark = [pytest.mark.xdist_group("e2e")]

FAILURE_THRESHOLD = 3
RESET_SECONDS = 3


@dataclass
class Rig:
    api: httpx.Client
    admin: Actor  # admins' catalog reads always reach the catalog (they bypass the response cache)
    catalog_database: str

    def products(self) -> httpx.Response:
        return self.api.get("/products", headers=self.admin.auth)

    def me(self) -> httpx.Response:
        return self.api.get("/auth/me", headers=self.admin.auth)

    def catalog_database_accepts_connections(self, allowed: bool) -> None:
        asyncio.run(_operate(self.catalog_database, allowed))


async def _operate(database: str, allowed: bool) -> None:
    conn = await asyncpg.connect(servers.PG_ADMIN_URL, timeout=5)
    try:
        await conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:  # and the connections the catalog already holds are cut
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                               database)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    workdir: Path = tmp_path_factory.mktemp("resilience-embedded")
    with servers.postgres_database("e2e_catalog") as catalog_url:
        env = {"AMAZONLITE_CATALOG_DATABASE_URL": catalog_url,
               "AMAZONLITE_RESILIENCE_BREAKER_FAILURE_THRESHOLD": str(FAILURE_THRESHOLD),
               "AMAZONLITE_RESILIENCE_BREAKER_RESET_SECONDS": str(RESET_SECONDS)}
        database = make_url(catalog_url).database
        assert database is not None
        with platforms.embedded(workdir, extra_env=env) as platform, httpx.Client(
                base_url=f"{platform.base_url}/api/v1", timeout=30) as api:
            admin = sign_in(api, platforms.ADMIN_EMAIL, platforms.ADMIN_PASSWORD, "default")
            rig = Rig(api, admin, database)
            try:
                yield rig
            finally:
                rig.catalog_database_accepts_connections(True)


def test_the_breaker_opens_when_a_service_fails_and_closes_when_it_is_back(rig: Rig) -> None:
    assert_ok(rig.products())
    rig.catalog_database_accepts_connections(False)

    # The catalog answers each call itself: its database is unavailable, try again shortly.
    failures = [rig.products() for _ in range(FAILURE_THRESHOLD)]
    assert [problem_type(assert_problem(f, 503)) for f in failures] == ["database-unavailable"] * FAILURE_THRESHOLD
    # Open: refused by the gateway itself, fast, with the time to come back; other services answer.
    refused = rig.products()
    assert problem_type(assert_problem(refused, 503)) == "circuit-open"
    assert int(refused.headers["retry-after"]) >= 1
    assert_ok(rig.me())

    # Still failing when the breaker lets a trial through: it opens again.
    eventually(lambda: problem_type(rig.products().json()) == "database-unavailable", timeout=30,
               what="a trial call once the breaker's reset time has passed")
    assert problem_type(assert_problem(rig.products(), 503)) == "circuit-open"

    rig.catalog_database_accepts_connections(True)
    eventually(lambda: rig.products().status_code == 200, timeout=60, what="the breaker to close")
    assert_ok(rig.products())
