from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from amazonlite.platform.config import Environment, ServiceSettings
from amazonlite.services.payments.providers.base import DEV_SANDBOX_WEBHOOK_SECRET, ProviderSettings


class PaymentsSettings(ServiceSettings, ProviderSettings):
    """`AMAZONLITE_PAYMENTS_*`: the service's database (`ServiceSettings`) and its providers'
    settings (`ProviderSettings`, whose fields and variable names it keeps), so that
    `build_providers` takes it as it is."""

    service_name: ClassVar[str] = "payments"

    # How often the capture job takes the money of confirmed orders (and asks again after a failure).
    capture_interval_seconds: float = Field(default=2.0, gt=0)

    # The platform's environment (the same variable `PlatformSettings` reads).
    environment: Environment = Field(default=Environment.DEVELOPMENT, validation_alias="AMAZONLITE_ENVIRONMENT")

    @model_validator(mode="after")
    def _sandbox(self) -> PaymentsSettings:
        production = self.environment is Environment.PRODUCTION
        # In production the sandbox is off unless asked for: it confirms orders nobody paid for.
        if production and "sandbox_enabled" not in self.model_fields_set:
            self.sandbox_enabled = False
        # With the public development secret anyone could sign its webhooks and "pay" any sandbox order.
        if (production and self.sandbox_enabled
                and self.sandbox_webhook_secret.get_secret_value() in ("", DEV_SANDBOX_WEBHOOK_SECRET)):
            raise ValueError("AMAZONLITE_PAYMENTS_SANDBOX_WEBHOOK_SECRET must be set when the sandbox is enabled "
                             "in production")
        return self
