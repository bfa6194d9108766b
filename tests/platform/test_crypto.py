from __future__ import annotations

import base64
import uuid

import pytest

from amazonlite.platform.crypto import (
    DEVELOPMENT_KID,
    DecryptionFailed,
    FieldCipher,
    Keyring,
    UnknownKey,
    decode_key,
    generate_key,
    key_id,
    max_token_length,
)

KEY_A = generate_key()
KEY_B = generate_key()
HERE = "acme:addresses:name_encrypted:0190c0de-0000-7000-8000-000000000001"


class TestTokens:
    def test_round_trip_names_the_key_and_never_repeats(self) -> None:
        ring = Keyring.from_config({"k1": KEY_A})
        first = ring.encrypt("Grace Hopper", associated_data=HERE)
        second = ring.encrypt("Grace Hopper", associated_data=HERE)
        assert first.startswith("v1.k1.") and key_id(first) == "k1"
        assert first != second  # a fresh nonce each time
        assert "Grace" not in first
        assert ring.decrypt(first, associated_data=HERE) == "Grace Hopper"
        assert ring.decrypt(ring.encrypt("", associated_data=HERE), associated_data=HERE) == ""
        assert ring.decrypt(ring.encrypt("Zoë 🏠", associated_data=HERE), associated_data=HERE) == "Zoë 🏠"

    def test_other_associated_data_does_not_decrypt(self) -> None:
        ring = Keyring.from_config({"k1": KEY_A})
        token = ring.encrypt("Grace Hopper", associated_data=HERE)
        with pytest.raises(DecryptionFailed):
            ring.decrypt(token, associated_data=HERE.replace("acme", "globex"))

    @pytest.mark.parametrize("tamper", [
        lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"),  # the tag
        lambda t: t[:10] + ("A" if t[10] != "A" else "B") + t[11:],  # the nonce
        lambda t: t.split(".")[0] + "." + t.split(".")[1] + "." + t.split(".")[2][:20],  # truncated
        lambda t: "v2" + t[2:],  # unknown version
        lambda t: t.replace(".", "", 1),  # not a token
        lambda t: t + "!",  # not base64url
    ])
    def test_an_altered_token_does_not_decrypt(self, tamper: object) -> None:
        ring = Keyring.from_config({"k1": KEY_A})
        token = ring.encrypt("Grace Hopper", associated_data=HERE)
        with pytest.raises(DecryptionFailed):
            ring.decrypt(tamper(token), associated_data=HERE)  # type: ignore[operator]

    def test_a_token_relabelled_with_another_key_id_does_not_decrypt(self) -> None:
        ring = Keyring.from_config({"k1": KEY_A, "k2": KEY_A}, "k1")  # even under the same key bytes
        token = ring.encrypt("Grace Hopper", associated_data=HERE)
        with pytest.raises(DecryptionFailed):
            ring.decrypt(token.replace("v1.k1.", "v1.k2.", 1), associated_data=HERE)

    def test_tokens_fit_the_length_columns_are_sized_with(self) -> None:
        ring = Keyring({"k" * 32: decode_key(KEY_A)}, "k" * 32)
        for value in ("x" * 200, "🏠" * 200):
            assert len(ring.encrypt(value, associated_data=HERE)) <= max_token_length(4 * 200)


class TestRotation:
    def test_readers_accept_every_key_in_the_ring_and_writers_use_the_active_one(self) -> None:
        old = Keyring.from_config({"a": KEY_A})
        token_a = old.encrypt("Grace", associated_data=HERE)
        both = Keyring.from_config({"a": KEY_A, "b": KEY_B}, "b")
        assert both.decrypt(token_a, associated_data=HERE) == "Grace"
        assert not both.is_current(token_a)
        token_b = both.encrypt("Grace", associated_data=HERE)
        assert key_id(token_b) == "b" and both.is_current(token_b)
        only_b = Keyring.from_config({"b": KEY_B})
        assert only_b.decrypt(token_b, associated_data=HERE) == "Grace"
        with pytest.raises(UnknownKey):
            only_b.decrypt(token_a, associated_data=HERE)


class TestFieldCipher:
    def test_a_value_is_bound_to_its_tenant_table_column_and_row(self) -> None:
        cipher = FieldCipher(Keyring.from_config({"a": KEY_A}), table="addresses")
        row = uuid.uuid4()
        token = cipher.encrypt("221B Baker Street", tenant_id="acme", column="line1_encrypted", row_id=row)
        assert cipher.decrypt(token, tenant_id="acme", column="line1_encrypted", row_id=row) == "221B Baker Street"
        for place in ({"tenant_id": "globex", "column": "line1_encrypted", "row_id": row},
                      {"tenant_id": "acme", "column": "line2_encrypted", "row_id": row},
                      {"tenant_id": "acme", "column": "line1_encrypted", "row_id": uuid.uuid4()}):
            with pytest.raises(DecryptionFailed):
                cipher.decrypt(token, **place)
        other_table = FieldCipher(cipher.keyring, table="orders")
        with pytest.raises(DecryptionFailed):
            other_table.decrypt(token, tenant_id="acme", column="line1_encrypted", row_id=row)


class TestKeyConfiguration:
    def test_keys_are_32_bytes_in_either_base64_alphabet(self) -> None:
        raw = bytes(range(200, 232))
        assert decode_key(base64.b64encode(raw).decode()) == raw
        assert decode_key(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw
        assert len(decode_key(generate_key())) == 32

    @pytest.mark.parametrize(("keys", "active", "message"), [
        ({"a": base64.b64encode(b"short").decode()}, "", "32 random bytes"),
        ({"a": "not base64 at all!"}, "", "base64"),
        ({}, "", "at least one key"),
        ({"a": KEY_A, "b": KEY_B}, "", "name the active key"),
        ({"a": KEY_A}, "b", "not in the ring"),
        ({"a.b": KEY_A}, "", "key id"),
    ])
    def test_bad_configuration_is_refused_with_a_reason(self, keys: dict[str, str], active: str,
                                                        message: str) -> None:
        with pytest.raises(ValueError, match=message):
            Keyring.from_config(keys, active)

    def test_one_key_is_the_active_key_without_being_named(self) -> None:
        assert Keyring.from_config({"only": KEY_A}).active_kid == "only"

    def test_the_development_ring_says_what_it_is(self) -> None:
        ring = Keyring.development()
        assert ring.active_kid == DEVELOPMENT_KID and ring.holds_development_key
        assert not Keyring.from_config({"a": KEY_A}).holds_development_key
