from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from amazonlite.platform.config import PLACEHOLDER_SECRETS, Environment, ServiceSettings

# Used only outside production when no secret is set. It must be a fixed value, not a random
# one: the signing keys it encrypts outlive the process (a restart must still decrypt them).
DEVELOPMENT_KEY_ENCRYPTION_SECRET = "amazonlite-development-only-key-encryption-secret"


class AuthSettings(ServiceSettings):
    """`AMAZONLITE_AUTH_*`."""

    service_name: ClassVar[str] = "auth"

    # Access tokens are short-lived by design: a stolen one is useful for at most this long.
    access_ttl_seconds: int = Field(default=900, ge=30, le=900)
    refresh_ttl_days: int = Field(default=30, ge=1, le=365)
    # Lifetimes of the single-use tokens mailed for email verification and password reset.
    email_verification_ttl_seconds: int = Field(default=48 * 3600, ge=1, le=30 * 86400)
    password_reset_ttl_seconds: int = Field(default=30 * 60, ge=1, le=86400)
    # Login throttling: failed logins allowed per account (tenant + email) and per client address
    # within a moving window; past either, logins are refused (429) until failures age out.
    login_failures_per_account: int = Field(default=5, ge=1)
    login_failures_per_address: int = Field(default=30, ge=1)
    login_failure_window_seconds: int = Field(default=15 * 60, ge=1, le=86400)
    # Sign-in with Google (OpenID Connect); disabled while no client id is set. The issuer's
    # discovery document names its endpoints and keys.
    google_issuer: str = "https://accounts.google.com"
    google_client_id: str = ""
    google_client_secret: str = ""
    google_redirect_uri: str = ""
    # How long a started sign-in may take to come back to the callback.
    oauth_request_ttl_seconds: int = Field(default=600, ge=1, le=3600)
    # Encrypts the signing keys' private halves at rest (AES-GCM under a key derived from it).
    key_encryption_secret: str = ""
    # The platform's environment (the same variable `PlatformSettings` reads).
    environment: Environment = Field(default=Environment.DEVELOPMENT, validation_alias="AMAZONLITE_ENVIRONMENT")

    @model_validator(mode="after")
    def _secret(self) -> AuthSettings:
        if self.key_encryption_secret in PLACEHOLDER_SECRETS:
            if self.environment is Environment.PRODUCTION:
                raise ValueError("AMAZONLITE_AUTH_KEY_ENCRYPTION_SECRET must be set outside development")
            self.key_encryption_secret = DEVELOPMENT_KEY_ENCRYPTION_SECRET
        elif len(self.key_encryption_secret) < 32:
            raise ValueError("AMAZONLITE_AUTH_KEY_ENCRYPTION_SECRET must be at least 32 characters")
        if self.google_client_id and not (self.google_client_secret and self.google_redirect_uri):
            raise ValueError("AMAZONLITE_AUTH_GOOGLE_CLIENT_SECRET and AMAZONLITE_AUTH_GOOGLE_REDIRECT_URI must be set "
                             "with AMAZONLITE_AUTH_GOOGLE_CLIENT_ID")
        return self

    @property
    def uses_development_secret(self) -> bool:
        return self.key_encryption_secret == DEVELOPMENT_KEY_ENCRYPTION_SECRET
