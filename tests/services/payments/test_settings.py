"""What payments offers where: the sandbox moves no money, so production offers it only when asked,
and then only with a secret of its own."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from amazonlite.services.orders.settings import OrdersSettings
from amazonlite.services.payments.providers import build_providers
from amazonlite.services.payments.settings import PaymentsSettings
from tests.services.users.factories import KEY_A


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("AMAZONLITE_PAYMENTS_SANDBOX_ENABLED", "AMAZONLITE_PAYMENTS_SANDBOX_WEBHOOK_SECRET",
                 "AMAZONLITE_PAYMENTS_RAZORPAY_KEY_ID", "AMAZONLITE_ORDERS_PAYMENT_PROVIDERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AMAZONLITE_ENVIRONMENT", "production")
    return monkeypatch


def test_outside_production_the_sandbox_is_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMAZONLITE_ENVIRONMENT", "test")
    monkeypatch.delenv("AMAZONLITE_PAYMENTS_SANDBOX_ENABLED", raising=False)
    assert sorted(build_providers(PaymentsSettings())) == ["sandbox"]


def test_production_offers_no_sandbox_unless_asked(production: pytest.MonkeyPatch) -> None:
    settings = PaymentsSettings()
    assert not settings.sandbox_enabled
    assert build_providers(settings) == {}
    production.setenv("AMAZONLITE_PAYMENTS_RAZORPAY_KEY_ID", "rzp_live_x")
    production.setenv("AMAZONLITE_PAYMENTS_RAZORPAY_KEY_SECRET", "key-secret")
    production.setenv("AMAZONLITE_PAYMENTS_RAZORPAY_WEBHOOK_SECRET", "webhook-secret")
    assert sorted(build_providers(PaymentsSettings())) == ["razorpay"]


def test_a_sandbox_asked_for_in_production_needs_its_own_secret(production: pytest.MonkeyPatch) -> None:
    production.setenv("AMAZONLITE_PAYMENTS_SANDBOX_ENABLED", "true")
    with pytest.raises(ValidationError, match="SANDBOX_WEBHOOK_SECRET must be set"):
        PaymentsSettings()
    production.setenv("AMAZONLITE_PAYMENTS_SANDBOX_WEBHOOK_SECRET", "a-staging-secret-of-its-own")
    assert sorted(build_providers(PaymentsSettings())) == ["sandbox"]


def test_orders_in_production_takes_only_the_providers_it_is_told(production: pytest.MonkeyPatch) -> None:
    production.setenv("AMAZONLITE_ORDERS_PII_KEYS", f'{{"2026-12": "{KEY_A}"}}')
    with pytest.raises(ValidationError, match="AMAZONLITE_ORDERS_PAYMENT_PROVIDERS must name"):
        OrdersSettings()
    production.setenv("AMAZONLITE_ORDERS_PAYMENT_PROVIDERS", '["razorpay"]')
    assert OrdersSettings().payment_providers == ["razorpay"]
