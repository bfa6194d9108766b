from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.services.users.models import ENCRYPTED_ADDRESS_FIELDS, Address, Preferences, Profile


class ProfileRepository:
    """Every query of the users service. The session's tenant scope applies to each one."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> Profile | None:
        return await self.session.scalar(select(Profile).where(Profile.id == user_id))

    async def lock(self, user_id: uuid.UUID) -> Profile | None:
        """The profile, locked until the transaction ends: changes to one user's address book or
        preferences take turns (first-address default, the address limit, first preferences)."""
        return await self.session.scalar(select(Profile).where(Profile.id == user_id).with_for_update())

    async def add(self, profile: Profile) -> Profile:
        self.session.add(profile)
        await self.session.flush()
        return profile


class AddressRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all_of(self, user_id: uuid.UUID) -> Sequence[Address]:
        """A user's addresses, oldest first (ids are time-ordered)."""
        return (await self.session.scalars(
            select(Address).where(Address.user_id == user_id).order_by(Address.id))).all()

    async def get(self, user_id: uuid.UUID, address_id: uuid.UUID) -> Address | None:
        return await self.session.scalar(
            select(Address).where(Address.id == address_id, Address.user_id == user_id))

    async def count(self, user_id: uuid.UUID) -> int:
        return await self.session.scalar(
            select(func.count()).select_from(Address).where(Address.user_id == user_id)) or 0

    async def default(self, user_id: uuid.UUID) -> Address | None:
        return await self.session.scalar(
            select(Address).where(Address.user_id == user_id, Address.is_default.is_(True)))

    async def newest(self, user_id: uuid.UUID) -> Address | None:
        return await self.session.scalar(
            select(Address).where(Address.user_id == user_id).order_by(Address.id.desc()).limit(1))

    async def add(self, address: Address) -> Address:
        self.session.add(address)
        await self.session.flush()
        return address

    async def delete(self, address: Address) -> None:
        await self.session.delete(address)
        await self.session.flush()

    # Key rotation: a platform job that runs in an unscoped session, across tenants.

    async def encrypted_batch(self, *, after: uuid.UUID | None, limit: int) -> Sequence[Row[Any]]:
        """The next `limit` rows by id (after `after`): id, tenant, updated_at and the encrypted columns."""
        columns = [getattr(Address, column) for column in ENCRYPTED_ADDRESS_FIELDS.values()]
        query = select(Address.id, Address.tenant_id, Address.updated_at, *columns).order_by(Address.id).limit(limit)
        if after is not None:
            query = query.where(Address.id > after)
        return (await self.session.execute(query)).all()

    async def replace_encrypted(self, address_id: uuid.UUID, *, old: Mapping[str, str | None],
                                new: Mapping[str, str], updated_at: Any) -> bool:
        """Swap encrypted columns if they still hold `old` (a concurrent edit wins); keeps updated_at."""
        conditions = [getattr(Address, column).is_(None) if value is None else getattr(Address, column) == value
                      for column, value in old.items()]
        result = await self.session.execute(
            update(Address).where(Address.id == address_id, *conditions)
            .values(**new, updated_at=updated_at).execution_options(synchronize_session=False))
        return bool(getattr(result, "rowcount", 0))


class PreferencesRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> Preferences | None:
        return await self.session.scalar(select(Preferences).where(Preferences.user_id == user_id))

    async def add(self, preferences: Preferences) -> Preferences:
        self.session.add(preferences)
        await self.session.flush()
        return preferences
