"""Field encryption at rest: AES-256-GCM tokens that name their key and are bound to where they live.

A `Keyring` holds every key a service may still find in its tables and one *active* key that new
values are encrypted under. A value becomes a token

    v1.<kid>.<base64url(nonce | ciphertext | tag)>

so a reader decrypts with whichever key the token names (keys rotate without downtime: readers
accept every key in the ring; a background job re-encrypts old tokens under the active key, then
the old key can leave the ring). Each token is authenticated together with *associated data* that
says where it lives (`FieldCipher`: tenant, table, column and row id), so a token copied to another
row, column or tenant does not decrypt.

Keys come from settings as base64 strings (`Keyring.from_config`); outside production a service may
fall back to `Keyring.development()`, a fixed and clearly named key that protects nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

TOKEN_VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
KID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")

# Development and tests only: a fixed key (stored values must survive a restart), derived from a
# public string, so it protects nothing. Production refuses it.
DEVELOPMENT_KID = "development"
DEVELOPMENT_KEY = hashlib.sha256(b"amazonlite development-only field key: protects nothing").digest()


class CryptoError(Exception):
    """A token cannot be decrypted."""


class UnknownKey(CryptoError):
    """The token names a key that is not in the ring (was it removed before rotation finished?)."""


class DecryptionFailed(CryptoError):
    """The token is malformed, was altered, or belongs somewhere else (other associated data)."""


def generate_key() -> str:
    """A new random key, base64-encoded as the settings expect it."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def decode_key(text: str) -> bytes:
    """A key from its base64 text (standard or URL-safe alphabet, padding optional): 32 bytes."""
    cleaned = text.strip()
    try:
        raw = base64.b64decode(cleaned.replace("-", "+").replace("_", "/") + "=" * (-len(cleaned) % 4),
                               validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a key must be base64") from exc
    if len(raw) != KEY_BYTES:
        raise ValueError(f"a key must be {KEY_BYTES} random bytes (base64), not {len(raw)}")
    return raw


def max_token_length(plaintext_bytes: int) -> int:
    """The longest token a value of up to `plaintext_bytes` UTF-8 bytes can become (size columns
    with it: a `String(200)` value may take 800 bytes)."""
    return len(TOKEN_VERSION) + 2 + 32 + -(-(NONCE_BYTES + plaintext_bytes + TAG_BYTES) * 4 // 3)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


def _unb64(text: str) -> bytes:
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _split(token: str) -> tuple[str, str, str]:
    parts = token.split(".", 2)
    if len(parts) != 3 or parts[0] != TOKEN_VERSION or not KID_PATTERN.fullmatch(parts[1]):
        raise DecryptionFailed("not an encrypted value of a known format")
    return parts[0], parts[1], parts[2]


def key_id(token: str) -> str:
    """The id of the key a token was encrypted under."""
    return _split(token)[1]


class Keyring:
    """Keys by id, and the active one. Immutable; build a new ring to change keys."""

    def __init__(self, keys: Mapping[str, bytes], active: str) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        for kid, key in keys.items():
            if not KID_PATTERN.fullmatch(kid):
                raise ValueError(f"key id {kid!r} must be 1-32 letters, digits, '-' or '_'")
            if len(key) != KEY_BYTES:
                raise ValueError(f"key {kid!r} must be {KEY_BYTES} bytes")
        if active not in keys:
            raise ValueError(f"the active key {active!r} is not in the ring ({', '.join(sorted(keys))})")
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.items()}
        self._development = {kid for kid, key in keys.items() if key == DEVELOPMENT_KEY}
        self.active_kid = active

    @classmethod
    def from_config(cls, keys: Mapping[str, str], active: str = "") -> Keyring:
        """A ring from settings: `{kid: base64 key}` and the active kid (optional with one key)."""
        decoded: dict[str, bytes] = {}
        for kid, text in keys.items():
            try:
                decoded[kid] = decode_key(text)
            except ValueError as exc:
                raise ValueError(f"key {kid!r}: {exc}") from exc
        if not decoded:
            raise ValueError("a key ring needs at least one key")
        if not active:
            if len(decoded) != 1:
                raise ValueError("name the active key when the ring holds more than one")
            active = next(iter(decoded))
        return cls(decoded, active)

    @classmethod
    def development(cls) -> Keyring:
        return cls({DEVELOPMENT_KID: DEVELOPMENT_KEY}, DEVELOPMENT_KID)

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._ciphers)

    @property
    def holds_development_key(self) -> bool:
        """True if any key of the ring is the public development key (never acceptable in production)."""
        return bool(self._development)

    def encrypt(self, plaintext: str, *, associated_data: str) -> str:
        header = f"{TOKEN_VERSION}.{self.active_kid}"
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.active_kid].encrypt(nonce, plaintext.encode("utf-8"),
                                                        _aad(header, associated_data))
        return f"{header}.{_b64(nonce + sealed)}"

    def decrypt(self, token: str, *, associated_data: str) -> str:
        version, kid, body = _split(token)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise UnknownKey(f"the value is encrypted under key {kid!r}, which is not in the key ring")
        try:
            blob = _unb64(body)
        except (binascii.Error, ValueError) as exc:
            raise DecryptionFailed("not an encrypted value of a known format") from exc
        if len(blob) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionFailed("the encrypted value is truncated")
        try:
            plaintext = cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:],
                                       _aad(f"{version}.{kid}", associated_data))
        except InvalidTag as exc:
            raise DecryptionFailed("the value was altered or belongs to another place") from exc
        return plaintext.decode("utf-8")

    def is_current(self, token: str) -> bool:
        """True if the token is under the active key (rotation leaves it alone)."""
        return key_id(token) == self.active_kid


def _aad(header: str, associated_data: str) -> bytes:
    # The header is authenticated too; the NUL keeps the two parts from running into each other.
    return f"{header}\x00{associated_data}".encode()


class FieldCipher:
    """A key ring applied to one table's columns: each value is bound to its tenant, table, column
    and row, so a ciphertext copied anywhere else (another row, column or tenant) fails to decrypt.
    The row id must be known before the value is encrypted: assign it when the row is built."""

    def __init__(self, keyring: Keyring, *, table: str) -> None:
        self.keyring = keyring
        self.table = table

    def associated_data(self, *, tenant_id: str, column: str, row_id: object) -> str:
        return f"{tenant_id}:{self.table}:{column}:{row_id}"

    def encrypt(self, value: str, *, tenant_id: str, column: str, row_id: object) -> str:
        return self.keyring.encrypt(value, associated_data=self.associated_data(
            tenant_id=tenant_id, column=column, row_id=row_id))

    def decrypt(self, token: str, *, tenant_id: str, column: str, row_id: object) -> str:
        return self.keyring.decrypt(token, associated_data=self.associated_data(
            tenant_id=tenant_id, column=column, row_id=row_id))

    def is_current(self, token: str) -> bool:
        return self.keyring.is_current(token)
