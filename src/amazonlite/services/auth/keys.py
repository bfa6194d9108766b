"""Signing keys: Ed25519 key pairs, their encryption at rest, their JWKs, and signing with them.

Pure cryptography, no I/O: the service loads and stores keys through its repository.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ISSUER = "amazonlite-auth"
AUDIENCE = "amazonlite"
ALGORITHM = "EdDSA"
_KEK_INFO = b"amazonlite-auth signing-key encryption v1"
_NONCE_BYTES = 12


class KeyDecryptionFailed(RuntimeError):
    """A stored private key cannot be decrypted: the key-encryption secret is not the one it was
    stored under. The service must not start (it would sign with nothing, or with a new key that
    verifiers do not know)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_encryption_key(secret: str) -> bytes:
    """The AES-256 key derived (HKDF-SHA256) from the key-encryption secret."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEK_INFO).derive(secret.encode())


def public_jwk(kid: str, public_key_b64: str) -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "x": public_key_b64, "kid": kid, "use": "sig", "alg": ALGORITHM}


def thumbprint(public_key_b64: str) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256), used as the key id."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": public_key_b64}, separators=(",", ":"),
                           sort_keys=True)
    return _b64(hashlib.sha256(canonical.encode()).digest())


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key pair, ready to store."""

    kid: str
    public_key: str
    private_key_encrypted: str


def generate_key(kek: bytes) -> NewKey:
    private = Ed25519PrivateKey.generate()
    public_b64 = _b64(private.public_key().public_bytes_raw())
    kid = thumbprint(public_b64)
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(kek).encrypt(nonce, private.private_bytes_raw(), kid.encode())
    return NewKey(kid=kid, public_key=public_b64, private_key_encrypted=_b64(nonce + sealed))


def decrypt_private_key(kek: bytes, kid: str, public_key_b64: str, private_key_encrypted: str) -> Ed25519PrivateKey:
    blob = _unb64(private_key_encrypted)
    try:
        raw = AESGCM(kek).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], kid.encode())
    except InvalidTag as exc:
        raise KeyDecryptionFailed(
            f"signing key {kid} cannot be decrypted: AMAZONLITE_AUTH_KEY_ENCRYPTION_SECRET is not the secret "
            "it was stored under") from exc
    private = Ed25519PrivateKey.from_private_bytes(raw)
    if _b64(private.public_key().public_bytes_raw()) != public_key_b64:
        raise KeyDecryptionFailed(f"signing key {kid}: the private key does not match its public key")
    return private


@dataclass(frozen=True)
class IssuedAccessToken:
    token: str
    jti: str
    expires_at: int


@dataclass(frozen=True)
class KeyRing:
    """The key this process signs with (the oldest active one: every replica picks the same)."""

    kid: str
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def issue_access_token(self, *, user_id: uuid.UUID, tenant_id: str, roles: list[str], session_id: uuid.UUID,
                           ttl_seconds: int) -> IssuedAccessToken:
        """A signed access token. `sid` (the OpenID Connect session id claim) is the refresh-token
        family it is issued from: revoking the family revokes the token."""
        now = int(time.time())
        jti = uuid.uuid4().hex
        claims: dict[str, Any] = {
            "iss": ISSUER, "aud": AUDIENCE, "sub": str(user_id), "tenant": tenant_id,
            "roles": sorted(roles), "jti": jti, "sid": str(session_id), "iat": now, "exp": now + ttl_seconds,
        }
        token = jwt.encode(claims, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid, "typ": "JWT"})
        return IssuedAccessToken(token=token, jti=jti, expires_at=now + ttl_seconds)
