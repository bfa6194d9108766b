from __future__ import annotations

import hashlib
import hmac
import json
import random
import uuid
from typing import Any

import pytest
import requests
import responses

from amazonlite.services.payments.providers import (
    InvalidSignature,
    MalformedWebhook,
    ProviderEvent,
    ProviderRefused,
    ProviderSettings,
    ProviderUnavailable,
    RazorpayProvider,
    SandboxProvider,
    build_providers,
)

SANDBOX_SECRET = "sandbox-secret-for-tests"
KEY_ID = "rzp_test_1DP5mmOlF5G5ag"
KEY_SECRET = "razorpay-key-secret"
WEBHOOK_SECRET = "razorpay-webhook-secret"
API = "https://api.razorpay.com/v1"


def sign(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def make_sandbox(*, rng: random.Random | None = None, **settings: Any) -> SandboxProvider:
    return SandboxProvider(ProviderSettings(sandbox_webhook_secret=SANDBOX_SECRET, **settings), rng=rng)


def kinds(provider: SandboxProvider, webhooks: list[tuple[bytes, dict[str, str]]]) -> list[str]:
    return [provider.parse_webhook(body=body, headers=headers).kind for body, headers in webhooks]


class TestRegistry:
    def test_sandbox_always_and_razorpay_only_when_fully_configured(self) -> None:
        assert set(build_providers(ProviderSettings())) == {"sandbox"}
        partial = ProviderSettings(razorpay_key_id=KEY_ID, razorpay_key_secret=KEY_SECRET)
        assert set(build_providers(partial)) == {"sandbox"}
        full = ProviderSettings(razorpay_key_id=KEY_ID, razorpay_key_secret=KEY_SECRET,
                                razorpay_webhook_secret=WEBHOOK_SECRET)
        providers = build_providers(full)
        assert set(providers) == {"sandbox", "razorpay"}
        assert isinstance(providers["razorpay"], RazorpayProvider)


# Sandbox -----------------------------------------------------------------------------------------

class TestSandboxIntent:
    async def test_the_intent_points_the_client_at_the_hosted_page(self) -> None:
        payment_id = uuid.uuid4()
        intent = await make_sandbox(public_base_url="https://shop.example/").create_intent(
            payment_id=payment_id, order_id=uuid.uuid4(), amount=1999, currency="INR")
        assert intent.reference == f"sbx_{payment_id.hex}"
        assert intent.client["page_url"] == f"https://shop.example/api/v1/payments/sandbox/{payment_id}/complete"
        assert intent.client["method"] == "POST"

    def test_behaviour_settings_are_exposed_to_the_service(self) -> None:
        sandbox = make_sandbox(sandbox_latency_ms=250, sandbox_auto_approve=True)
        assert sandbox.latency_s == 0.25
        assert sandbox.auto_approve is True

    def test_there_is_no_client_callback(self) -> None:
        with pytest.raises(InvalidSignature, match="webhook only"):
            make_sandbox().verify_callback(reference="sbx_1", payload={"anything": "x"})


class TestSandboxWebhooks:
    def test_a_success_is_an_authorization_followed_by_an_ignored_completion(self) -> None:
        sandbox = make_sandbox()
        webhooks = sandbox.webhooks_for("sbx_abc", "success", 1999)
        events = [sandbox.parse_webhook(body=body, headers=headers) for body, headers in webhooks]
        authorized, completed = events
        assert (authorized.kind, authorized.reference, authorized.amount) == ("authorized", "sbx_abc", 1999)
        assert authorized.provider_payment_id is not None and authorized.provider_payment_id.startswith("sbxpay_")
        assert authorized.event_id == webhooks[0][1]["X-Sandbox-Event-Id"]
        assert completed.kind == "ignored" and completed.event_id != authorized.event_id

    def test_a_failure_is_a_failed_payment_with_a_reason(self) -> None:
        sandbox = make_sandbox()
        body, headers = sandbox.webhooks_for("sbx_abc", "failure", 1999)[0]
        event = sandbox.parse_webhook(body=body, headers=headers)
        assert event.kind == "failed" and event.reason == "payment_failed" and event.reference == "sbx_abc"

    def test_headers_are_read_whatever_their_case(self) -> None:
        sandbox = make_sandbox()
        body, headers = sandbox.webhooks_for("sbx_abc", "success", 100)[0]
        lowered = {name.lower(): value for name, value in headers.items()}
        assert sandbox.parse_webhook(body=body, headers=lowered).kind == "authorized"

    def test_a_tampered_body_is_refused(self) -> None:
        sandbox = make_sandbox()
        body, headers = sandbox.webhooks_for("sbx_abc", "success", 100)[0]
        with pytest.raises(InvalidSignature):
            sandbox.parse_webhook(body=body.replace(b"100", b"999"), headers=headers)

    def test_a_webhook_signed_with_another_secret_is_refused(self) -> None:
        body, headers = make_sandbox().webhooks_for("sbx_abc", "success", 100)[0]
        other = SandboxProvider(ProviderSettings(sandbox_webhook_secret="another-secret"))
        with pytest.raises(InvalidSignature):
            other.parse_webhook(body=body, headers=headers)

    def test_a_missing_signature_is_refused(self) -> None:
        sandbox = make_sandbox()
        body, headers = sandbox.webhooks_for("sbx_abc", "success", 100)[0]
        del headers["X-Sandbox-Signature"]
        with pytest.raises(InvalidSignature):
            sandbox.parse_webhook(body=body, headers=headers)

    def test_a_non_ascii_signature_is_refused_not_a_crash(self) -> None:
        sandbox = make_sandbox()
        body, headers = sandbox.webhooks_for("sbx_abc", "success", 100)[0]
        with pytest.raises(InvalidSignature):
            sandbox.parse_webhook(body=body, headers={**headers, "X-Sandbox-Signature": "é" * 64})

    @pytest.mark.parametrize("event_id", ["evt_someone_else", None])
    def test_an_event_id_header_that_is_not_the_signed_id_is_refused(self, event_id: str | None) -> None:
        sandbox = make_sandbox()
        body, headers = sandbox.webhooks_for("sbx_abc", "success", 100)[0]
        del headers["X-Sandbox-Event-Id"]
        if event_id is not None:
            headers["X-Sandbox-Event-Id"] = event_id
        with pytest.raises(InvalidSignature):
            sandbox.parse_webhook(body=body, headers=headers)

    def test_an_authentic_body_that_is_not_json_is_malformed(self) -> None:
        body = b"not json"
        with pytest.raises(MalformedWebhook):
            make_sandbox().parse_webhook(body=body, headers={"X-Sandbox-Signature": sign(SANDBOX_SECRET, body),
                                                             "X-Sandbox-Event-Id": "evt_1"})

    def test_an_unknown_type_is_ignored_and_a_refund_is_read(self) -> None:
        sandbox = make_sandbox()
        body, headers = sandbox.signed_webhook("payment.disputed", reference="sbx_abc", provider_payment_id="sbxpay_1")
        assert sandbox.parse_webhook(body=body, headers=headers).kind == "ignored"
        body, headers = sandbox.signed_webhook("refund.processed", reference="sbx_abc", provider_payment_id="sbxpay_1",
                                               amount=500)
        event = sandbox.parse_webhook(body=body, headers=headers)
        assert (event.kind, event.provider_payment_id, event.amount) == ("refunded", "sbxpay_1", 500)


class TestSandboxBehaviour:
    def test_duplicates_repeat_each_webhook_with_the_same_event_id(self) -> None:
        sandbox = make_sandbox(sandbox_duplicate_webhooks=True)
        webhooks = sandbox.webhooks_for("sbx_abc", "success", 100)
        ids = [sandbox.parse_webhook(body=body, headers=headers).event_id for body, headers in webhooks]
        assert len(ids) == 4 and ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]
        assert kinds(sandbox, webhooks) == ["authorized", "authorized", "ignored", "ignored"]

    def test_reordering_delivers_the_later_event_first(self) -> None:
        sandbox = make_sandbox(sandbox_reorder_webhooks=True)
        assert kinds(sandbox, sandbox.webhooks_for("sbx_abc", "success", 100)) == ["ignored", "authorized"]

    def test_a_failure_rate_of_one_declines_every_success(self) -> None:
        sandbox = make_sandbox(sandbox_failure_rate=1.0, rng=random.Random(7))
        body, headers = sandbox.webhooks_for("sbx_abc", "success", 100)[0]
        event = sandbox.parse_webhook(body=body, headers=headers)
        assert (event.kind, event.reason) == ("failed", "card_declined")

    def test_a_failure_rate_declines_about_that_share(self) -> None:
        sandbox = make_sandbox(sandbox_failure_rate=0.3, rng=random.Random(42))
        outcomes = [kinds(sandbox, sandbox.webhooks_for("sbx_abc", "success", 100))[0] for _ in range(1000)]
        assert 250 < outcomes.count("failed") < 350
        assert set(outcomes) == {"authorized", "failed"}

    async def test_a_refund_id_is_stable_per_idempotency_key(self) -> None:
        sandbox = make_sandbox()
        first = await sandbox.refund(provider_payment_id="sbxpay_1", amount=100, idempotency_key="key-1")
        again = await sandbox.refund(provider_payment_id="sbxpay_1", amount=100, idempotency_key="key-1")
        other = await sandbox.refund(provider_payment_id="sbxpay_1", amount=100, idempotency_key="key-2")
        assert first == again and first != other and first.startswith("sbxrfd_")


# Razorpay ----------------------------------------------------------------------------------------

@pytest.fixture
def razorpay() -> RazorpayProvider:
    return RazorpayProvider(key_id=KEY_ID, key_secret=KEY_SECRET, webhook_secret=WEBHOOK_SECRET, timeout_seconds=3.0)


def razorpay_error(code: str, description: str) -> dict[str, Any]:
    return {"error": {"code": code, "description": description}}


def payment_entity(*, status: str = "captured", **fields: Any) -> dict[str, Any]:
    return {"entity": {"id": "pay_29QQoUBi66xm2f", "entity": "payment", "amount": 50000, "currency": "INR",
                       "status": status, "order_id": "order_9A33XWu170gUtm", "method": "card", "notes": [],
                       "error_code": None, "error_description": None, **fields}}


def signed_webhook(document: dict[str, Any], *, secret: str = WEBHOOK_SECRET,
                   event_id: str | None = "evt_Hq2Z1X2Y3") -> tuple[bytes, dict[str, str]]:
    body = json.dumps(document).encode()
    headers = {"X-Razorpay-Signature": sign(secret, body)}
    if event_id is not None:
        headers["x-razorpay-event-id"] = event_id
    return body, headers


def webhook_document(event: str, **payload: Any) -> dict[str, Any]:
    return {"entity": "event", "account_id": "acc_BFQ7uQEaa7j2z7", "event": event, "contains": list(payload),
            "payload": payload, "created_at": 1567674606}


class TestRazorpayIntent:
    async def test_an_order_is_created_with_our_ids_and_a_timeout(self, razorpay: RazorpayProvider) -> None:
        payment_id, order_id = uuid.uuid4(), uuid.uuid4()
        with responses.RequestsMock() as api:
            api.add(responses.POST, f"{API}/orders", status=200,
                    json={"id": "order_EKwxwAgItmmXdp", "entity": "order", "amount": 50000, "currency": "INR",
                          "status": "created"})
            intent = await razorpay.create_intent(payment_id=payment_id, order_id=order_id, amount=50000,
                                                  currency="INR")
            request = api.calls[0].request
        assert json.loads(request.body) == {"amount": 50000, "currency": "INR", "receipt": str(order_id),
                                            "notes": {"payment_id": str(payment_id), "order_id": str(order_id)}}
        assert request.req_kwargs["timeout"] == 3.0
        assert intent.reference == "order_EKwxwAgItmmXdp"
        assert intent.client == {"key_id": KEY_ID, "order_id": "order_EKwxwAgItmmXdp", "amount": "50000",
                                 "currency": "INR"}
        assert KEY_SECRET not in json.dumps(intent.client)

    async def test_a_bad_request_is_a_refusal_that_says_why(self, razorpay: RazorpayProvider) -> None:
        with responses.RequestsMock() as api:
            api.add(responses.POST, f"{API}/orders", status=400,
                    json=razorpay_error("BAD_REQUEST_ERROR", "Order amount less than minimum amount allowed"))
            with pytest.raises(ProviderRefused, match="less than minimum amount"):
                await razorpay.create_intent(payment_id=uuid.uuid4(), order_id=uuid.uuid4(), amount=1, currency="INR")

    @pytest.mark.parametrize("failure", [
        {"status": 500, "json": razorpay_error("SERVER_ERROR", "The server encountered an error.")},
        {"status": 502, "json": razorpay_error("GATEWAY_ERROR", "Payment processing failed due to error at bank")},
        {"status": 503, "body": "<html>Service Unavailable</html>"},
        {"body": requests.exceptions.ConnectionError("connection refused")},
        {"body": requests.exceptions.ReadTimeout("read timed out")},
    ], ids=["server-error", "gateway-error", "not-json", "connection-error", "timeout"])
    async def test_an_outage_is_unavailable(self, razorpay: RazorpayProvider, failure: dict[str, Any]) -> None:
        with responses.RequestsMock() as api:
            api.add(responses.POST, f"{API}/orders", **failure)
            with pytest.raises(ProviderUnavailable):
                await razorpay.create_intent(payment_id=uuid.uuid4(), order_id=uuid.uuid4(), amount=100,
                                             currency="INR")


class TestRazorpayCallback:
    ORDER = "order_9A33XWu170gUtm"
    PAYMENT = "pay_29QQoUBi66xm2f"

    def payload(self, *, order_id: str = ORDER, signed_order: str = ORDER, secret: str = KEY_SECRET) -> dict[str, str]:
        return {"razorpay_order_id": order_id, "razorpay_payment_id": self.PAYMENT,
                "razorpay_signature": sign(secret, f"{signed_order}|{self.PAYMENT}".encode())}

    def test_a_good_signature_authorizes_the_stored_order(self, razorpay: RazorpayProvider) -> None:
        event = razorpay.verify_callback(reference=self.ORDER, payload=self.payload())
        assert event == ProviderEvent(event_id=None, reference=self.ORDER, kind="authorized",
                                      provider_payment_id=self.PAYMENT)

    def test_a_bad_signature_is_refused(self, razorpay: RazorpayProvider) -> None:
        payload = {**self.payload(), "razorpay_signature": "0" * 64}
        with pytest.raises(InvalidSignature):
            razorpay.verify_callback(reference=self.ORDER, payload=payload)

    def test_a_payload_for_another_order_is_refused(self, razorpay: RazorpayProvider) -> None:
        # Genuinely signed by Razorpay, but for another order of the same account.
        other = self.payload(order_id="order_OTHER000000001", signed_order="order_OTHER000000001")
        with pytest.raises(InvalidSignature):
            razorpay.verify_callback(reference=self.ORDER, payload=other)

    def test_a_signature_for_another_order_is_refused_even_when_the_payload_names_ours(
            self, razorpay: RazorpayProvider) -> None:
        with pytest.raises(InvalidSignature):
            razorpay.verify_callback(reference=self.ORDER, payload=self.payload(signed_order="order_OTHER000000001"))

    def test_a_signature_made_with_the_webhook_secret_is_refused(self, razorpay: RazorpayProvider) -> None:
        with pytest.raises(InvalidSignature):
            razorpay.verify_callback(reference=self.ORDER, payload=self.payload(secret=WEBHOOK_SECRET))

    @pytest.mark.parametrize("missing", ["razorpay_order_id", "razorpay_payment_id", "razorpay_signature"])
    def test_a_missing_field_is_refused(self, razorpay: RazorpayProvider, missing: str) -> None:
        payload = self.payload()
        del payload[missing]
        with pytest.raises(InvalidSignature):
            razorpay.verify_callback(reference=self.ORDER, payload=payload)


class TestRazorpayWebhooks:
    @pytest.mark.parametrize(("document", "expected"), [
        (webhook_document("payment.authorized", payment=payment_entity(status="authorized")),
         ("order_9A33XWu170gUtm", "authorized", "pay_29QQoUBi66xm2f", 50000, None)),
        (webhook_document("payment.captured", payment=payment_entity()),
         ("order_9A33XWu170gUtm", "captured", "pay_29QQoUBi66xm2f", 50000, None)),
        (webhook_document("payment.failed", payment=payment_entity(
            status="failed", error_code="BAD_REQUEST_ERROR",
            error_description="Payment failed due to insufficient balance")),
         ("order_9A33XWu170gUtm", "failed", "pay_29QQoUBi66xm2f", 50000,
          "Payment failed due to insufficient balance")),
        (webhook_document("order.paid", payment=payment_entity(),
                          order={"entity": {"id": "order_9A33XWu170gUtm", "entity": "order", "amount": 50000,
                                            "amount_paid": 50000, "amount_due": 0, "status": "paid"}}),
         ("order_9A33XWu170gUtm", "captured", "pay_29QQoUBi66xm2f", 50000, None)),
        (webhook_document("refund.processed", payment=payment_entity(),
                          refund={"entity": {"id": "rfnd_FS8TWyPrCsa0OB", "entity": "refund", "amount": 20000,
                                             "payment_id": "pay_29QQoUBi66xm2f", "receipt": None}}),
         ("order_9A33XWu170gUtm", "refunded", "pay_29QQoUBi66xm2f", 20000, None)),
    ], ids=["payment.authorized", "payment.captured", "payment.failed", "order.paid", "refund.processed"])
    def test_each_mapped_event_parses(self, razorpay: RazorpayProvider, document: dict[str, Any],
                                      expected: tuple[str, str, str, int, str | None]) -> None:
        body, headers = signed_webhook(document)
        event = razorpay.parse_webhook(body=body, headers=headers)
        assert event.event_id == "evt_Hq2Z1X2Y3"
        assert (event.reference, event.kind, event.provider_payment_id, event.amount, event.reason) == expected

    def test_a_refund_without_its_payment_is_resolved_by_payment_id(self, razorpay: RazorpayProvider) -> None:
        document = webhook_document("refund.created", refund={"entity": {
            "id": "rfnd_FS8TWyPrCsa0OB", "amount": 20000, "payment_id": "pay_29QQoUBi66xm2f"}})
        event = razorpay.parse_webhook(body=(signed := signed_webhook(document))[0], headers=signed[1])
        assert (event.reference, event.kind, event.provider_payment_id) == ("", "refunded", "pay_29QQoUBi66xm2f")

    @pytest.mark.parametrize("name", ["payment.dispute.created", "refund.failed", "invoice.paid"])
    def test_other_events_are_ignored(self, razorpay: RazorpayProvider, name: str) -> None:
        body, headers = signed_webhook(webhook_document(name, payment=payment_entity()))
        event = razorpay.parse_webhook(body=body, headers=headers)
        assert (event.kind, event.reference, event.event_id) == ("ignored", "order_9A33XWu170gUtm", "evt_Hq2Z1X2Y3")

    def test_a_webhook_signed_with_the_key_secret_is_refused(self, razorpay: RazorpayProvider) -> None:
        body, headers = signed_webhook(webhook_document("payment.captured", payment=payment_entity()),
                                       secret=KEY_SECRET)
        with pytest.raises(InvalidSignature):
            razorpay.parse_webhook(body=body, headers=headers)

    def test_a_tampered_body_is_refused(self, razorpay: RazorpayProvider) -> None:
        body, headers = signed_webhook(webhook_document("payment.captured", payment=payment_entity()))
        with pytest.raises(InvalidSignature):
            razorpay.parse_webhook(body=body.replace(b"50000", b"5"), headers=headers)

    def test_a_webhook_without_an_event_id_is_malformed(self, razorpay: RazorpayProvider) -> None:
        body, headers = signed_webhook(webhook_document("payment.captured", payment=payment_entity()), event_id=None)
        with pytest.raises(MalformedWebhook):
            razorpay.parse_webhook(body=body, headers=headers)

    def test_a_payment_event_without_its_payment_is_malformed(self, razorpay: RazorpayProvider) -> None:
        body, headers = signed_webhook(webhook_document("payment.captured"))
        with pytest.raises(MalformedWebhook):
            razorpay.parse_webhook(body=body, headers=headers)


class TestRazorpayCapture:
    async def test_a_capture_sends_amount_and_currency(self, razorpay: RazorpayProvider) -> None:
        with responses.RequestsMock() as api:
            api.add(responses.POST, f"{API}/payments/pay_29QQoUBi66xm2f/capture", json={"id": "pay_29QQoUBi66xm2f",
                                                                                         "status": "captured"})
            await razorpay.capture(provider_payment_id="pay_29QQoUBi66xm2f", amount=50000, currency="INR")
            assert json.loads(api.calls[0].request.body) == {"amount": 50000, "currency": "INR"}

    async def test_capturing_a_captured_payment_succeeds(self, razorpay: RazorpayProvider) -> None:
        with responses.RequestsMock() as api:
            api.add(responses.POST, f"{API}/payments/pay_29QQoUBi66xm2f/capture", status=400,
                    json=razorpay_error("BAD_REQUEST_ERROR", "This payment has already been captured"))
            await razorpay.capture(provider_payment_id="pay_29QQoUBi66xm2f", amount=50000, currency="INR")
            assert len(api.calls) == 1

    async def test_another_refusal_is_raised(self, razorpay: RazorpayProvider) -> None:
        with responses.RequestsMock() as api:
            api.add(responses.POST, f"{API}/payments/pay_29QQoUBi66xm2f/capture", status=400,
                    json=razorpay_error("BAD_REQUEST_ERROR",
                                        "Capture amount must be equal to the amount authorized"))
            with pytest.raises(ProviderRefused, match="equal to the amount authorized"):
                await razorpay.capture(provider_payment_id="pay_29QQoUBi66xm2f", amount=1, currency="INR")


class TestRazorpayRefund:
    REFUNDS = f"{API}/payments/pay_29QQoUBi66xm2f/refunds"

    @pytest.mark.parametrize("existing", [
        {"id": "rfnd_EXISTING00001", "amount": 20000, "receipt": "refund-key-1", "notes": []},
        {"id": "rfnd_EXISTING00001", "amount": 20000, "receipt": None, "notes": {"idempotency_key": "refund-key-1"}},
    ], ids=["by-receipt", "by-notes"])
    async def test_an_existing_refund_for_the_key_is_returned_without_another(
            self, razorpay: RazorpayProvider, existing: dict[str, Any]) -> None:
        with responses.RequestsMock() as api:
            api.add(responses.GET, self.REFUNDS, json={"entity": "collection", "count": 2, "items": [
                {"id": "rfnd_OTHER0000001", "amount": 100, "receipt": "another-key", "notes": []}, existing]})
            refund_id = await razorpay.refund(provider_payment_id="pay_29QQoUBi66xm2f", amount=20000,
                                              idempotency_key="refund-key-1")
            assert [call.request.method for call in api.calls] == ["GET"]
            assert api.calls[0].request.params == {"count": "100"}
        assert refund_id == "rfnd_EXISTING00001"

    async def test_a_new_key_creates_one_refund(self, razorpay: RazorpayProvider) -> None:
        with responses.RequestsMock() as api:
            api.add(responses.GET, self.REFUNDS, json={"entity": "collection", "count": 1, "items": [
                {"id": "rfnd_OTHER0000001", "amount": 100, "receipt": "another-key", "notes": []}]})
            api.add(responses.POST, f"{API}/payments/pay_29QQoUBi66xm2f/refund",
                    json={"id": "rfnd_NEW000000001", "entity": "refund", "amount": 20000})
            refund_id = await razorpay.refund(provider_payment_id="pay_29QQoUBi66xm2f", amount=20000,
                                              idempotency_key="refund-key-2")
            assert [call.request.method for call in api.calls] == ["GET", "POST"]
            assert json.loads(api.calls[1].request.body) == {"amount": 20000, "receipt": "refund-key-2",
                                                             "notes": {"idempotency_key": "refund-key-2"}}
        assert refund_id == "rfnd_NEW000000001"

    async def test_void_calls_nothing(self, razorpay: RazorpayProvider) -> None:
        # Razorpay refunds an uncaptured authorization by itself; any request here would fail the mock.
        with responses.RequestsMock() as api:
            await razorpay.void(reference="order_9A33XWu170gUtm", provider_payment_id="pay_29QQoUBi66xm2f")
            assert len(api.calls) == 0
