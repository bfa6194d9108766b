from __future__ import annotations

import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.contracts import UserRegisteredV1
from amazonlite.services.users.errors import ProfileNotFound
from amazonlite.services.users.models import Profile
from amazonlite.services.users.repository import ProfileRepository
from amazonlite.services.users.schemas import UserProfileUpdate

log = structlog.get_logger("amazonlite.users")


async def get_profile(session: AsyncSession, user_id: uuid.UUID) -> Profile:
    profile = await ProfileRepository(session).get(user_id)
    if profile is None:
        raise ProfileNotFound("The profile is created moments after signup; try again shortly")
    return profile


async def update_profile(session: AsyncSession, user_id: uuid.UUID, changes: UserProfileUpdate) -> Profile:
    profile = await get_profile(session, user_id)
    for field, value in changes.model_dump(exclude_unset=True).items():
        if field == "name" and value is None:
            continue  # a name cannot be cleared
        setattr(profile, field, value)
    await session.flush()
    return profile


async def create_profile(session: AsyncSession, event: UserRegisteredV1) -> None:
    repository = ProfileRepository(session)
    if await repository.get(event.user_id) is not None:
        return
    await repository.add(Profile(id=event.user_id, email=event.email, name=event.name))
    log.info("users.profile_created", user_id=str(event.user_id))
