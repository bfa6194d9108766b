"""Edges of the users service outside HTTP: start-up and the CLI's key rotation.

Each opens its own units of work and calls the service and repository.
"""

from __future__ import annotations

from typing import cast

import structlog

from amazonlite.platform.service import ServiceRuntime
from amazonlite.platform.tenancy import UNSCOPED
from amazonlite.services.users import cache, service
from amazonlite.services.users.settings import UsersSettings

log = structlog.get_logger("amazonlite.users")


def _settings(runtime: ServiceRuntime) -> UsersSettings:
    return cast(UsersSettings, runtime.settings)


async def on_startup(runtime: ServiceRuntime) -> None:
    """Build the address cipher from the key ring, and the profile cache when there is a Redis."""
    settings = _settings(runtime)
    keyring = settings.pii_keyring()
    runtime.state.address_cipher = service.address_cipher(keyring)
    if settings.uses_development_key:
        log.warning("users.development_pii_key", detail="address PII is encrypted under the public development key")
    runtime.state.profile_cache = None
    if runtime.redis is not None and settings.profile_cache_ttl_seconds > 0:
        profile_cache = cache.ProfileCache(runtime.redis, prefix=runtime.platform.redis_prefix,
                                           ttl_seconds=settings.profile_cache_ttl_seconds,
                                           timeout_seconds=settings.profile_cache_timeout_ms / 1000)
        runtime.state.profile_cache = profile_cache


async def rotate_pii_keys(runtime: ServiceRuntime, *, batch_size: int = 500) -> int:
    """Re-encrypt every address value that is not under the active key, across all tenants; return
    the number of rows rewritten. Each batch is its own transaction, and a row changed meanwhile by
    its owner is left to that change (which already used the active key). Readers accept every key
    in the ring throughout, so this runs while the service serves; once it returns 0, keys other
    than the active one can leave the ring.

    Raises `platform.crypto.UnknownKey` if a row is under a key no longer in the ring (put it back)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cipher = service.address_cipher(_settings(runtime).pii_keyring())
    rewritten = 0
    after = None
    while True:
        async with runtime.db.session(tenant_id=UNSCOPED) as session:
            batch = await service.reencrypt_addresses(session, cipher, after=after, limit=batch_size)
        rewritten += batch.rewritten
        if batch.last_id is None or batch.scanned < batch_size:
            break
        after = batch.last_id
    log.info("users.pii_keys_rotated", active_key=cipher.keyring.active_kid, rows=rewritten)
    return rewritten
