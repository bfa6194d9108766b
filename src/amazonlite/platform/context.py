"""Request-scoped context carried in contextvars: correlation id, tenant, principal.

Set once at the edge (the HTTP middleware, the consumer wrapper); read by logs, outgoing calls and
the outbox so that every line, call and event of one request carries the same ids.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

import structlog
from opentelemetry import trace

CORRELATION_HEADER = "x-correlation-id"
TENANT_SPAN_ATTRIBUTE = "amazonlite.tenant_id"
_CORRELATION_ID: ContextVar[str | None] = ContextVar("correlation_id", default=None)
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def current_correlation_id() -> str | None:
    return _CORRELATION_ID.get()


def accept_or_mint_correlation_id(value: str | None) -> str:
    """A client's correlation id if it is well formed, else a fresh one."""
    if value and _VALID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def bind_correlation_id(value: str) -> None:
    _CORRELATION_ID.set(value)
    structlog.contextvars.bind_contextvars(correlation_id=value)


def bind_tenant(tenant_id: str) -> None:
    """The tenant of this request or event, in every log line from here on and on the current span."""
    structlog.contextvars.bind_contextvars(tenant_id=tenant_id)
    trace.get_current_span().set_attribute(TENANT_SPAN_ATTRIBUTE, tenant_id)
