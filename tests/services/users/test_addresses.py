from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from amazonlite.platform.crypto import DecryptionFailed, FieldCipher
from amazonlite.services.users.models import Address
from tests.services.users.factories import (
    add_address,
    address_body,
    addresses,
    problem_type,
    rows,
    running_users,
    signed_up,
)
from tests.support import servers

ADDRESSES = Address.__table__


@pytest.fixture(params=["postgresql", "mysql"])
def locking_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The servers where concurrent requests really run side by side (SQLite takes one writer at a time)."""
    database = servers.postgres_database if request.param == "postgresql" else servers.mysql_database
    with database() as url:
        yield url


class TestAddressBook:
    async def test_add_edit_and_delete_keep_exactly_one_default(self, any_database_url: str, tmp_path: Path) -> None:
        async with running_users(any_database_url, tmp_path) as svc:
            _, client = await signed_up(svc)
            async with client:
                home = await add_address(client, name="Home")
                assert home["is_default"] is True  # the first address is the default
                assert home["country"] == "GB"  # uppercased
                work = await add_address(client, name="Work", line2=None, phone=None)
                assert work["is_default"] is False
                assert (work["line2"], work["phone"]) == (None, None)
                cabin = await add_address(client, name="Cabin", is_default=True)
                assert cabin["is_default"] is True
                assert [(a["name"], a["is_default"]) for a in await addresses(client)] == [
                    ("Home", False), ("Work", False), ("Cabin", True)]

                response = await client.patch(f"/api/v1/users/me/addresses/{work['id']}", json={
                    "is_default": True, "line1": "1 Infinite Loop", "phone": "+1 408 996 1010"})
                assert response.status_code == 200, response.text
                assert response.json()["line1"] == "1 Infinite Loop"
                assert response.json()["updated_at"] >= work["updated_at"]
                assert [(a["name"], a["is_default"]) for a in await addresses(client)] == [
                    ("Home", False), ("Work", True), ("Cabin", False)]

                cleared = await client.patch(f"/api/v1/users/me/addresses/{home['id']}", json={"line2": None})
                assert cleared.status_code == 200 and cleared.json()["line2"] is None

                # Deleting the default makes the most recently created remaining address the default.
                assert (await client.delete(f"/api/v1/users/me/addresses/{work['id']}")).status_code == 204
                assert [(a["name"], a["is_default"]) for a in await addresses(client)] == [
                    ("Home", False), ("Cabin", True)]
                assert (await client.delete(f"/api/v1/users/me/addresses/{cabin['id']}")).status_code == 204
                assert [(a["name"], a["is_default"]) for a in await addresses(client)] == [("Home", True)]
                assert (await client.delete(f"/api/v1/users/me/addresses/{home['id']}")).status_code == 204
                assert await addresses(client) == []
                assert (await client.delete(f"/api/v1/users/me/addresses/{home['id']}")).status_code == 404

    async def test_the_default_cannot_be_unset_only_replaced(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_users(sqlite_url, tmp_path) as svc:
            _, client = await signed_up(svc)
            async with client:
                home = await add_address(client)
                response = await client.patch(f"/api/v1/users/me/addresses/{home['id']}", json={"is_default": False})
                assert response.status_code == 409
                assert problem_type(response) == "default-address-required"
                assert (await addresses(client))[0]["is_default"] is True

    async def test_the_twenty_first_address_is_refused(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_users(sqlite_url, tmp_path) as svc:
            _, client = await signed_up(svc)
            async with client:
                for n in range(20):
                    await add_address(client, name=f"Address {n}")
                response = await client.post("/api/v1/users/me/addresses", json=address_body(name="One too many"))
                assert response.status_code == 409
                assert problem_type(response) == "address-limit-reached"
                listed = await addresses(client)
            assert len(listed) == 20
            assert "One too many" not in {a["name"] for a in listed}

    async def test_no_address_before_the_profile_exists(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_users(sqlite_url, tmp_path) as svc, \
                svc.client(user_id=uuid.uuid4(), roles=("customer",)) as client:
            response = await client.post("/api/v1/users/me/addresses", json=address_body())
            assert response.status_code == 404
            assert problem_type(response) == "profile-not-found"
            assert await addresses(client) == []

    async def test_anonymous_callers_are_refused(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_users(sqlite_url, tmp_path) as svc, svc.client() as client:
            assert (await client.get("/api/v1/users/me/addresses")).status_code == 401
            assert (await client.post("/api/v1/users/me/addresses", json=address_body())).status_code == 401


class TestConcurrentChanges:
    async def test_concurrent_first_addresses_make_one_default_and_the_limit_holds(
            self, locking_database_url: str, tmp_path: Path) -> None:
        async with running_users(locking_database_url, tmp_path) as svc:
            _, client = await signed_up(svc)
            async with client:
                posts = [client.post("/api/v1/users/me/addresses", json=address_body(name=f"Address {n}"))
                         for n in range(25)]
                statuses = sorted(r.status_code for r in await asyncio.gather(*posts))
                assert statuses == [201] * 20 + [409] * 5
                listed = await addresses(client)
            assert len(listed) == 20
            assert sum(a["is_default"] for a in listed) == 1


class TestAddressValidation:
    @pytest.mark.parametrize("body", [
        address_body(extra="field"),
        address_body(country="ZZ"),
        address_body(country="GBR"),
        address_body(phone="call me"),
        address_body(phone="+1 23"),
        address_body(name=""),
        address_body(name="x" * 201),
        address_body(line1="   "),
        address_body(postal_code="$$"),
        address_body(is_default="yes"),
        {k: v for k, v in address_body().items() if k != "city"},
        address_body(name="Grace\nHopper"),
        address_body(line1="221B Baker\u202eStreet"),
        address_body(line2="Flat\x07"),
        address_body(city="Lon\u200bdon"),
        address_body(state="Greater\tLondon"),
    ])
    async def test_bad_bodies_are_422_and_nothing_is_stored(self, sqlite_url: str, tmp_path: Path,
                                                            body: dict[str, object]) -> None:
        async with running_users(sqlite_url, tmp_path) as svc:
            _, client = await signed_up(svc)
            async with client:
                response = await client.post("/api/v1/users/me/addresses", json=body)
                assert response.status_code == 422, response.text
                assert problem_type(response) == "validation-error"
                assert await addresses(client) == []

    async def test_bad_updates_and_ids_are_422(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_users(sqlite_url, tmp_path) as svc:
            _, client = await signed_up(svc)
            async with client:
                home = await add_address(client)
                url = f"/api/v1/users/me/addresses/{home['id']}"
                for changes in ({"name": None}, {"country": None}, {"country": "xx"}, {"owner": "someone"}):
                    response = await client.patch(url, json=changes)
                    assert response.status_code == 422, (changes, response.text)
                for method in ("PATCH", "DELETE"):
                    response = await client.request(method, "/api/v1/users/me/addresses/not-a-uuid", json={})
                    assert response.status_code == 422
                    assert problem_type(response) == "validation-error"
                assert await addresses(client) == [home]


class TestOnlyYourOwnAddresses:
    async def test_another_customers_address_is_not_found_and_stays_unchanged(
            self, any_database_url: str, tmp_path: Path) -> None:
        async with running_users(any_database_url, tmp_path) as svc:
            _, mallory = await signed_up(svc)
            _, neighbour = await signed_up(svc)  # same tenant
            _, stranger = await signed_up(svc, tenant="globex")  # another tenant
            async with mallory, neighbour, stranger:
                await add_address(mallory, name="Mallory")
                targets = {"neighbour": (neighbour, await add_address(neighbour, name="Neighbour")),
                           "stranger": (stranger, await add_address(stranger, name="Stranger"))}
                for owner, target in targets.values():
                    url = f"/api/v1/users/me/addresses/{target['id']}"
                    patched = await mallory.patch(url, json={"name": "Mallory was here", "is_default": True})
                    assert patched.status_code == 404
                    assert problem_type(patched) == "address-not-found"
                    deleted = await mallory.delete(url)
                    assert deleted.status_code == 404
                    assert problem_type(deleted) == "address-not-found"
                    assert await addresses(owner) == [target]
                assert [a["name"] for a in await addresses(mallory)] == ["Mallory"]
                assert (await addresses(mallory))[0]["is_default"] is True


class TestPiiAtRest:
    async def test_the_table_holds_no_plaintext_of_any_pii_field(self, any_database_url: str, tmp_path: Path) -> None:
        pii = {"name": "Grace Brewster Hopper", "line1": "Quarterdeck Lane 4711",
               "line2": "Cabin Zeta-9", "phone": "+1 555 010 4242"}
        async with running_users(any_database_url, tmp_path) as svc:
            _, client = await signed_up(svc)
            async with client:
                created = await add_address(client, **pii)
                updated = await client.patch(f"/api/v1/users/me/addresses/{created['id']}",
                                             json={"line2": "Hammock Omega-3"})
                assert updated.status_code == 200
                assert {k: (await addresses(client))[0][k] for k in pii} == {**pii, "line2": "Hammock Omega-3"}
            stored = await rows(svc, "SELECT * FROM addresses")
        assert len(stored) == 1
        cells = [str(value) for value in stored[0].values() if value is not None]
        fragments = [*pii.values(), "Hammock Omega-3", "Brewster", "Quarterdeck", "Zeta-9", "555 010", "Omega"]
        for fragment in fragments:
            assert not any(fragment.lower() in cell.lower() for cell in cells), fragment
        for column in ("name_encrypted", "line1_encrypted", "line2_encrypted", "phone_encrypted"):
            assert str(stored[0][column]).startswith("v1.development."), column

    async def test_a_ciphertext_moved_to_another_row_does_not_decrypt(
            self, any_database_url: str, tmp_path: Path) -> None:
        async with running_users(any_database_url, tmp_path) as svc:
            _, victim = await signed_up(svc)
            _, attacker = await signed_up(svc)
            async with victim, attacker:
                secret = await add_address(victim, name="Victim Secret Name")
                mine = await add_address(attacker, name="Attacker")
                async with svc.runtime.db.engine.begin() as conn:
                    token = await conn.scalar(select(ADDRESSES.c.name_encrypted)
                                              .where(ADDRESSES.c.id == uuid.UUID(secret["id"])))
                    await conn.execute(update(ADDRESSES).where(ADDRESSES.c.id == uuid.UUID(mine["id"]))
                                       .values(name_encrypted=token))
                response = await attacker.get("/api/v1/users/me/addresses")
                assert response.status_code == 500
                assert problem_type(response) == "address-unreadable"
                assert "Victim Secret Name" not in response.text
                assert [a["name"] for a in await addresses(victim)] == ["Victim Secret Name"]
        cipher: FieldCipher = svc.runtime.state.address_cipher
        assert cipher.decrypt(token, tenant_id="default", column="name_encrypted",
                              row_id=uuid.UUID(secret["id"])) == "Victim Secret Name"
        for place in ({"tenant_id": "default", "column": "name_encrypted", "row_id": uuid.UUID(mine["id"])},
                      {"tenant_id": "globex", "column": "name_encrypted", "row_id": uuid.UUID(secret["id"])},
                      {"tenant_id": "default", "column": "line1_encrypted", "row_id": uuid.UUID(secret["id"])}):
            with pytest.raises(DecryptionFailed):
                cipher.decrypt(token, **place)
