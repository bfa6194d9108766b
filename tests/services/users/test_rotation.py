from __future__ import annotations

from pathlib import Path
from typing import Any

from amazonlite.platform.crypto import key_id
from amazonlite.services.users.commands import rotate_pii_keys
from tests.services.users.factories import KEY_A, KEY_B, add_address, addresses, rows, running_users, signed_up
from tests.support.harness import Harness

ENCRYPTED = ("name_encrypted", "line1_encrypted", "line2_encrypted", "phone_encrypted")


async def key_ids(svc: Harness) -> list[str]:
    """The key id named by every stored encrypted value."""
    stored = await rows(svc, "SELECT * FROM addresses")
    return [key_id(row[column]) for row in stored for column in ENCRYPTED if row[column] is not None]


class TestKeyRotation:
    async def test_rotation_rewrites_old_values_under_the_active_key_and_readers_never_stop(
            self, any_database_url: str, tmp_path: Path) -> None:
        books: dict[str, list[dict[str, Any]]] = {}
        async with running_users(any_database_url, tmp_path, pii_keys={"a": KEY_A}) as svc:
            ada, ada_client = await signed_up(svc)
            bob, bob_client = await signed_up(svc, tenant="globex")
            async with ada_client, bob_client:
                await add_address(ada_client, name="Ada Home")
                await add_address(ada_client, name="Ada Work", line2=None, phone=None)
                await add_address(bob_client, name="Bob Home")
            assert set(await key_ids(svc)) == {"a"}

        # A new key becomes active; the old one stays in the ring, so every row still reads.
        ring = {"a": KEY_A, "b": KEY_B}
        async with running_users(any_database_url, tmp_path, pii_keys=ring, pii_active_key="b") as svc:
            async with svc.client(user_id=ada, roles=("customer",)) as ada_client, \
                    svc.client(tenant="globex", user_id=bob, roles=("customer",)) as bob_client:
                await add_address(ada_client, name="Ada Cabin")
                home = (await addresses(ada_client))[0]
                # An edit re-encrypts only what it changes: this row is now under both keys.
                edited = await ada_client.patch(f"/api/v1/users/me/addresses/{home['id']}", json={"line1": "2 Road"})
                assert edited.status_code == 200
                books = {"ada": await addresses(ada_client), "bob": await addresses(bob_client)}
            assert [a["name"] for a in books["ada"]] == ["Ada Home", "Ada Work", "Ada Cabin"]
            assert [a["name"] for a in books["bob"]] == ["Bob Home"]
            assert sorted(set(await key_ids(svc))) == ["a", "b"]

            assert await rotate_pii_keys(svc.runtime, batch_size=2) == 3  # the cabin was written under b
            assert set(await key_ids(svc)) == {"b"}
            assert await rotate_pii_keys(svc.runtime, batch_size=2) == 0

        # The old key leaves the ring: everything still reads, unchanged.
        async with running_users(any_database_url, tmp_path, pii_keys={"b": KEY_B}) as svc, \
                svc.client(user_id=ada, roles=("customer",)) as ada_client, \
                svc.client(tenant="globex", user_id=bob, roles=("customer",)) as bob_client:
            assert await addresses(ada_client) == books["ada"]
            assert await addresses(bob_client) == books["bob"]

    async def test_a_value_under_a_key_that_left_the_ring_is_an_error_not_another_value(
            self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_users(sqlite_url, tmp_path, pii_keys={"a": KEY_A}) as svc:
            user, client = await signed_up(svc)
            async with client:
                await add_address(client)
        async with running_users(sqlite_url, tmp_path, pii_keys={"b": KEY_B}) as svc:
            async with svc.client(user_id=user, roles=("customer",)) as client:
                response = await client.get("/api/v1/users/me/addresses")
            assert response.status_code == 500
            assert response.json()["type"].endswith("/address-unreadable")
