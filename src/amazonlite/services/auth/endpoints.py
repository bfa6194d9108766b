from __future__ import annotations

from typing import Annotated, cast

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import RedirectResponse

from amazonlite.platform.errors import Unauthorized, ValidationFailed, problem_responses
from amazonlite.platform.revocation import RevocationStore
from amazonlite.platform.service import RuntimeDep, SessionDep
from amazonlite.services.auth import oidc, recovery, service
from amazonlite.services.auth.auth import CurrentPrincipal, CurrentUser
from amazonlite.services.auth.errors import (
    EmailTaken,
    InvalidCredentials,
    InvalidIdToken,
    InvalidOAuthState,
    InvalidRefreshToken,
    InvalidToken,
    OAuthAccountNotLinkable,
    OAuthCodeRejected,
    OAuthProviderDisabled,
    OAuthProviderUnavailable,
    RefreshTokenReused,
    TooManyLoginAttempts,
    WeakPassword,
)
from amazonlite.services.auth.keys import KeyRing
from amazonlite.services.auth.oidc_client import OpenIdProvider
from amazonlite.services.auth.schemas import (
    ForgotPasswordAccepted,
    ForgotPasswordBody,
    JsonWebKeySet,
    LoginCredentials,
    Me,
    RefreshTokenBody,
    ResetPasswordBody,
    TokenPair,
    User,
    UserCreate,
    VerifyEmailBody,
)
from amazonlite.services.auth.settings import AuthSettings
from amazonlite.services.auth.throttle import LoginAttempt, LoginThrottle

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


async def _keyring(runtime: RuntimeDep) -> KeyRing:
    return cast(KeyRing, runtime.state.keyring)


async def _settings(runtime: RuntimeDep) -> AuthSettings:
    return cast(AuthSettings, runtime.settings)


async def _throttle(runtime: RuntimeDep) -> LoginThrottle:
    return cast(LoginThrottle, runtime.state.login_throttle)


async def _google(runtime: RuntimeDep) -> OpenIdProvider:
    return cast(OpenIdProvider, runtime.state.google)


async def _revocations(runtime: RuntimeDep) -> RevocationStore:
    return runtime.revocations


KeyRingDep = Annotated[KeyRing, Depends(_keyring)]
RevocationsDep = Annotated[RevocationStore, Depends(_revocations)]
GoogleDep = Annotated[OpenIdProvider, Depends(_google)]
ThrottleDep = Annotated[LoginThrottle, Depends(_throttle)]
SettingsDep = Annotated[AuthSettings, Depends(_settings)]


@router.post("/signup", status_code=status.HTTP_201_CREATED, response_model=User,
             responses=problem_responses(EmailTaken, WeakPassword))
async def signup(body: UserCreate, session: SessionDep, settings: SettingsDep) -> User:
    return User.model_validate(await service.signup(session, settings, body))


@router.post("/login", response_model=TokenPair,
             responses=problem_responses(InvalidCredentials, TooManyLoginAttempts, ValidationFailed))
async def login(body: LoginCredentials, session: SessionDep, keyring: KeyRingDep, settings: SettingsDep,
                throttle: ThrottleDep, principal: CurrentPrincipal) -> TokenPair:
    attempt = LoginAttempt(tenant_id=principal.tenant_id, email=body.email, client_address=principal.client_address)
    return await service.login(session, keyring, settings, throttle, attempt, password=body.password)


@router.post("/refresh", response_model=TokenPair,
             responses=problem_responses(InvalidRefreshToken, RefreshTokenReused, ValidationFailed))
async def refresh(body: RefreshTokenBody, session: SessionDep, keyring: KeyRingDep, settings: SettingsDep,
                  revocations: RevocationsDep) -> TokenPair:
    # A reused token raises RefreshTokenReused, which `keeps_changes`: the family's revocation is
    # committed, and then written to the revocation store, though the answer is 401.
    return await service.refresh(session, keyring, settings, revocations, refresh_token=body.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
             responses=problem_responses(Unauthorized, ValidationFailed))
async def logout(body: RefreshTokenBody, session: SessionDep, user: CurrentUser, settings: SettingsDep,
                 revocations: RevocationsDep) -> None:
    await service.logout(session, settings, revocations, user, refresh_token=body.refresh_token)


@router.get("/me", response_model=Me, responses=problem_responses(Unauthorized))
async def me(user: CurrentUser, session: SessionDep) -> Me:
    return await service.me(session, user)


@router.post("/verify-email", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
             responses=problem_responses(InvalidToken, ValidationFailed))
async def verify_email(body: VerifyEmailBody, session: SessionDep) -> None:
    await recovery.verify_email(session, token=body.token)


@router.post("/password/forgot", status_code=status.HTTP_202_ACCEPTED, response_model=ForgotPasswordAccepted,
             responses=problem_responses(ValidationFailed))
async def forgot_password(body: ForgotPasswordBody, session: SessionDep,
                          settings: SettingsDep) -> ForgotPasswordAccepted:
    await recovery.forgot_password(session, settings, email=body.email)
    return ForgotPasswordAccepted()


@router.post("/password/reset", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
             responses=problem_responses(InvalidToken, WeakPassword, ValidationFailed))
async def reset_password(body: ResetPasswordBody, session: SessionDep, settings: SettingsDep,
                         revocations: RevocationsDep) -> None:
    await recovery.reset_password(session, settings, revocations, token=body.token, password=body.password)


@router.get("/jwks.json", response_model=JsonWebKeySet)
async def jwks(session: SessionDep, response: Response) -> JsonWebKeySet:
    response.headers["Cache-Control"] = "public, max-age=300"
    return JsonWebKeySet.model_validate({"keys": await service.public_jwks(session)})


@router.get("/oauth/google/authorize", status_code=status.HTTP_302_FOUND, response_class=RedirectResponse,
            responses=problem_responses(OAuthProviderDisabled, OAuthProviderUnavailable))
async def google_authorize(session: SessionDep, settings: SettingsDep, google: GoogleDep) -> RedirectResponse:
    """Start signing in with Google: a redirect to its authorization endpoint."""
    url = await oidc.begin(session, settings, google)
    return RedirectResponse(url, status_code=status.HTTP_302_FOUND, headers={"Cache-Control": "no-store"})


@router.get("/oauth/google/callback", response_model=TokenPair,
            responses=problem_responses(OAuthProviderDisabled, InvalidOAuthState, OAuthCodeRejected, InvalidIdToken,
                                        OAuthAccountNotLinkable, OAuthProviderUnavailable, ValidationFailed))
async def google_callback(session: SessionDep, keyring: KeyRingDep, settings: SettingsDep, google: GoogleDep,
                          code: Annotated[str, Query(min_length=1, max_length=2048)],
                          state: Annotated[str, Query(min_length=1, max_length=256)]) -> TokenPair:
    """Where Google sends the browser back: our token pair for the account it vouches for."""
    return await oidc.complete(session, keyring, settings, google, code=code, state=state)
