from __future__ import annotations

import base64
import json

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError

from amazonlite.platform.crypto import DEVELOPMENT_KEY, DEVELOPMENT_KID
from amazonlite.services.users.settings import UsersSettings
from tests.services.users.factories import KEY_A, KEY_B


class TestPiiKeySettings:
    def test_keys_and_the_active_key_come_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AMAZONLITE_ENVIRONMENT", "production")
        monkeypatch.setenv("AMAZONLITE_USERS_PII_KEYS", json.dumps({"2026-01": KEY_A, "2026-06": KEY_B}))
        monkeypatch.setenv("AMAZONLITE_USERS_PII_ACTIVE_KEY", "2026-06")
        settings = UsersSettings()
        ring = settings.pii_keyring()
        assert (ring.active_kid, ring.kids) == ("2026-06", frozenset({"2026-01", "2026-06"}))
        assert KEY_A not in repr(settings) and KEY_B not in repr(settings)

    def test_development_without_keys_uses_the_named_development_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("AMAZONLITE_USERS_PII_KEYS", raising=False)
        monkeypatch.setenv("AMAZONLITE_ENVIRONMENT", "test")
        settings = UsersSettings()
        assert settings.uses_development_key
        assert settings.pii_keyring().active_kid == DEVELOPMENT_KID

    @pytest.mark.parametrize(("keys", "active", "message"), [
        (None, "", "AMAZONLITE_USERS_PII_KEYS must be set"),
        ({"dev": base64.b64encode(DEVELOPMENT_KEY).decode()}, "", "development key"),
        ({"a": base64.b64encode(b"sixteen bytes!!!").decode()}, "", "32 random bytes"),
        ({"a": KEY_A, "b": KEY_B}, "", "name the active key"),
        ({"a": KEY_A}, "c", "not in the ring"),
    ])
    def test_production_refuses_to_start_without_good_keys(self, monkeypatch: pytest.MonkeyPatch,
                                                           keys: dict[str, str] | None, active: str,
                                                           message: str) -> None:
        monkeypatch.setenv("AMAZONLITE_ENVIRONMENT", "production")
        if keys is None:
            monkeypatch.delenv("AMAZONLITE_USERS_PII_KEYS", raising=False)
        else:
            monkeypatch.setenv("AMAZONLITE_USERS_PII_KEYS", json.dumps(keys))
        monkeypatch.setenv("AMAZONLITE_USERS_PII_ACTIVE_KEY", active)
        with pytest.raises(ValidationError, match=message):
            UsersSettings()

    def test_a_key_ring_that_is_not_json_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AMAZONLITE_USERS_PII_KEYS", "a=" + KEY_A)
        with pytest.raises(SettingsError):
            UsersSettings()
