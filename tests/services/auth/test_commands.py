from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import text

from amazonlite.platform.bus.memory import InProcessTransport
from amazonlite.platform.migrations import upgrade
from amazonlite.platform.revocation import MemoryRevocationStore
from amazonlite.platform.service import ServiceRuntime
from amazonlite.services.auth.app import DEMO_ACCOUNTS, SERVICE, create_admin
from amazonlite.services.auth.errors import InvalidEmail, WeakPassword
from amazonlite.services.auth.keys import KeyDecryptionFailed
from amazonlite.services.auth.settings import AuthSettings
from amazonlite.services.auth.tasks import prune_expired, resync_revocations
from tests.services.auth.factories import (
    PASSWORD,
    REGISTERED,
    accepted,
    gateway_verifier,
    log_in,
    outbox_events,
    refresh,
    scalar,
    sign_up,
    signed_up_and_logged_in,
    verified_claims,
)
from tests.support import harness
from tests.support.harness import running_service

ADMIN_PASSWORD = "a-long-admin-secret-9"


class TestCreateAdmin:
    async def test_creates_an_admin_once_then_resets_the_password(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            user_id = await create_admin(svc.runtime, tenant_id="acme", email=" Root@Example.com", password=PASSWORD)
            again = await create_admin(svc.runtime, tenant_id="acme", email="root@example.com",
                                       password=ADMIN_PASSWORD)
            assert again == user_id
            async with svc.client(tenant="acme") as client:
                assert (await log_in(client, email="root@example.com")).status_code == 401
                response = await log_in(client, email="root@example.com", password=ADMIN_PASSWORD)
                assert response.status_code == 200
                claims = await verified_claims(client, response.json()["access_token"])
            [event] = await outbox_events(svc)  # registered; no verification email for an operator's account
            assert await scalar(svc, "SELECT email_verified FROM users") in (True, 1)
        assert (claims["sub"], claims["tenant"]) == (str(user_id), "acme")
        # Platform administration lives in `default`: elsewhere the account administers its tenant only.
        assert claims["roles"] == ["tenant_admin"]
        assert event["envelope"]["payload"]["roles"] == ["tenant_admin"]
        assert event["tenant_id"] == "acme"

    async def test_an_admin_of_the_default_tenant_administers_the_platform(self, sqlite_url: str,
                                                                            tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await create_admin(svc.runtime, tenant_id="default", email="root@example.com", password=ADMIN_PASSWORD)
            async with svc.client(tenant="default") as client:
                response = await log_in(client, email="root@example.com", password=ADMIN_PASSWORD)
                claims = await verified_claims(client, response.json()["access_token"])
        assert claims["roles"] == ["platform_admin", "tenant_admin"]

    async def test_promotes_an_existing_customer(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            async with svc.client() as client:
                session = await signed_up_and_logged_in(client)
                user_id = await create_admin(svc.runtime, tenant_id="default", email="ada@example.com",
                                             password=ADMIN_PASSWORD, name="ignored")
                assert str(user_id) == session["user_id"]
                response = await log_in(client, password=ADMIN_PASSWORD)
                claims = await verified_claims(client, response.json()["access_token"])
            assert claims["roles"] == ["customer", "platform_admin", "tenant_admin"]
            assert len(await outbox_events(svc, REGISTERED)) == 1  # registered once, at signup
            assert await scalar(svc, "SELECT email_verified FROM users") in (True, 1)

    async def test_refuses_a_weak_password_or_a_bad_email(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            with pytest.raises(WeakPassword):
                await create_admin(svc.runtime, tenant_id="default", email="root@example.com", password="short")
            with pytest.raises(InvalidEmail):
                await create_admin(svc.runtime, tenant_id="default", email="root", password=ADMIN_PASSWORD)
            assert await scalar(svc, "SELECT count(*) FROM users") == 0


class TestSeed:
    async def test_demo_accounts_are_created_once_and_can_log_in(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            assert SERVICE.seed is not None
            await SERVICE.seed(svc.runtime, "default")
            await SERVICE.seed(svc.runtime, "default")
            assert await scalar(svc, "SELECT count(*) FROM users") == len(DEMO_ACCOUNTS) == 2
            assert await scalar(svc, "SELECT count(*) FROM users WHERE email_verified = :t", t=True) == 2
            events = await outbox_events(svc)
            assert sorted(e["envelope"]["payload"]["email"] for e in events) == sorted(a.email for a in DEMO_ACCOUNTS)
            async with svc.client() as client:
                for account in DEMO_ACCOUNTS:
                    response = await log_in(client, email=account.email, password=account.password)
                    assert response.status_code == 200, response.text
                    assert (await verified_claims(client, response.json()["access_token"]))["roles"] == [account.role]
        assert {a.role for a in DEMO_ACCOUNTS} == {"tenant_admin", "customer"}


def new_runtime(url: str, data_dir: Path, **settings: object) -> ServiceRuntime:
    return ServiceRuntime(SERVICE, harness.fast_platform_settings(data_dir), transport=InProcessTransport(),
                          revocations=MemoryRevocationStore(),
                          settings=AuthSettings(database_url=url, **settings))


class TestSigningKeys:
    async def test_a_restart_keeps_the_key_so_earlier_tokens_still_verify(self, sqlite_url: str,
                                                                          tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            session = await signed_up_and_logged_in(client)
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, svc.client() as client:
            claims = await verified_claims(client, session["access_token"])
            jwks = (await client.get("/api/v1/auth/jwks.json")).json()
        assert claims["sub"] == session["user_id"]
        assert len(jwks["keys"]) == 1

    async def test_the_private_key_is_stored_encrypted(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            stored = await scalar(svc, "SELECT private_key_encrypted FROM signing_keys")
            raw = svc.runtime.state.keyring.private_key.private_bytes_raw()
        assert raw.hex() not in stored and len(stored) > 43

    async def test_replicas_starting_together_publish_every_key_they_sign_with(
            self, any_database_url: str, tmp_path: Path) -> None:
        await asyncio.to_thread(upgrade, "auth", SERVICE.migrations, any_database_url)
        replicas = [new_runtime(any_database_url, tmp_path) for _ in range(3)]
        try:
            await asyncio.gather(*(SERVICE.on_startup(r) for r in replicas))
            async with replicas[0].db.engine.connect() as conn:
                kids = set((await conn.scalars(text("SELECT kid FROM signing_keys WHERE retired_at IS NULL"))).all())
            assert {r.state.keyring.kid for r in replicas} <= kids
        finally:
            for replica in replicas:
                await replica.db.dispose()

    async def test_a_wrong_key_encryption_secret_stops_the_start(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path):
            pass
        runtime = new_runtime(sqlite_url, tmp_path, key_encryption_secret="another-secret-of-at-least-32-chars!!")
        try:
            with pytest.raises(KeyDecryptionFailed):
                await SERVICE.on_startup(runtime)
        finally:
            await runtime.db.dispose()

    def test_production_needs_a_real_secret(self) -> None:
        with pytest.raises(ValueError, match="KEY_ENCRYPTION_SECRET"):
            AuthSettings(AMAZONLITE_ENVIRONMENT="production")
        with pytest.raises(ValueError, match="at least 32"):
            AuthSettings(key_encryption_secret="too-short")
        with pytest.raises(ValueError, match="less than or equal to 900"):
            AuthSettings(access_ttl_seconds=3600)
        assert AuthSettings(AMAZONLITE_ENVIRONMENT="production",
                            key_encryption_secret="k" * 32).key_encryption_secret == "k" * 32


class TestRevocationsAfterARestart:
    async def test_revoked_sessions_stay_revoked_at_the_gateway(self, any_database_url: str,
                                                                 tmp_path: Path) -> None:
        """The database is the record; a new process's (empty) revocation store is filled from it."""
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            async with svc.client() as client:
                reused = await signed_up_and_logged_in(client)
                logged_out = (await log_in(client)).json()
                live = (await log_in(client)).json()
                assert (await refresh(client, reused["refresh_token"])).status_code == 200
                assert (await refresh(client, reused["refresh_token"])).status_code == 401
            async with svc.client(user_id=reused["user_id"], roles=("customer",)) as user:
                response = await user.post("/api/v1/auth/logout", json={"refresh_token": logged_out["refresh_token"]})
                assert response.status_code == 204, response.text
        async with running_service(SERVICE, any_database_url, tmp_path,
                                   revocations=MemoryRevocationStore()) as restarted, restarted.client() as client:
            verifier = gateway_verifier(restarted, client)
            assert not await accepted(verifier, reused["access_token"])
            assert not await accepted(verifier, logged_out["access_token"])
            assert await accepted(verifier, live["access_token"])


class FlakyStore(MemoryRevocationStore):
    """A revocation store that is unreachable while `down` (as Redis can be for a moment)."""

    down = False

    async def revoke_family(self, family_id: str, expires_at: int) -> None:
        if self.down:
            raise ConnectionError("the revocation store is unreachable")
        await super().revoke_family(family_id, expires_at)


class TestResync:
    async def test_a_revocation_the_store_missed_reaches_it_at_the_next_resync(self, sqlite_url: str,
                                                                               tmp_path: Path) -> None:
        store = FlakyStore()
        async with running_service(SERVICE, sqlite_url, tmp_path, revocations=store) as svc, \
                svc.client() as client:
            stolen = await signed_up_and_logged_in(client)
            verifier = gateway_verifier(svc, client)
            assert (await refresh(client, stolen["refresh_token"])).status_code == 200
            store.down = True
            assert (await refresh(client, stolen["refresh_token"])).status_code == 401  # reuse: family revoked
            store.down = False
            assert await accepted(verifier, stolen["access_token"]), "the store missed the revocation"
            await resync_revocations(svc.runtime)
            assert not await accepted(verifier, stolen["access_token"])


class TestPrune:
    async def test_forgets_expired_revocations_and_refresh_tokens_only(self, sqlite_url: str,
                                                                      tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            async with svc.client() as client:
                old = await signed_up_and_logged_in(client)
                await sign_up(client, email="bob@example.com")
                fresh = (await log_in(client, email="bob@example.com")).json()
            long_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).replace(tzinfo=None)
            soon = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).replace(tzinfo=None)
            async with svc.runtime.db.engine.begin() as conn:
                await conn.execute(text("UPDATE refresh_tokens SET expires_at = :t WHERE user_id IN "
                                        "(SELECT id FROM users WHERE email = 'ada@example.com')"), {"t": long_ago})
                await conn.execute(text("UPDATE refresh_token_families SET expires_at = :t WHERE user_id IN "
                                        "(SELECT id FROM users WHERE email = 'ada@example.com')"), {"t": long_ago})
                await conn.execute(text("INSERT INTO revoked_access_tokens (jti, tenant_id, expires_at, revoked_at) "
                                        "VALUES ('gone', 'default', :a, :a), ('kept', 'default', :b, :a)"),
                                   {"a": long_ago, "b": soon})
            await prune_expired(svc.runtime)
            assert await scalar(svc, "SELECT count(*) FROM refresh_tokens") == 1
            assert await scalar(svc, "SELECT count(*) FROM refresh_token_families") == 1
            assert await scalar(svc, "SELECT jti FROM revoked_access_tokens") == "kept"
            async with svc.client() as client:
                assert (await client.post("/api/v1/auth/refresh",
                                          json={"refresh_token": fresh["refresh_token"]})).status_code == 200
                assert (await client.post("/api/v1/auth/refresh",
                                          json={"refresh_token": old["refresh_token"]})).status_code == 401
