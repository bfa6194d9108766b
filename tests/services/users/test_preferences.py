from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.services.users.factories import problem_type, rows, running_users, signed_up

URL = "/api/v1/users/me/preferences"

DEFAULTS = {
    "order_updates": {"email": True, "sms": False},
    "shipping_updates": {"email": True, "sms": False},
    "account_security": {"email": True, "sms": False},
    "marketing": {"email": False, "sms": False},
}
CHOSEN = {
    "order_updates": {"email": False, "sms": True},
    "shipping_updates": {"email": True, "sms": True},
    "account_security": {"email": True, "sms": True},
    "marketing": {"email": True, "sms": False},
}


def with_change(kind: str, channels: Any) -> dict[str, Any]:
    return {"notifications": {**DEFAULTS, kind: channels}}


class TestPreferences:
    async def test_defaults_until_replaced_then_the_new_choice(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_users(sqlite_url, tmp_path) as svc:
            _, client = await signed_up(svc)
            async with client:
                assert (await client.get(URL)).json() == {"notifications": DEFAULTS}
                response = await client.put(URL, json={"notifications": CHOSEN})
                assert response.status_code == 200, response.text
                assert response.json() == {"notifications": CHOSEN}
                assert (await client.get(URL)).json() == {"notifications": CHOSEN}
                again = await client.put(URL, json={"notifications": DEFAULTS})
                assert again.json() == {"notifications": DEFAULTS}
                assert (await client.get(URL)).json() == {"notifications": DEFAULTS}

    async def test_each_replacement_records_the_full_preferences_in_the_outbox(
            self, any_database_url: str, tmp_path: Path) -> None:
        async with running_users(any_database_url, tmp_path) as svc:
            user_id, client = await signed_up(svc, tenant="acme")
            async with client:
                assert (await client.put(URL, json={"notifications": CHOSEN})).status_code == 200
            outbox = await rows(svc, "SELECT topic, aggregate_id, tenant_id, envelope FROM outbox")
        assert len(outbox) == 1
        event = outbox[0]
        assert (event["topic"], event["aggregate_id"], event["tenant_id"]) == (
            "user.preferences.updated.v1", str(user_id), "acme")
        envelope = json.loads(event["envelope"])
        assert envelope["payload"] == {"user_id": str(user_id), "notifications": CHOSEN}
        assert envelope["producer"] == "users"

    async def test_one_user_does_not_see_anothers(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_users(sqlite_url, tmp_path) as svc:
            _, ada = await signed_up(svc)
            _, bob = await signed_up(svc)
            async with ada, bob:
                assert (await ada.put(URL, json={"notifications": CHOSEN})).status_code == 200
                assert (await bob.get(URL)).json() == {"notifications": DEFAULTS}

    async def test_replacing_before_the_profile_exists_is_404(self, sqlite_url: str, tmp_path: Path) -> None:
        async with running_users(sqlite_url, tmp_path) as svc:
            async with svc.client(user_id=uuid.uuid4(), roles=("customer",)) as client:
                response = await client.put(URL, json={"notifications": CHOSEN})
            assert response.status_code == 404
            assert await rows(svc, "SELECT * FROM outbox") == []


class TestInvalidPreferences:
    @pytest.mark.parametrize("body", [
        with_change("account_security", {"email": False, "sms": True}),  # security email stays on
        with_change("newsletter", {"email": True, "sms": False}),  # unknown type
        {"notifications": {k: v for k, v in DEFAULTS.items() if k != "marketing"}},  # a type missing
        with_change("marketing", {"email": True}),  # a channel missing
        with_change("marketing", {"email": True, "sms": False, "push": True}),  # unknown channel
        with_change("marketing", {"email": "yes", "sms": False}),  # not a boolean
        with_change("marketing", {"email": 1, "sms": False}),
        {"notifications": DEFAULTS, "theme": "dark"},
        {},
    ])
    async def test_invalid_replacements_are_422_and_nothing_is_written(
            self, sqlite_url: str, tmp_path: Path, body: dict[str, Any]) -> None:
        async with running_users(sqlite_url, tmp_path) as svc:
            _, client = await signed_up(svc)
            async with client:
                response = await client.put(URL, json=body)
                assert response.status_code == 422, response.text
                assert problem_type(response) == "validation-error"
                assert (await client.get(URL)).json() == {"notifications": DEFAULTS}
            assert await rows(svc, "SELECT * FROM preferences") == []
            assert await rows(svc, "SELECT * FROM outbox") == []
