from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from amazonlite.platform.money import Money

# Requests -------------------------------------------------------------------------------------------

class SandboxCompletion(BaseModel):
    """What the customer chose on the sandbox's hosted page."""

    model_config = ConfigDict(extra="forbid")

    outcome: Literal["success", "failure"]


# Answers --------------------------------------------------------------------------------------------

class Payment(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    provider: str
    status: str = Field(description="requested, authorized, capture_due (the order is confirmed), captured, failed, "
                                    "refunded, voided or cancelled")
    amount: Money
    client: dict[str, str] = Field(description="What a client needs to pay while the payment is requested (e.g. the "
                                               "sandbox's page_url); empty afterwards")
    created_at: dt.datetime
    updated_at: dt.datetime


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"


class WebhookAnswer(BaseModel):
    status: Literal["ok"] = "ok"
