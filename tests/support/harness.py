"""Run one service in-process on a real database, and call it as the gateway would."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from amazonlite.platform.bus import Message, Transport
from amazonlite.platform.bus.memory import InProcessTransport
from amazonlite.platform.config import Environment, PlatformSettings, ServiceSettings
from amazonlite.platform.events import Envelope
from amazonlite.platform.migrations import upgrade
from amazonlite.platform.revocation import MemoryRevocationStore, RevocationStore
from amazonlite.platform.security import INTERNAL_TOKEN_HEADER, Principal
from amazonlite.platform.service import ServiceModule, ServiceRuntime, create_service_app


def fast_platform_settings(data_dir: Path, **overrides: Any) -> PlatformSettings:
    return PlatformSettings(environment=Environment.TEST, data_dir=data_dir, log_json=False,
                            consumer_backoff_initial_ms=5, consumer_backoff_max_ms=20,
                            outbox_poll_interval_ms=50, **overrides)


@dataclass
class Harness:
    runtime: ServiceRuntime
    app: FastAPI

    def client(self, *, tenant: str = "default", user_id: uuid.UUID | str | None = None,
               roles: tuple[str, ...] = (), token_id: str | None = None) -> httpx.AsyncClient:
        """A client that calls the service with the internal token the gateway would mint."""
        principal = Principal(tenant_id=tenant, user_id=str(user_id) if user_id else None,
                              roles=frozenset(roles), token_id=token_id or (uuid.uuid4().hex if user_id else None),
                              token_expires_at=int(dt.datetime.now(dt.UTC).timestamp()) + 600 if user_id else None)
        token = self.runtime.internal_tokens.mint(principal, audience=self.runtime.name, caller="test")
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://test",
                                 headers={INTERNAL_TOKEN_HEADER: token})

    def anonymous_client_without_token(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://test")

    async def deliver(self, event: Any, *, tenant: str = "default", event_id: uuid.UUID | None = None,
                      key: str = "k") -> Envelope:
        """Deliver a contract payload to this service's consumer as the bus would."""
        envelope = _envelope(event, tenant, event_id)
        await self.runtime.consumer.deliver(Message(envelope.event_type, key.encode(), envelope.to_json()))
        return envelope

    async def deliver_together(self, events: list[Any], *, tenant: str = "default") -> list[Envelope]:
        """Deliver contract payloads in one delivery, as a transport hands over a fetch."""
        envelopes = [_envelope(event, tenant, None) for event in events]
        await self.runtime.consumer.deliver_many([Message(e.event_type, b"k", e.to_json()) for e in envelopes])
        return envelopes


def _envelope(event: Any, tenant: str, event_id: uuid.UUID | None) -> Envelope:
    return Envelope(
        event_id=event_id or uuid.uuid4(), event_type=type(event).event_type,
        occurred_at=dt.datetime.now(dt.UTC), producer="test", schema_version=type(event).schema_version,
        trace_id="0" * 32, correlation_id="test", tenant_id=tenant, payload=event.model_dump(mode="json"),
    )


@asynccontextmanager
async def running_service(module: ServiceModule, database_url: str, data_dir: Path, *,
                          transport: Transport | None = None, revocations: RevocationStore | None = None,
                          platform: PlatformSettings | None = None, start_transport: bool = True,
                          redis: Any = None, settings: ServiceSettings | None = None,
                          services: Mapping[str, Any] | None = None) -> AsyncIterator[Harness]:
    """The service on `database_url` (migrated), started; `settings` replace its defaults (give
    them the same `database_url`), `redis` is its Redis client if any, `services` the apps of the
    services it calls (by name), registered before it starts."""
    await asyncio.to_thread(upgrade, module.name, module.migrations, database_url)
    platform = platform or fast_platform_settings(data_dir)
    transport = transport or InProcessTransport()
    runtime = ServiceRuntime(module, platform, transport=transport,
                             revocations=revocations or MemoryRevocationStore(), redis=redis,
                             settings=settings or module.settings(database_url=database_url))
    app = create_service_app(runtime, own_lifespan=False)
    for name, other in (services or {}).items():
        runtime.services.register(name, app=other)
    if start_transport:
        await transport.start()
    await runtime.start()
    try:
        yield Harness(runtime, app)
    finally:
        await runtime.stop()
        if start_transport:
            await transport.stop()
