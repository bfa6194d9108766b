from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.routing import APIRoute

from amazonlite.platform.errors import problem_responses
from amazonlite.platform.idempotency import IdempotentRoute
from amazonlite.platform.service import RuntimeDep, SessionDep
from amazonlite.services.payments import schemas, service
from amazonlite.services.payments.auth import Customer, PaymentReader
from amazonlite.services.payments.errors import (
    InvalidProviderSignature,
    MalformedProviderMessage,
    NotASandboxPayment,
    PaymentNotFound,
    PaymentNotPending,
    PaymentProviderUnavailable,
    ProviderNotFound,
)

# The customer's calls honour an optional Idempotency-Key. The providers' webhooks carry none: they
# are de-duplicated by the provider's event id (a plain route of `router`).
router = APIRouter(prefix="/api/v1", route_class=IdempotentRoute)

PaymentId = Annotated[uuid.UUID, Path(description="The payment's id")]
ProviderName = Annotated[str, Path(description="The provider sending the webhook: `sandbox` or `razorpay`",
                                   pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
CallbackFields = Annotated[dict[str, str], Body(
    max_length=16, description="What the provider's checkout handed the client after payment, as it gave it",
    examples=[{"razorpay_order_id": "order_Q1x2Y3z4", "razorpay_payment_id": "pay_Q1x2Y3z4",
               "razorpay_signature": "<hex HMAC-SHA256>"}])]

WEBHOOK_BODY = {"requestBody": {"required": True, "description": "The provider's event exactly as it signed it",
                                "content": {"application/json": {"schema": {"type": "object"}}}}}


async def _providers(runtime: RuntimeDep) -> service.Providers:
    providers: service.Providers = runtime.state.providers
    return providers


async def _sandbox(runtime: RuntimeDep) -> service.HostedPage:
    gateway: service.HostedPage = runtime.state.sandbox_gateway
    return gateway


ProvidersDep = Annotated[service.Providers, Depends(_providers)]
SandboxDep = Annotated[service.HostedPage, Depends(_sandbox)]


async def receive_webhook(request: Request, session: SessionDep, providers: ProvidersDep, provider: ProviderName
                          ) -> schemas.WebhookAnswer:
    """A provider's signed webhook (no sign-in: the signature over the raw body is its proof). An
    event delivered again is answered 200 and has no second effect; a bad signature changes nothing
    (401)."""
    await service.receive_webhook(session, providers, provider, body=await request.body(), headers=request.headers)
    return schemas.WebhookAnswer()


router.add_api_route("/payments/webhooks/{provider}", receive_webhook, methods=["POST"],
                     response_model=schemas.WebhookAnswer, tags=["payments"], openapi_extra=WEBHOOK_BODY,
                     responses=problem_responses(MalformedProviderMessage, InvalidProviderSignature, ProviderNotFound,
                                                 PaymentProviderUnavailable),
                     route_class_override=APIRoute)


@router.get("/payments/{payment_id}", response_model=schemas.Payment, tags=["payments"],
            responses=problem_responses(PaymentNotFound))
async def read_payment(session: SessionDep, reader: PaymentReader, payment_id: PaymentId) -> schemas.Payment:
    """One payment, to its order's customer or a tenant admin: where it stands, and while it waits
    what a client needs to pay. Never card data, never a secret."""
    return await service.read_payment(session, reader, payment_id)


@router.post("/payments/{payment_id}/verify", response_model=schemas.Payment, tags=["payments"],
             responses=problem_responses(InvalidProviderSignature, PaymentNotFound, PaymentNotPending,
                                         PaymentProviderUnavailable))
async def verify_payment(session: SessionDep, customer: Customer, providers: ProvidersDep, payment_id: PaymentId,
                         fields: CallbackFields) -> schemas.Payment:
    """The customer's client hands over what the provider's checkout gave it after payment
    (Razorpay: `razorpay_order_id`, `razorpay_payment_id`, `razorpay_signature`); once verified
    against the payment's own intent, it counts as the provider's webhook would."""
    return await service.verify_callback(session, providers, customer, payment_id, fields)


@router.post("/payments/sandbox/{payment_id}/complete", status_code=202, response_model=schemas.Accepted,
             tags=["payments"], responses=problem_responses(PaymentNotFound, NotASandboxPayment, PaymentNotPending))
async def complete_on_sandbox(session: SessionDep, customer: Customer, sandbox: SandboxDep, payment_id: PaymentId,
                              data: schemas.SandboxCompletion) -> schemas.Accepted:
    """The sandbox's hosted page: the customer pays (`success`) or is declined (`failure`), once.
    Answered at once (202); the sandbox's webhooks follow after its latency, as a real gateway's."""
    await service.choose_on_hosted_page(session, customer, payment_id, data.outcome, sandbox)
    return schemas.Accepted()

