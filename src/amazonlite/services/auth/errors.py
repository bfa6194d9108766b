from __future__ import annotations

from amazonlite.platform.errors import (
    AppError,
    BadRequest,
    Conflict,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
)


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


class OAuthProviderDisabled(NotFound):
    type = "oauth-provider-disabled"
    title = "Sign-in with this provider is not enabled"


class InvalidOAuthState(BadRequest):
    """The callback's `state` is unknown (or of another tenant), already used or expired."""

    type = "invalid-oauth-state"
    title = "The sign-in attempt is unknown, already completed or expired; start again"


class OAuthCodeRejected(BadRequest):
    """The provider refused to exchange the code. The sign-in attempt stays spent."""

    type = "oauth-code-rejected"
    title = "The identity provider did not accept the authorization code"
    keeps_changes = True


class InvalidIdToken(BadRequest):
    """The ID token failed validation (signature, issuer, audience, expiry or nonce). The sign-in
    attempt stays spent."""

    type = "invalid-id-token"
    title = "The identity provider's ID token is not valid"
    keeps_changes = True


class OAuthAccountNotLinkable(Conflict):
    """A local account has the provider's email, and either side has not verified it: linking by
    an unproven email would hand the account to whoever claims the address."""

    type = "oauth-account-not-linkable"
    title = "An account with this email exists; sign in with its password and verify the email first"
    keeps_changes = True


class OAuthProviderUnavailable(ServiceUnavailable):
    type = "oauth-provider-unavailable"
    title = "The identity provider could not be reached"
    keeps_changes = True
