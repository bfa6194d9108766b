"""Settings: one platform-wide class and one per service, each with its own environment prefix.

Secrets fail fast outside development: a missing or placeholder secret stops the process at
start, never at the first request.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from amazonlite.platform.crypto import Keyring

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "development"})


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class PlatformSettings(BaseSettings):
    """Settings every process shares (`AMAZONLITE_*`)."""

    model_config = SettingsConfigDict(env_prefix="AMAZONLITE_", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path("data")
    # Kafka bootstrap servers; empty means the in-process bus (embedded topology).
    kafka_bootstrap: str = ""
    kafka_topic_partitions: int = 3
    # Consumer group liveness: a replica that misses heartbeats for the session timeout loses its
    # partitions to the others. Shorter means faster failover (and faster group joins on tansu).
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 3_000
    # How long one request to the broker (a send, an offset commit, a topic listing) may take before
    # it fails and is retried (aiokafka's own default, 40 s, held the relay for minutes).
    kafka_request_timeout_ms: int = 5_000
    # A consumer group that has not polled or committed successfully for this long, or has messages
    # waiting that it has not consumed for this long, is stopped and started again, its topics
    # recreated (a broker that came back with empty storage).
    kafka_consumer_restart_after_ms: int = 10_000
    # The longest a fetch waits for messages at the broker. Short keeps each saga step quick (the
    # client's 500 ms default makes every hop wait); a broker that answers fetches empty while
    # messages wait (tansu on object storage reads slower than 10 ms) needs it longer.
    kafka_fetch_max_wait_ms: int = Field(default=10, ge=1)
    # Redis URL; empty means in-memory stores (embedded topology).
    redis_url: str = ""
    redis_prefix: str = "amazonlite"
    # Shared secret for the short-lived internal tokens the gateway and services mint.
    internal_token_secret: str = ""
    internal_token_ttl_seconds: int = 60
    log_level: str = "INFO"
    log_json: bool = True
    max_body_bytes: int = 1_048_576
    # Consumers: attempts before an event is dead-lettered, and the backoff between them.
    consumer_max_attempts: int = 5
    consumer_backoff_initial_ms: int = 50
    consumer_backoff_max_ms: int = 2_000
    outbox_poll_interval_ms: int = 250
    # The relay gives up on a batch that the bus has not accepted in this time, and tries again.
    outbox_publish_timeout_ms: int = 5_000
    # Readiness: a consumer group that has not polled or committed successfully for this long, and
    # an outbox whose oldest unpublished event is older than this, fail `/health/ready`.
    consumer_stale_after_ms: int = 30_000
    outbox_stale_after_ms: int = 60_000

    @model_validator(mode="after")
    def _secrets(self) -> PlatformSettings:
        if self.internal_token_secret in PLACEHOLDER_SECRETS:
            if self.environment is Environment.PRODUCTION:
                raise ValueError("AMAZONLITE_INTERNAL_TOKEN_SECRET must be set outside development")
            # One process (the embedded topology, a test) mints and checks its own tokens.
            self.internal_token_secret = secrets.token_urlsafe(32)
        elif len(self.internal_token_secret) < 32:
            raise ValueError("AMAZONLITE_INTERNAL_TOKEN_SECRET must be at least 32 characters")
        return self

    @property
    def embedded_bus(self) -> bool:
        return not self.kafka_bootstrap


@cache
def platform_settings() -> PlatformSettings:
    return PlatformSettings()


class ServiceSettings(BaseSettings):
    """Base of every service's settings; a subclass sets `service_name` and its env prefix.

    `database_url` defaults to a SQLite file per service under the data directory.
    """

    model_config = SettingsConfigDict(extra="ignore")
    service_name: ClassVar[str]

    database_url: str = ""
    database_pool_size: int = Field(default=10, ge=1)
    database_echo: bool = False

    def consumer_group(self) -> str | None:
        """The consumer group of the service's replicas (and its inbox's name); None: the service's
        name, one group for all of them, so that each event is applied once. A service whose every
        replica keeps a read model of its own (the search service's on-disk index) names one per
        replica."""
        return None

    def resolved_database_url(self, platform: PlatformSettings) -> str:
        if self.database_url:
            return self.database_url
        path = (platform.data_dir / f"{self.service_name}.sqlite3").resolve()
        return f"sqlite+aiosqlite:///{path}"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("service_name")
        if name:
            cls.model_config = SettingsConfigDict(env_prefix=f"AMAZONLITE_{name.upper()}_", extra="ignore")


class PiiKeySettings(ServiceSettings):
    """Settings of a service that stores personal data encrypted at rest (`platform/crypto.py`):
    `AMAZONLITE_<SERVICE>_PII_KEYS` and `…_PII_ACTIVE_KEY`."""

    # Keys that encrypt PII at rest: JSON `{"<kid>": "<base64 of 32 random bytes>", ...}`. Keep every
    # key that stored values may still name; rotate by adding a key, making it active, running
    # `amazonlite keys rotate`, and only then removing the old one. Empty: outside production, the
    # fixed development key (`platform.crypto.DEVELOPMENT_KID`).
    pii_keys: dict[str, SecretStr] = Field(default_factory=dict)
    # The kid new values are encrypted under (may be omitted when the ring holds one key).
    pii_active_key: str = ""
    # The platform's environment (the same variable `PlatformSettings` reads).
    environment: Environment = Field(default=Environment.DEVELOPMENT, validation_alias="AMAZONLITE_ENVIRONMENT")

    @model_validator(mode="after")
    def _keys(self) -> Self:
        variable = f"AMAZONLITE_{self.service_name.upper()}_PII_KEYS"
        if not self.pii_keys:
            if self.environment is Environment.PRODUCTION:
                raise ValueError(f"{variable} must be set outside development")
            if self.pii_active_key:
                raise ValueError(f"{variable[:-4]}ACTIVE_KEY names a key, but {variable} is empty")
            return self
        try:
            ring = self.pii_keyring()
        except ValueError as exc:
            raise ValueError(f"{variable} / {variable[:-4]}ACTIVE_KEY: {exc}") from None
        if ring.holds_development_key and self.environment is Environment.PRODUCTION:
            raise ValueError(f"{variable} holds the public development key; use random keys")
        return self

    def pii_keyring(self) -> Keyring:
        """The key ring for PII (the development ring when none is configured)."""
        if not self.pii_keys:
            return Keyring.development()
        return Keyring.from_config({kid: key.get_secret_value() for kid, key in self.pii_keys.items()},
                                   self.pii_active_key)

    @property
    def uses_development_key(self) -> bool:
        return not self.pii_keys
