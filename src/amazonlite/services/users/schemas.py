from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict, Field

UserId = uuid.UUID


class UserProfile(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UserId
    email: str
    name: str
    locale: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class UserProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    locale: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35)
