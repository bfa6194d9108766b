"""Errors that carry their HTTP status, rendered as RFC 9457 problem documents.

A service raises a subclass of `AppError` (`OrderNotCancellable`, status 409); one handler turns
every error, including validation errors and unexpected ones, into `application/problem+json`.
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://amazonlite.dev/problems/"
PROBLEM_JSON = "application/problem+json"


class AppError(Exception):
    """Base of every expected error: a status, a stable problem `type` and a title."""

    status: ClassVar[int] = 400
    type: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"
    # An error that must not undo what the request did before it (a reused refresh token
    # revokes its family, then answers 401): the edge commits, then renders the problem.
    keeps_changes: ClassVar[bool] = False

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extra = extra

    def problem(self) -> dict[str, Any]:
        return {
            "type": PROBLEM_BASE + self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }


class BadRequest(AppError):
    pass


class ValidationFailed(AppError):
    status = 422
    type = "validation-error"
    title = "The request is not valid"


class Unauthorized(AppError):
    status = 401
    type = "unauthorized"
    title = "Authentication is required"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extra)


class Forbidden(AppError):
    status = 403
    type = "forbidden"
    title = "Not allowed"


class NotFound(AppError):
    status = 404
    type = "not-found"
    title = "Not found"


class Conflict(AppError):
    status = 409
    type = "conflict"
    title = "Conflict"


class PayloadTooLarge(AppError):
    status = 413
    type = "payload-too-large"
    title = "The request body is too large"


class ServiceUnavailable(AppError):
    status = 503
    type = "service-unavailable"
    title = "A service this request needs is unavailable"


PROBLEM_REF = "#/components/schemas/Problem"


def problem_responses(*errors: type[AppError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the errors an endpoint can answer with."""
    out: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        document_problem(out, error.status, error.type, error.title)
    return out


def document_problem(responses: dict[Any, Any], status: int, type_: str, title: str) -> None:
    """Add one problem to an operation's `responses`, keyed by the status as a string (as in the
    document). Problems that share a status share its entry, each named on a line of its description."""
    key = str(status)
    entry = responses.pop(status, None) or responses.get(key) or {}
    responses[key] = entry
    line = f"`{type_}`: {title}"
    described = entry.get("description") or ""
    if line not in described.split("\n"):
        entry["description"] = f"{described}\n{line}" if described else line
    entry.setdefault("content", {}).setdefault(PROBLEM_JSON, {"schema": {"$ref": PROBLEM_REF}})


# Refusals of the HTTP server itself (platform/server.py), before a request reaches any app.

class MalformedRequest(BadRequest):
    type = "malformed-request"
    title = "The request is not valid HTTP/1.1"


class RequestTimeout(AppError):
    status = 408
    type = "request-timeout"
    title = "The request did not arrive in time"


class UriTooLong(AppError):
    status = 414
    type = "uri-too-long"
    title = "The request's URL is too long"


class HeadersTooLarge(AppError):
    status = 431
    type = "headers-too-large"
    title = "The request's headers are too large"
