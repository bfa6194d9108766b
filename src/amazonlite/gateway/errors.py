"""The gateway's own problems; everything else is the upstream's answer, passed through."""

from __future__ import annotations

from amazonlite.platform.errors import AppError, Forbidden, NotFound, ServiceUnavailable, Unauthorized


class NoRoute(NotFound):
    title = "No such endpoint"


class InvalidAccessToken(Unauthorized):
    title = "The access token is not valid"


class TenantMismatch(Forbidden):
    type = "tenant-mismatch"
    title = "The tenant header contradicts the access token"


class UpstreamUnavailable(ServiceUnavailable):
    pass


class SigningKeysUnavailable(ServiceUnavailable):
    title = "Access tokens cannot be verified right now"


class UpstreamTimeout(AppError):
    status = 504
    type = "gateway-timeout"
    title = "A service took too long to answer"


class BadGateway(AppError):
    status = 502
    type = "bad-gateway"
    title = "A service gave an answer that could not be relayed"
