from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import BaseModel, BeforeValidator, ConfigDict, EmailStr, Field, StringConstraints, WithJsonSchema

from amazonlite.platform.text import STRIPPED, NonBlankLine, normalise_email

UserId = uuid.UUID


def _normalised(value: object) -> object:
    return normalise_email(value) if isinstance(value, str) else value


def _any_case(word: str) -> str:
    return "".join(f"[{c}{c.upper()}]" for c in word)


# email-validator refuses domains reserved for special use (`a@b.test`, `a@x.local`): said in the
# schema, so that an address the document allows is one the server takes.
_SPECIAL_USE = "|".join(_any_case(name) for name in sorted(SPECIAL_USE_DOMAIN_NAMES))
EMAIL_SCHEMA = {"type": "string", "format": "email", "pattern": rf"^(?!.*@(?:.*\.)?(?:{_SPECIAL_USE})$)",
                "description": "Compared in NFKC form and lower case; no special-use domain (.test, .local, …)"}
# Stored and compared in one form (NFKC, no surrounding spaces, lower case), so that a look-alike
# (`ada@example.com` in full-width letters) is the same account as `ada@example.com`.
Email = Annotated[EmailStr, BeforeValidator(_normalised), WithJsonSchema(EMAIL_SCHEMA)]
# The password policy (passwords.policy_violation, checked by the service: 422 weak-password). The
# schema states its lengths and describes the rest, which depends on the email; the field itself
# takes up to 4096 characters, so that a longer one is refused by the policy, with its reason.
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 128
NewPassword = Annotated[str, Field(max_length=4096, json_schema_extra={
    "minLength": PASSWORD_MIN_LENGTH, "maxLength": PASSWORD_MAX_LENGTH,
    "description": f"{PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters, not only letters nor only digits, "
                   "and not containing the part of the email before the @ (when it has 3 characters or more)"})]
# Opaque refresh tokens are 43 characters; anything far longer is not one of ours.
RefreshTokenValue = Annotated[str, Field(min_length=1, max_length=256)]


class UserCreate(BaseModel):
    """The signup body."""

    model_config = ConfigDict(extra="forbid")

    email: Email
    password: NewPassword
    name: Annotated[NonBlankLine, StringConstraints(min_length=1, max_length=200), STRIPPED]


class User(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UserId
    email: str
    name: str
    roles: list[str]
    created_at: dt.datetime


class LoginCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: str = Field(min_length=1, max_length=4096)


class RefreshTokenBody(BaseModel):
    """The body of `refresh` and `logout`."""

    model_config = ConfigDict(extra="forbid")

    refresh_token: RefreshTokenValue


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds until the access token expires")


class Me(BaseModel):
    user_id: str
    tenant_id: str
    roles: list[str]
    email_verified: bool


# Mailed tokens are 43 characters; anything far longer is not one of ours.
EmailTokenValue = Annotated[str, Field(min_length=1, max_length=256)]


class VerifyEmailBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: EmailTokenValue


class ForgotPasswordBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email


class ForgotPasswordAccepted(BaseModel):
    """The same answer whether or not an account has the email."""

    detail: str = "If an account has this email, a password reset link is on its way"


class ResetPasswordBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: EmailTokenValue
    password: NewPassword


class JsonWebKey(BaseModel):
    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    use: Literal["sig"]
    alg: Literal["EdDSA"]


class JsonWebKeySet(BaseModel):
    keys: list[JsonWebKey]
