"""Plain helpers for the users tests: run the service with chosen keys and Redis, build bodies, read tables."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from amazonlite.contracts import UserRegisteredV1
from amazonlite.services.users.app import SERVICE
from tests.support.harness import Harness, fast_platform_settings, running_service

KEY_A = base64.b64encode(b"A" * 32).decode()
KEY_B = base64.b64encode(b"B" * 32).decode()


def registered(user_id: uuid.UUID, email: str = "ada@example.com") -> UserRegisteredV1:
    return UserRegisteredV1(user_id=user_id, email=email, name="Ada", roles=["customer"])


def address_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Grace Hopper", "line1": "221B Baker Street", "line2": "Flat 7", "city": "London",
        "state": None, "postal_code": "NW1 6XE", "country": "gb", "phone": "+44 20 7946 0958",
    }
    body.update(overrides)
    return body


@asynccontextmanager
async def running_users(database_url: str, data_dir: Path, *, redis: Any = None, redis_prefix: str = "amazonlite",
                        pii_keys: dict[str, str] | None = None, pii_active_key: str = "") -> AsyncIterator[Harness]:
    """The users service on `database_url`, like `tests.support.harness.running_service`, with a key ring
    and (optionally) a Redis client."""
    settings = SERVICE.settings(database_url=database_url, pii_keys=pii_keys or {}, pii_active_key=pii_active_key)
    async with running_service(SERVICE, database_url, data_dir, redis=redis, settings=settings,
                               platform=fast_platform_settings(data_dir, redis_prefix=redis_prefix)) as svc:
        yield svc


async def signed_up(svc: Harness, *, tenant: str = "default") -> tuple[uuid.UUID, httpx.AsyncClient]:
    """A user whose profile exists, and a client acting as them."""
    user_id = uuid.uuid4()
    await svc.deliver(registered(user_id, email=f"{user_id.hex[:8]}@example.com"), tenant=tenant)
    return user_id, svc.client(tenant=tenant, user_id=user_id, roles=("customer",))


async def add_address(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/users/me/addresses", json=address_body(**overrides))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def addresses(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/users/me/addresses")
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return list(response.json()["items"])


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return str(response.json()["type"]).rsplit("/", 1)[-1]


async def rows(svc: Harness, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with svc.runtime.db.engine.connect() as conn:
        return [dict(row._mapping) for row in (await conn.execute(text(sql), params)).all()]


async def execute(svc: Harness, sql: str, **params: Any) -> None:
    async with svc.runtime.db.engine.begin() as conn:
        await conn.execute(text(sql), params)
