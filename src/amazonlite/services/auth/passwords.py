"""Passwords: the policy, and argon2id hashing (in a thread: it is deliberately slow)."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from amazonlite.services.auth.schemas import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH

# A local part shorter than this ("jo@…") is not a meaningful thing to forbid inside a password.
MIN_LOCAL_PART = 3

# Stored for an account without a password (made by an identity provider): not an argon2 hash,
# so no password ever verifies against it.
UNUSABLE_HASH = "!"

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_dummy_hash: str | None = None


def policy_violation(password: str, email: str) -> str | None:
    """Why `password` is not acceptable for the account `email`, or None if it is."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"A password needs at least {PASSWORD_MIN_LENGTH} characters"
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"A password has at most {PASSWORD_MAX_LENGTH} characters"
    if password.isalpha():
        return "A password cannot be only letters; add a digit or a symbol"
    if password.isdigit():
        return "A password cannot be only digits; add a letter or a symbol"
    local = email.split("@", 1)[0].lower()
    if len(local) >= MIN_LOCAL_PART and local in password.lower():
        return "A password cannot contain the email address's name part"
    return None


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str, password: str) -> bool:
    if password_hash == UNUSABLE_HASH:  # as slow as a real verification: the answer reveals nothing
        await verify_against_dummy(password)
        return False
    return await asyncio.to_thread(_verify, password_hash, password)


async def prepare_dummy_hash() -> str:
    """The hash an unknown email is verified against (made once, at start, with current parameters)."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = await hash_password(secrets.token_urlsafe(16))
    return _dummy_hash


async def verify_against_dummy(password: str) -> None:
    """Spend the time a real verification costs, so an unknown email answers like a wrong password."""
    await verify_password(await prepare_dummy_hash(), password)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)

