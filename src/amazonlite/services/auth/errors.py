from __future__ import annotations

from amazonlite.platform.errors import AppError, BadRequest, Conflict, Unauthorized, ValidationFailed


class EmailTaken(Conflict):
    type = "email-taken"
    title = "An account with this email already exists"


class WeakPassword(ValidationFailed):
    type = "weak-password"
    title = "The password is too weak"


class InvalidEmail(ValidationFailed):
    type = "invalid-email"
    title = "The email address is not valid"


class InvalidCredentials(Unauthorized):
    type = "invalid-credentials"
    title = "The email or password is wrong"


class InvalidRefreshToken(Unauthorized):
    type = "invalid-refresh-token"
    title = "The refresh token is unknown or expired"


class RefreshTokenReused(Unauthorized):
    """A spent token (or one of a revoked family) was presented: someone may hold a stolen copy,
    so its whole family is revoked, and that revocation is committed although the answer is 401."""

    type = "refresh-token-reused"
    title = "The refresh token was already used; its session is revoked"
    keeps_changes = True


class InvalidToken(BadRequest):
    """The same answer for an unknown, spent or expired verification or reset token."""

    type = "invalid-token"
    title = "The token is unknown, already used or expired"


class TooManyLoginAttempts(AppError):
    """Too many failed logins for the account or from the client's address; `Retry-After` says
    when the oldest failure leaves the window."""

    status = 429
    type = "too-many-login-attempts"
    title = "Too many failed logins; try again later"
