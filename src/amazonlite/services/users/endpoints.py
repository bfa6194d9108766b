from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from amazonlite.platform.crypto import FieldCipher
from amazonlite.platform.errors import Unauthorized, ValidationFailed, problem_responses
from amazonlite.platform.pagination import Page
from amazonlite.platform.service import RuntimeDep, SessionDep
from amazonlite.services.users import service
from amazonlite.services.users.auth import CurrentUser
from amazonlite.services.users.cache import ProfileCache
from amazonlite.services.users.errors import (
    AddressLimitReached,
    AddressNotFound,
    AddressUnreadable,
    DefaultAddressRequired,
    ProfileNotFound,
)
from amazonlite.services.users.schemas import (
    Address,
    AddressCreate,
    AddressUpdate,
    Preferences,
    UserProfile,
    UserProfileUpdate,
)

router = APIRouter(prefix="/api/v1/users", tags=["users"])


# Both set at start-up (commands.on_startup).
async def _address_cipher(runtime: RuntimeDep) -> FieldCipher:
    cipher: FieldCipher = runtime.state.address_cipher
    return cipher


async def _profile_cache(runtime: RuntimeDep) -> ProfileCache | None:
    return getattr(runtime.state, "profile_cache", None)


AddressCipher = Annotated[FieldCipher, Depends(_address_cipher)]
ProfileCacheDep = Annotated[ProfileCache | None, Depends(_profile_cache)]


def _user_id(user: CurrentUser) -> uuid.UUID:
    return uuid.UUID(user.user_id)


# Profile --------------------------------------------------------------------------------------------

@router.get("/me", response_model=UserProfile,
            responses=problem_responses(Unauthorized, ProfileNotFound))
async def read_me(session: SessionDep, user: CurrentUser, cache: ProfileCacheDep) -> UserProfile:
    return await service.read_profile(session, _user_id(user), cache=cache)


@router.patch("/me", response_model=UserProfile,
              responses=problem_responses(Unauthorized, ProfileNotFound, ValidationFailed))
async def update_me(changes: UserProfileUpdate, session: SessionDep, user: CurrentUser,
                    cache: ProfileCacheDep) -> UserProfile:
    profile = await service.update_profile(session, _user_id(user), changes, cache=cache)
    return UserProfile.model_validate(profile)


# Address book ---------------------------------------------------------------------------------------

@router.get("/me/addresses", response_model=Page[Address], tags=["addresses"],
            responses=problem_responses(Unauthorized, AddressUnreadable))
async def list_addresses(session: SessionDep, user: CurrentUser, cipher: AddressCipher) -> Page[Address]:
    # At most MAX_ADDRESSES per user: always one page.
    return Page[Address](items=await service.list_addresses(session, cipher, _user_id(user)), next_cursor=None)


@router.post("/me/addresses", status_code=201, response_model=Address, tags=["addresses"],
             responses=problem_responses(Unauthorized, ValidationFailed, ProfileNotFound, AddressLimitReached))
async def add_address(data: AddressCreate, session: SessionDep, user: CurrentUser, cipher: AddressCipher) -> Address:
    return await service.add_address(session, cipher, _user_id(user), data)


@router.patch("/me/addresses/{address_id}", response_model=Address, tags=["addresses"],
              responses=problem_responses(Unauthorized, ValidationFailed, AddressNotFound, DefaultAddressRequired,
                                          AddressUnreadable))
async def update_address(address_id: uuid.UUID, changes: AddressUpdate, session: SessionDep, user: CurrentUser,
                         cipher: AddressCipher) -> Address:
    return await service.update_address(session, cipher, _user_id(user), address_id, changes)


@router.delete("/me/addresses/{address_id}", status_code=204, tags=["addresses"],
               responses=problem_responses(Unauthorized, ValidationFailed, ProfileNotFound, AddressNotFound))
async def delete_address(address_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Response:
    await service.delete_address(session, _user_id(user), address_id)
    return Response(status_code=204)


# Preferences ----------------------------------------------------------------------------------------

@router.get("/me/preferences", response_model=Preferences, tags=["preferences"],
            responses=problem_responses(Unauthorized))
async def read_preferences(session: SessionDep, user: CurrentUser) -> Preferences:
    return await service.get_preferences(session, _user_id(user))


@router.put("/me/preferences", response_model=Preferences, tags=["preferences"],
            responses=problem_responses(Unauthorized, ValidationFailed, ProfileNotFound))
async def replace_preferences(preferences: Preferences, session: SessionDep, user: CurrentUser) -> Preferences:
    return await service.replace_preferences(session, _user_id(user), preferences)
