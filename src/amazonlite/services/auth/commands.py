"""Edges of the auth service outside HTTP: start-up, demo data and the CLI's `create-admin`.

Each opens its own unit of work and calls the service.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import cast

import structlog
from pydantic import TypeAdapter, ValidationError

from amazonlite.platform.config import Environment
from amazonlite.platform.security import Role
from amazonlite.platform.service import ServiceRuntime
from amazonlite.platform.tenancy import DEFAULT_TENANT, UNSCOPED, validate_tenant_id
from amazonlite.services.auth import oidc, passwords, revocations, service
from amazonlite.services.auth.errors import InvalidEmail
from amazonlite.services.auth.schemas import Email
from amazonlite.services.auth.settings import AuthSettings
from amazonlite.services.auth.throttle import LoginThrottle, storage_for

log = structlog.get_logger("amazonlite.auth")

_EMAIL: TypeAdapter[str] = TypeAdapter(Email)


@dataclass(frozen=True)
class DemoAccount:
    """A demo account `seed` creates (its password is public: demo data only)."""

    email: str
    password: str
    name: str
    role: str


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("admin@demo.amazonlite.dev", "demo-admin-password", "Demo Admin", Role.TENANT_ADMIN.value),
    DemoAccount("shopper@demo.amazonlite.dev", "demo-shopper-password", "Demo Shopper", Role.CUSTOMER.value),
)


def _settings(runtime: ServiceRuntime) -> AuthSettings:
    return cast(AuthSettings, runtime.settings)


async def on_startup(runtime: ServiceRuntime) -> None:
    """Load the signing key ring (creating the first key if there is none), and put back into the
    revocation store every revocation (of an access token or of a whole refresh-token family) whose
    access tokens may still be alive: the database is the record, the store (memory when embedded)
    its mirror."""
    settings = _settings(runtime)
    if runtime.platform.environment is Environment.PRODUCTION and settings.uses_development_secret:
        raise RuntimeError("AMAZONLITE_AUTH_KEY_ENCRYPTION_SECRET must be set in production")
    # Signing keys are platform-wide: an unscoped session. Insert, commit, then re-read, so that
    # replicas racing to create the first key all end up signing with the same (oldest) one.
    async with runtime.db.session(tenant_id=UNSCOPED) as session:
        await service.ensure_signing_key(session, settings)
    async with runtime.db.session(tenant_id=UNSCOPED) as session:
        runtime.state.keyring = await service.load_keyring(session, settings)
    in_force = await revocations.mirror(runtime.db, runtime.revocations, settings)
    await passwords.prepare_dummy_hash()
    runtime.state.login_throttle = LoginThrottle(
        storage_for(runtime.platform.redis_url, key_prefix=f"{runtime.platform.redis_prefix}:auth:login"),
        per_account=settings.login_failures_per_account, per_address=settings.login_failures_per_address,
        window_seconds=settings.login_failure_window_seconds)
    runtime.state.google = oidc.google_provider(settings)
    log.info("auth.started", kid=runtime.state.keyring.kid, revoked_tokens=len(in_force.tokens),
             revoked_families=len(in_force.families))


async def seed(runtime: ServiceRuntime, tenant_id: str) -> None:
    """The demo accounts (`DEMO_ACCOUNTS`) in `tenant_id`; idempotent."""
    async with runtime.db.session(tenant_id=validate_tenant_id(tenant_id)) as session:
        for account in DEMO_ACCOUNTS:
            await service.ensure_user(session, email=account.email, password=account.password, name=account.name,
                                      roles=[account.role])


async def create_admin(runtime: ServiceRuntime, *, tenant_id: str, email: str, password: str,
                       name: str = "Administrator") -> uuid.UUID:
    """Create an administrator, or promote the existing account of `email` and set its password.
    Platform administration lives in the `default` tenant: there the account becomes a platform and
    tenant admin; in any other tenant, that tenant's admin only. Raises `InvalidEmail` or
    `WeakPassword` (both `AppError`, with a `detail`)."""
    try:
        normalised = _EMAIL.validate_python(email)
    except ValidationError as exc:
        raise InvalidEmail(f"{email!r} is not a valid email address") from exc
    async with runtime.db.session(tenant_id=validate_tenant_id(tenant_id)) as session:
        roles = service.ADMIN_ROLES if tenant_id == DEFAULT_TENANT else (Role.TENANT_ADMIN.value,)
        return await service.create_or_promote_admin(session, email=normalised, password=password, name=name,
                                                     roles=roles)
