"""The gateway's own problems; everything else is the upstream's answer, passed through.

An upstream that cannot be reached, times out or breaks off its answer raises the kernel's
resilience errors (`CircuitOpen`, `BulkheadFull`, `DownstreamUnavailable` 503, `DownstreamTimeout`
504, `DownstreamFailed` 502: platform/resilience.py).
"""

from __future__ import annotations

from amazonlite.platform.errors import AppError, Forbidden, NotFound, ServiceUnavailable, Unauthorized


class NoRoute(NotFound):
    title = "No such endpoint"


class InvalidAccessToken(Unauthorized):
    title = "The access token is not valid"


class TenantMismatch(Forbidden):
    type = "tenant-mismatch"
    title = "The tenant header contradicts the access token"


class SigningKeysUnavailable(ServiceUnavailable):
    title = "Access tokens cannot be verified right now"


class UnknownTenant(NotFound):
    type = "unknown-tenant"
    title = "There is no such tenant"


class TenantSuspended(Forbidden):
    type = "tenant-suspended"
    title = "The tenant is suspended"


class TenantsUnavailable(ServiceUnavailable):
    title = "The tenant's settings cannot be read right now"


class RateLimited(AppError):
    status = 429
    type = "rate-limited"
    title = "Too many requests"
