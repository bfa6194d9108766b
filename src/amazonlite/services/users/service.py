from __future__ import annotations

import uuid
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.contracts import UserRegisteredV1
from amazonlite.contracts.users import NotificationChannels, UserPreferencesUpdatedV1
from amazonlite.platform.crypto import CryptoError, FieldCipher, Keyring
from amazonlite.platform.db import after_commit
from amazonlite.platform.ids import new_id
from amazonlite.platform.outbox import record_event
from amazonlite.platform.tenancy import TENANT_KEY
from amazonlite.platform.text import normalise_email
from amazonlite.services.users import schemas
from amazonlite.services.users.cache import ProfileCache
from amazonlite.services.users.errors import (
    AddressLimitReached,
    AddressNotFound,
    AddressUnreadable,
    DefaultAddressRequired,
    ProfileNotFound,
)
from amazonlite.services.users.models import ENCRYPTED_ADDRESS_FIELDS, Address, Preferences, Profile
from amazonlite.services.users.repository import AddressRepository, PreferencesRepository, ProfileRepository

log = structlog.get_logger("amazonlite.users")


def _tenant(session: AsyncSession) -> str:
    return str(session.info[TENANT_KEY])


# Profiles -----------------------------------------------------------------------------------------

async def get_profile(session: AsyncSession, user_id: uuid.UUID) -> Profile:
    profile = await ProfileRepository(session).get(user_id)
    if profile is None:
        raise ProfileNotFound("The profile is created moments after signup; try again shortly")
    return profile


async def read_profile(session: AsyncSession, user_id: uuid.UUID, *, cache: ProfileCache | None
                       ) -> schemas.UserProfile:
    """The profile, through the cache when there is one."""
    if cache is None:
        return schemas.UserProfile.model_validate(await get_profile(session, user_id))
    tenant = _tenant(session)
    cached = await cache.get(tenant, user_id)
    if cached is not None:
        return cached
    profile = schemas.UserProfile.model_validate(await get_profile(session, user_id))
    await cache.put(tenant, user_id, profile)
    return profile


async def update_profile(session: AsyncSession, user_id: uuid.UUID, changes: schemas.UserProfileUpdate, *,
                         cache: ProfileCache | None = None) -> Profile:
    profile = await get_profile(session, user_id)
    for field, value in changes.model_dump(exclude_unset=True).items():
        if field == "name" and value is None:
            continue  # a name cannot be cleared
        setattr(profile, field, value)
    await session.flush()
    _drop_cached_profile(session, user_id, cache)
    return profile


async def create_profile(session: AsyncSession, event: UserRegisteredV1, *, cache: ProfileCache | None = None
                         ) -> None:
    repository = ProfileRepository(session)
    if await repository.get(event.user_id) is not None:
        return
    # Auth sends it normalised; an event recorded before auth did (still in a broker) is made so here.
    await repository.add(Profile(id=event.user_id, email=normalise_email(event.email), name=event.name))
    _drop_cached_profile(session, event.user_id, cache, guard=False)
    log.info("users.profile_created", user_id=str(event.user_id))


def _drop_cached_profile(session: AsyncSession, user_id: uuid.UUID, cache: ProfileCache | None, *,
                         guard: bool = True) -> None:
    # After the commit: dropped before it, a concurrent read could cache the old row again.
    if cache is None:
        return
    tenant = _tenant(session)

    async def drop() -> None:
        await cache.drop(tenant, user_id, guard=guard)

    after_commit(session, drop)


async def _lock_profile(session: AsyncSession, user_id: uuid.UUID) -> Profile:
    profile = await ProfileRepository(session).lock(user_id)
    if profile is None:
        raise ProfileNotFound("The profile is created moments after signup; try again shortly")
    return profile


# Addresses (PII encrypted at rest) ------------------------------------------------------------------

def address_cipher(keyring: Keyring) -> FieldCipher:
    return FieldCipher(keyring, table=Address.__tablename__)


def _seal(cipher: FieldCipher, session: AsyncSession, address: Address, field: str, value: str | None) -> None:
    column = ENCRYPTED_ADDRESS_FIELDS[field]
    token = None if value is None else cipher.encrypt(value, tenant_id=_tenant(session), column=column,
                                                      row_id=address.id)
    setattr(address, column, token)


def _open(cipher: FieldCipher, address: Address) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for field, column in ENCRYPTED_ADDRESS_FIELDS.items():
        token = getattr(address, column)
        try:
            out[field] = None if token is None else cipher.decrypt(token, tenant_id=address.tenant_id,
                                                                   column=column, row_id=address.id)
        except CryptoError as exc:
            log.error("users.address_unreadable", address_id=str(address.id), column=column, error=str(exc))
            raise AddressUnreadable("Quote the correlation id when reporting this") from exc
    return out


def _to_schema(cipher: FieldCipher, address: Address) -> schemas.Address:
    pii = _open(cipher, address)
    return schemas.Address(
        id=address.id, name=pii["name"] or "", line1=pii["line1"] or "", line2=pii["line2"], city=address.city,
        state=address.state, postal_code=address.postal_code, country=address.country, phone=pii["phone"],
        is_default=bool(address.is_default), created_at=address.created_at, updated_at=address.updated_at,
    )


async def list_addresses(session: AsyncSession, cipher: FieldCipher, user_id: uuid.UUID) -> list[schemas.Address]:
    return [_to_schema(cipher, a) for a in await AddressRepository(session).all_of(user_id)]


async def add_address(session: AsyncSession, cipher: FieldCipher, user_id: uuid.UUID,
                      data: schemas.AddressCreate) -> schemas.Address:
    await _lock_profile(session, user_id)
    repository = AddressRepository(session)
    count = await repository.count(user_id)
    if count >= schemas.MAX_ADDRESSES:
        raise AddressLimitReached(f"An address book holds at most {schemas.MAX_ADDRESSES} addresses; "
                                  "delete one first")
    make_default = data.is_default or count == 0
    if make_default:
        await _unset_default(repository, user_id)
    # The id is part of each encrypted value's associated data, so it is chosen before encrypting.
    address = Address(id=new_id(), user_id=user_id, city=data.city, state=data.state,
                      postal_code=data.postal_code, country=data.country, is_default=True if make_default else None)
    for field in ENCRYPTED_ADDRESS_FIELDS:
        _seal(cipher, session, address, field, getattr(data, field))
    await repository.add(address)
    log.info("users.address_added", user_id=str(user_id), address_id=str(address.id))
    return _to_schema(cipher, address)


async def update_address(session: AsyncSession, cipher: FieldCipher, user_id: uuid.UUID, address_id: uuid.UUID,
                         changes: schemas.AddressUpdate) -> schemas.Address:
    await _lock_profile(session, user_id)
    repository = AddressRepository(session)
    address = await _own_address(repository, user_id, address_id)
    values = changes.model_dump(exclude_unset=True)
    make_default = values.pop("is_default", None)
    if make_default is False and address.is_default:
        raise DefaultAddressRequired("Make another address the default instead")
    for field, value in values.items():
        if field in ENCRYPTED_ADDRESS_FIELDS:
            _seal(cipher, session, address, field, value)
        else:
            setattr(address, field, value)
    if make_default and not address.is_default:
        await _unset_default(repository, user_id)
        address.is_default = True
    await session.flush()
    await session.refresh(address, ["updated_at"])
    return _to_schema(cipher, address)


async def delete_address(session: AsyncSession, user_id: uuid.UUID, address_id: uuid.UUID) -> None:
    await _lock_profile(session, user_id)
    repository = AddressRepository(session)
    address = await _own_address(repository, user_id, address_id)
    was_default = bool(address.is_default)
    await repository.delete(address)
    if was_default:
        successor = await repository.newest(user_id)
        if successor is not None:
            successor.is_default = True
            await session.flush()
    log.info("users.address_deleted", user_id=str(user_id), address_id=str(address_id))


async def _own_address(repository: AddressRepository, user_id: uuid.UUID, address_id: uuid.UUID) -> Address:
    # Another user's address (of this tenant or any other) is not found, never forbidden.
    address = await repository.get(user_id, address_id)
    if address is None:
        raise AddressNotFound("You have no address with this id")
    return address


async def _unset_default(repository: AddressRepository, user_id: uuid.UUID) -> None:
    current = await repository.default(user_id)
    if current is not None:
        current.is_default = None
        # Flushed on its own: the new default must not be written before the old one is unset.
        await repository.session.flush()


@dataclass(frozen=True)
class RotationBatch:
    scanned: int
    rewritten: int
    last_id: uuid.UUID | None


async def reencrypt_addresses(session: AsyncSession, cipher: FieldCipher, *, after: uuid.UUID | None,
                              limit: int) -> RotationBatch:
    """One batch of key rotation, in an unscoped session: the next `limit` addresses by id (of every
    tenant, each value bound to its own row's tenant); those with a value not under the active key
    are re-encrypted. A row its owner changed meanwhile is skipped: that change used the active key."""
    repository = AddressRepository(session)
    rows = await repository.encrypted_batch(after=after, limit=limit)
    rewritten = 0
    for row in rows:
        old = {column: getattr(row, column) for column in ENCRYPTED_ADDRESS_FIELDS.values()}
        new = {
            column: cipher.encrypt(cipher.decrypt(token, tenant_id=row.tenant_id, column=column, row_id=row.id),
                                   tenant_id=row.tenant_id, column=column, row_id=row.id)
            for column, token in old.items() if token is not None and not cipher.is_current(token)
        }
        if new and await repository.replace_encrypted(row.id, old=old, new=new, updated_at=row.updated_at):
            rewritten += 1
    return RotationBatch(scanned=len(rows), rewritten=rewritten, last_id=rows[-1].id if rows else None)


# Preferences ------------------------------------------------------------------------------------------

def _preferences_from(stored: Preferences | None) -> schemas.Preferences:
    defaults = schemas.DEFAULT_PREFERENCES.model_dump()
    if stored is None:
        return schemas.Preferences.model_validate(defaults)
    known = {k: v for k, v in stored.notifications.items() if k in schemas.NOTIFICATION_TYPES}
    # A type added after the user saved theirs starts at its default.
    return schemas.Preferences.model_validate({"notifications": {**defaults["notifications"], **known}})


async def get_preferences(session: AsyncSession, user_id: uuid.UUID) -> schemas.Preferences:
    return _preferences_from(await PreferencesRepository(session).get(user_id))


async def replace_preferences(session: AsyncSession, user_id: uuid.UUID, preferences: schemas.Preferences
                              ) -> schemas.Preferences:
    await _lock_profile(session, user_id)
    repository = PreferencesRepository(session)
    notifications = preferences.notifications.model_dump()
    stored = await repository.get(user_id)
    if stored is None:
        stored = await repository.add(Preferences(user_id=user_id, notifications=notifications))
    else:
        stored.notifications = notifications
        await session.flush()
    await record_event(session, preferences_updated(user_id, preferences), aggregate_id=user_id)
    log.info("users.preferences_updated", user_id=str(user_id))
    return _preferences_from(stored)


def preferences_updated(user_id: uuid.UUID, preferences: schemas.Preferences) -> UserPreferencesUpdatedV1:
    return UserPreferencesUpdatedV1(user_id=user_id, notifications={
        kind: NotificationChannels(email=channels["email"], sms=channels["sms"])
        for kind, channels in preferences.notifications.model_dump().items()
    })
