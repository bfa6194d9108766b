from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.services.users.models import Profile


class ProfileRepository:
    """Every query of the users service. The session's tenant scope applies to each one."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> Profile | None:
        return await self.session.scalar(select(Profile).where(Profile.id == user_id))

    async def add(self, profile: Profile) -> Profile:
        self.session.add(profile)
        await self.session.flush()
        return profile
