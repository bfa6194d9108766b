from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, model_validator

from amazonlite.platform.config import Environment, ServiceSettings
from amazonlite.platform.crypto import Keyring


class UsersSettings(ServiceSettings):
    """`AMAZONLITE_USERS_*`."""

    service_name: ClassVar[str] = "users"

    # Keys that encrypt address PII at rest: JSON `{"<kid>": "<base64 of 32 random bytes>", ...}`.
    # Keep every key that stored values may still name; rotate by adding a key, making it active,
    # running `amazonlite keys rotate`, and only then removing the old one. Empty: outside
    # production, the fixed development key (`platform.crypto.DEVELOPMENT_KID`).
    pii_keys: dict[str, SecretStr] = Field(default_factory=dict)
    # The kid new values are encrypted under (may be omitted when the ring holds one key).
    pii_active_key: str = ""
    # Profiles read through Redis (distributed topology) for this long; 0 turns the cache off.
    profile_cache_ttl_seconds: int = Field(default=300, ge=0, le=86_400)
    # A Redis call slower than this is abandoned and the database answers instead.
    profile_cache_timeout_ms: int = Field(default=250, ge=10, le=5_000)
    # The platform's environment (the same variable `PlatformSettings` reads).
    environment: Environment = Field(default=Environment.DEVELOPMENT, validation_alias="AMAZONLITE_ENVIRONMENT")

    @model_validator(mode="after")
    def _keys(self) -> UsersSettings:
        if not self.pii_keys:
            if self.environment is Environment.PRODUCTION:
                raise ValueError("AMAZONLITE_USERS_PII_KEYS must be set outside development")
            if self.pii_active_key:
                raise ValueError("AMAZONLITE_USERS_PII_ACTIVE_KEY names a key, but AMAZONLITE_USERS_PII_KEYS is empty")
            return self
        try:
            ring = self.pii_keyring()
        except ValueError as exc:
            raise ValueError(f"AMAZONLITE_USERS_PII_KEYS / AMAZONLITE_USERS_PII_ACTIVE_KEY: {exc}") from None
        if ring.holds_development_key and self.environment is Environment.PRODUCTION:
            raise ValueError("AMAZONLITE_USERS_PII_KEYS holds the public development key; use random keys")
        return self

    def pii_keyring(self) -> Keyring:
        """The key ring for address PII (the development ring when none is configured)."""
        if not self.pii_keys:
            return Keyring.development()
        return Keyring.from_config({kid: key.get_secret_value() for kid, key in self.pii_keys.items()},
                                   self.pii_active_key)

    @property
    def uses_development_key(self) -> bool:
        return not self.pii_keys
