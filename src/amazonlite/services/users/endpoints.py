from __future__ import annotations

import uuid

from fastapi import APIRouter

from amazonlite.platform.errors import Unauthorized, ValidationFailed, problem_responses
from amazonlite.platform.service import SessionDep
from amazonlite.services.users import service
from amazonlite.services.users.auth import CurrentUser
from amazonlite.services.users.errors import ProfileNotFound
from amazonlite.services.users.schemas import UserProfile, UserProfileUpdate

router = APIRouter(prefix="/api/v1/users", tags=["users"])


@router.get("/me", response_model=UserProfile,
            responses=problem_responses(Unauthorized, ProfileNotFound))
async def read_me(session: SessionDep, user: CurrentUser) -> UserProfile:
    profile = await service.get_profile(session, uuid.UUID(user.user_id))
    return UserProfile.model_validate(profile)


@router.patch("/me", response_model=UserProfile,
              responses=problem_responses(Unauthorized, ProfileNotFound, ValidationFailed))
async def update_me(changes: UserProfileUpdate, session: SessionDep, user: CurrentUser) -> UserProfile:
    profile = await service.update_profile(session, uuid.UUID(user.user_id), changes)
    return UserProfile.model_validate(profile)
