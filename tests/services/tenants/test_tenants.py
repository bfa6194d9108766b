from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
from sqlalchemy import text

from amazonlite.services.tenants.app import SERVICE
from amazonlite.services.tenants.commands import ensure_tenant
from tests.support.harness import Harness, running_service

PLATFORM = ("platform_admin",)
TENANT_ADMIN = ("tenant_admin",)
CUSTOMER = ("customer",)
TENANTS = "/api/v1/admin/tenants"


def platform_admin(svc: Harness) -> httpx.AsyncClient:
    return svc.client(tenant="default", user_id=uuid.uuid4(), roles=PLATFORM)


async def create(svc: Harness, tenant_id: str, **fields: object) -> dict[str, object]:
    async with platform_admin(svc) as client:
        response = await client.post(TENANTS, json={"id": tenant_id, "name": tenant_id.title(), **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


class TestDefaultTenant:
    async def test_present_after_startup_on_every_database(self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc:
            async with platform_admin(svc) as client:
                response = await client.get(f"{TENANTS}/default")
            assert response.status_code == 200, response.text
            body = response.json()
            assert (body["id"], body["currency"], body["status"]) == ("default", "INR", "active")
            # The tenant admin of another tenant cannot see it, even on PostgreSQL's row-level security.
            await create(svc, "acme")
            async with svc.client(tenant="acme", user_id=uuid.uuid4(), roles=TENANT_ADMIN) as client:
                assert (await client.get(f"{TENANTS}/default")).status_code == 404
                assert (await client.get(f"{TENANTS}/acme")).status_code == 200

    async def test_startup_twice_and_concurrently_keeps_one_row(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            results = await asyncio.gather(*(ensure_tenant(svc.runtime, "default") for _ in range(5)),
                                           ensure_tenant(svc.runtime, "acme", "Acme"),
                                           ensure_tenant(svc.runtime, "acme", "Acme"))
            assert {t.id for t in results} == {"default", "acme"}
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            async with svc.runtime.db.engine.connect() as conn:
                count = await conn.scalar(text("SELECT count(*) FROM tenants"))
            assert count == 2


class TestCreate:
    async def test_platform_admin_creates_with_defaults(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            body = await create(svc, "acme")
            assert body["currency"] == "INR"
            assert body["tax_rate_bp"] == 0
            assert body["status"] == "active"
            assert body["rate_limits"]["tenant_per_minute"] > body["rate_limits"]["client_per_minute"] > 0
            assert body["feature_flags"] == {}

    async def test_settings_given_are_kept(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await create(svc, "globex", currency="EUR", tax_rate_bp=1900,
                         rate_limits={"tenant_per_minute": 100, "client_per_minute": 10},
                         feature_flags={"reviews": True, "coupons": False})
            async with platform_admin(svc) as client:
                body = (await client.get(f"{TENANTS}/globex")).json()
            assert (body["currency"], body["tax_rate_bp"]) == ("EUR", 1900)
            assert body["rate_limits"] == {"tenant_per_minute": 100, "client_per_minute": 10}
            assert body["feature_flags"] == {"reviews": True, "coupons": False}

    async def test_duplicate_is_409(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await create(svc, "acme")
            async with platform_admin(svc) as client:
                response = await client.post(TENANTS, json={"id": "acme", "name": "Again"})
            assert response.status_code == 409
            assert response.json()["type"].endswith("/tenant-exists")

    async def test_invalid_values_are_422(self, sqlite_url: str, tmp_path: Path) -> None:
        bad = [{"id": "Not A Slug", "name": "x"}, {"id": "-bad", "name": "x"}, {"id": "a" * 65, "name": "x"},
               {"id": "ok", "name": " "}, {"id": "ok", "name": "x", "currency": "inr"},
               {"id": "ok", "name": "x", "tax_rate_bp": 10_001}, {"id": "ok", "name": "x", "tax_rate_bp": -1},
               {"id": "ok", "name": "x", "rate_limits": {"tenant_per_minute": 0, "client_per_minute": 1}},
               {"id": "ok", "name": "x", "feature_flags": {"x": "yes"}}, {"id": "ok", "name": "x", "extra": 1}]
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc, platform_admin(svc) as client:
            for body in bad:
                response = await client.post(TENANTS, json=body)
                assert response.status_code == 422, (body, response.text)
            assert (await client.get(f"{TENANTS}/ok")).status_code == 404


class TestList:
    async def test_pages_through_every_tenant(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            for name in ("acme", "globex", "initech", "umbrella"):
                await create(svc, name)
            seen: list[str] = []
            cursor = None
            async with platform_admin(svc) as client:
                while True:
                    params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
                    page = (await client.get(TENANTS, params=params)).json()
                    seen += [t["id"] for t in page["items"]]
                    cursor = page["next_cursor"]
                    if cursor is None:
                        break
                assert (await client.get(TENANTS, params={"cursor": "garbage"})).status_code == 400
            assert seen == ["acme", "default", "globex", "initech", "umbrella"]


class TestUpdate:
    async def test_platform_admin_suspends_and_changes_settings(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            created = await create(svc, "acme")
            async with platform_admin(svc) as client:
                response = await client.patch(f"{TENANTS}/acme", json={
                    "status": "suspended", "tax_rate_bp": 500, "rate_limits": {"tenant_per_minute": 50,
                                                                               "client_per_minute": 5}})
                assert response.status_code == 200, response.text
                body = (await client.get(f"{TENANTS}/acme")).json()
            assert (body["status"], body["tax_rate_bp"], body["rate_limits"]["client_per_minute"]) == (
                "suspended", 500, 5)
            assert body["name"] == created["name"]
            assert body["updated_at"] >= created["updated_at"]

    async def test_tenant_admin_changes_own_tenant(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await create(svc, "acme")
            async with svc.client(tenant="acme", user_id=uuid.uuid4(), roles=TENANT_ADMIN) as client:
                response = await client.patch(f"{TENANTS}/acme", json={"feature_flags": {"reviews": True}})
                assert response.status_code == 200, response.text
                assert (await client.get(f"{TENANTS}/acme")).json()["feature_flags"] == {"reviews": True}

    async def test_unknown_tenant_is_404(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            async with platform_admin(svc) as client:
                response = await client.patch(f"{TENANTS}/nope", json={"name": "X"})
            assert response.status_code == 404
            assert response.json()["type"].endswith("/tenant-not-found")


class TestNoLockOut:
    async def test_the_default_tenant_cannot_be_suspended_and_nothing_is_written(
            self, any_database_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, any_database_url, tmp_path) as svc, platform_admin(svc) as client:
            before = (await client.get(f"{TENANTS}/default")).json()
            response = await client.patch(f"{TENANTS}/default", json={"status": "suspended", "name": "Renamed"})
            assert response.status_code == 409, response.text
            problem = response.json()
            assert problem["type"].endswith("/platform-tenant-not-suspendable")
            assert "default" in problem["detail"]
            assert (await client.get(f"{TENANTS}/default")).json() == before
            # Its other settings still change.
            renamed = await client.patch(f"{TENANTS}/default", json={"name": "Platform", "status": "active"})
            assert renamed.status_code == 200, renamed.text
            assert (renamed.json()["name"], renamed.json()["status"]) == ("Platform", "active")

    async def test_a_tenant_admin_cannot_suspend_their_own_tenant_and_nothing_is_written(
            self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await create(svc, "acme")
            async with svc.client(tenant="acme", user_id=uuid.uuid4(), roles=TENANT_ADMIN) as admin:
                refused = await admin.patch(f"{TENANTS}/acme", json={"status": "suspended", "name": "Gone"})
                assert refused.status_code == 403, refused.text
                assert refused.json()["type"].endswith("/tenant-status-change-forbidden")
                body = (await admin.get(f"{TENANTS}/acme")).json()
                assert (body["status"], body["name"]) == ("active", "Acme")
                # Naming the status it already has is no change.
                same = await admin.patch(f"{TENANTS}/acme", json={"status": "active", "name": "Acme Inc"})
                assert same.status_code == 200, same.text

    async def test_a_suspended_tenant_is_reactivated_by_a_platform_admin(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await create(svc, "acme")
            async with platform_admin(svc) as root:
                suspended = await root.patch(f"{TENANTS}/acme", json={"status": "suspended"})
                assert suspended.json()["status"] == "suspended"
                reactivated = await root.patch(f"{TENANTS}/acme", json={"status": "active"})
                assert reactivated.status_code == 200, reactivated.text
                assert (await root.get(f"{TENANTS}/acme")).json()["status"] == "active"


class TestJunkRefused:
    async def test_names_with_control_or_format_characters_and_unknown_currencies_are_422(
            self, sqlite_url: str, tmp_path: Path) -> None:
        bad_names = ["Acme\x07", "Acme\nInc", "Acme\tInc", "\u202eemcA", "Ac\u200bme", "Acme\U000e0041"]
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await create(svc, "acme", currency="EUR")
            async with platform_admin(svc) as client:
                for name in bad_names:
                    assert (await client.post(TENANTS, json={"id": "ok", "name": name})).status_code == 422, name
                    assert (await client.patch(f"{TENANTS}/acme", json={"name": name})).status_code == 422, name
                for currency in ("JED", "XYZ", "inr", "EURO"):
                    assert (await client.post(TENANTS, json={"id": "ok", "name": "Ok", "currency": currency})
                            ).status_code == 422, currency
                    assert (await client.patch(f"{TENANTS}/acme", json={"currency": currency})
                            ).status_code == 422, currency
                assert (await client.get(f"{TENANTS}/ok")).status_code == 404
                body = (await client.get(f"{TENANTS}/acme")).json()
                assert (body["name"], body["currency"]) == ("Acme", "EUR")
                # Writing keeps its joiners (Devanagari conjuncts, emoji sequences), and real codes pass.
                kept = await client.patch(f"{TENANTS}/acme", json={"name": "क्\u200dष Mart", "currency": "JPY"})
                assert (kept.json()["name"], kept.json()["currency"]) == ("क्\u200dष Mart", "JPY")

    async def test_the_document_states_the_rules(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            create_schema = svc.app.openapi()["components"]["schemas"]["TenantCreate"]["properties"]
        assert "\\u0000-\\u001F" in create_schema["name"]["pattern"]
        assert "INR" in create_schema["currency"]["enum"] and "JED" not in create_schema["currency"]["enum"]


class TestAuthorization:
    async def test_matrix(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await create(svc, "acme")
            callers = {
                "tenant_admin": svc.client(tenant="acme", user_id=uuid.uuid4(), roles=TENANT_ADMIN),
                "customer": svc.client(tenant="acme", user_id=uuid.uuid4(), roles=CUSTOMER),
                "anonymous": svc.client(tenant="acme"),
                "no_token": svc.anonymous_client_without_token(),
            }
            expected = {
                # caller: (create, list, read own, patch own)
                "tenant_admin": (403, 403, 200, 200),
                "customer": (403, 403, 403, 403),
                "anonymous": (401, 401, 401, 401),
                "no_token": (401, 401, 401, 401),
            }
            for name, client in callers.items():
                async with client:
                    got = (
                        (await client.post(TENANTS, json={"id": f"new-{name}".replace("_", "-"),
                                                          "name": "N"})).status_code,
                        (await client.get(TENANTS)).status_code,
                        (await client.get(f"{TENANTS}/acme")).status_code,
                        (await client.patch(f"{TENANTS}/acme", json={"name": "Acme Inc"})).status_code,
                    )
                assert got == expected[name], name
            async with platform_admin(svc) as client:
                listed = [t["id"] for t in (await client.get(TENANTS)).json()["items"]]
            assert listed == ["acme", "default"]


class TestIsolation:
    async def test_tenant_admin_of_a_cannot_read_or_patch_b(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await create(svc, "acme")
            await create(svc, "globex", tax_rate_bp=700)
            async with svc.client(tenant="acme", user_id=uuid.uuid4(), roles=TENANT_ADMIN) as client:
                read = await client.get(f"{TENANTS}/globex")
                patch = await client.patch(f"{TENANTS}/globex", json={"tax_rate_bp": 0, "status": "suspended"})
            assert (read.status_code, patch.status_code) == (404, 404)
            async with platform_admin(svc) as client:
                body = (await client.get(f"{TENANTS}/globex")).json()
            assert (body["tax_rate_bp"], body["status"]) == (700, "active")


class TestPlatformAdministrationLivesInTheDefaultTenant:
    async def test_a_platform_admin_role_of_another_tenant_administers_nothing_beyond_it(
            self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_service(SERVICE, sqlite_url, tmp_path) as svc:
            await create(svc, "acme")
            await create(svc, "globex")
            async with svc.client(tenant="acme", user_id=uuid.uuid4(), roles=PLATFORM) as stray:
                assert (await stray.post("/api/v1/admin/tenants", json={"id": "initech", "name": "I"})
                        ).status_code == 403
                assert (await stray.get("/api/v1/admin/tenants")).status_code == 403
                assert (await stray.get("/api/v1/admin/tenants/globex")).status_code == 404
                assert (await stray.get("/api/v1/admin/tenants/acme")).status_code == 200
            async with platform_admin(svc) as root:
                assert (await root.get("/api/v1/admin/tenants/globex")).status_code == 200
