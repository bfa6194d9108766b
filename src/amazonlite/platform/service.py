"""A service: its declaration (`ServiceModule`), its running parts (`ServiceRuntime`) and its app.

Every service's `app.py` declares `SERVICE = ServiceModule(...)`. The topology (embedded or one
process per service) builds a `ServiceRuntime` from it: the database, the outbox relay, the
consumer and the periodic tasks, all on the bus transport the topology chose.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncSession

from amazonlite.platform.bus import Transport
from amazonlite.platform.clients import ServiceDirectory
from amazonlite.platform.config import PlatformSettings, ServiceSettings
from amazonlite.platform.consumer import Consumer, EventHandlers, RetryPolicy
from amazonlite.platform.context import bind_tenant
from amazonlite.platform.db import Database
from amazonlite.platform.errors import ServiceUnavailable
from amazonlite.platform.http import (
    EdgeMiddleware,
    install_problem_handlers,
    metrics_response,
    new_app,
)
from amazonlite.platform.messaging import messaging_tables
from amazonlite.platform.openapi import document_kernel_problems
from amazonlite.platform.outbox import OutboxRelay
from amazonlite.platform.revocation import RevocationStore
from amazonlite.platform.security import InternalTokens, Principal, get_principal

log = structlog.get_logger("amazonlite.service")


@dataclass(frozen=True)
class PeriodicTask:
    """A job run every `interval` seconds, named `<service>.<verb>`."""

    name: str
    interval: float
    run: Callable[[ServiceRuntime], Awaitable[None]]


@dataclass(frozen=True)
class ServiceModule:
    name: str
    router: APIRouter
    metadata: MetaData
    settings: type[ServiceSettings]
    migrations: Path
    handlers: EventHandlers = field(default_factory=EventHandlers)
    tasks: Sequence[PeriodicTask] = ()
    on_startup: Callable[[ServiceRuntime], Awaitable[None]] | None = None
    on_shutdown: Callable[[ServiceRuntime], Awaitable[None]] | None = None
    seed: Callable[[ServiceRuntime, str], Awaitable[None]] | None = None
    # Readiness of what the service owns besides its database, bus and outbox: name → "ok" or why not.
    checks: Callable[[ServiceRuntime], Awaitable[dict[str, str]]] | None = None
    description: str = ""


class ServiceRuntime:
    def __init__(self, module: ServiceModule, platform: PlatformSettings, *, transport: Transport,
                 revocations: RevocationStore, redis: Any = None,
                 settings: ServiceSettings | None = None) -> None:
        self.module = module
        self.name = module.name
        self.platform = platform
        self.settings = settings or module.settings()
        self.transport = transport
        self.revocations = revocations
        self.redis = redis
        self.internal_tokens = InternalTokens(platform.internal_token_secret,
                                              ttl_seconds=platform.internal_token_ttl_seconds)
        tables = messaging_tables(module.metadata)
        self.db = Database(self.settings.resolved_database_url(platform), service=module.name,
                           messaging=tables, pool_size=self.settings.database_pool_size,
                           echo=self.settings.database_echo)
        self.relay = OutboxRelay(module.name, self.db, tables, transport,
                                 poll_interval=platform.outbox_poll_interval_ms / 1000,
                                 publish_timeout=platform.outbox_publish_timeout_ms / 1000)
        self.db.on_outbox_commit = self.relay.wake
        self.consumer = Consumer(module.name, self.db, tables, module.handlers, transport, RetryPolicy(
            max_attempts=platform.consumer_max_attempts,
            initial=platform.consumer_backoff_initial_ms / 1000,
            maximum=platform.consumer_backoff_max_ms / 1000,
        ), runtime=self, group=self.settings.consumer_group())
        self.consumer.attach()
        # The other services, reachable over HTTP with internal tokens (filled by the topology).
        self.services = ServiceDirectory(module.name, self.internal_tokens)
        # Objects a service keeps for its lifetime (key rings, caches), set by its on_startup.
        self.state = SimpleNamespace()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start after the transport has started: the relay publishes on it."""
        if self.module.on_startup is not None:
            await self.module.on_startup(self)
        self.relay.start()
        for task in self.module.tasks:
            self._tasks.append(asyncio.create_task(self._periodic(task), name=task.name))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.module.on_shutdown is not None:
            await self.module.on_shutdown(self)
        await self.relay.stop()
        await self.services.aclose()
        await self.db.dispose()

    async def _periodic(self, task: PeriodicTask) -> None:
        while True:
            await asyncio.sleep(task.interval)
            try:
                await task.run(self)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("service.task_failed", task=task.name)

    async def check_ready(self) -> dict[str, str]:
        """Each component by name: "ok", or "failing: <why>". Besides the stores and the bus, the
        service's consumer group (`consumer.<service>`: it polls and commits) and its outbox (no
        event waits too long to be published)."""
        checks: dict[str, str] = {}
        try:
            await self.db.ping()
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"failing: {type(exc).__name__}"
        try:
            await self.transport.ping()
            checks["bus"] = "ok"
        except Exception as exc:
            checks["bus"] = f"failing: {type(exc).__name__}"
        if self.module.handlers.subscriptions:
            checks[f"consumer.{self.consumer.group}"] = self.transport.check_consumer(
                self.consumer.group, self.platform.consumer_stale_after_ms / 1000)
        checks["outbox"] = self.relay.check(self.platform.outbox_stale_after_ms / 1000)
        if self.redis is not None:
            try:
                await self.redis.ping()
                checks["redis"] = "ok"
            except Exception as exc:
                checks["redis"] = f"failing: {type(exc).__name__}"
        if self.module.checks is not None:
            checks.update(await self.module.checks(self))
        return checks


async def get_runtime(request: Request) -> ServiceRuntime:  # async: no worker thread (security.py)
    return request.app.state.runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]


async def get_session(request: Request, principal: Annotated[Principal, Depends(get_principal)]
                      ) -> AsyncIterator[AsyncSession]:
    """The request's unit of work, scoped to the caller's tenant; committed before the response
    is sent (a failed commit is the request's error, not a lost write)."""
    bind_tenant(principal.tenant_id)
    async with request.app.state.runtime.db.session(tenant_id=principal.tenant_id) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def ops_router(readiness: Callable[[], Awaitable[dict[str, str]]]) -> APIRouter:
    router = APIRouter(tags=["ops"], include_in_schema=False)

    @router.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/health/ready")
    async def ready() -> dict[str, Any]:
        checks = await readiness()
        if any(v != "ok" for v in checks.values()):
            raise ServiceUnavailable("Not ready: " + ", ".join(f"{k} {v}" for k, v in checks.items()),
                                     checks=checks)
        return {"status": "ok", "checks": checks}

    @router.get("/metrics")
    async def metrics() -> Any:
        return metrics_response()

    return router


async def freeze_startup_heap() -> None:
    """The last start-up hook of a server process (not of an app a test starts: its objects would
    never be collected again). Collect, then move every object alive (modules, models, routes,
    schemas, compiled statements) into the collector's permanent generation. A full collection
    otherwise walks them all again and again under load: measured on the embedded platform, full
    collections of 75-110 ms several times in ten seconds, which were its p99 latency."""
    gc.collect()
    gc.freeze()


def create_service_app(runtime: ServiceRuntime, *, own_lifespan: bool) -> FastAPI:
    """The service's ASGI app. With `own_lifespan` (one process per service) it starts and stops
    the transport and the runtime itself; embedded, the gateway's process does."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if own_lifespan:
            await runtime.transport.start()
            await runtime.start()
            await freeze_startup_heap()
        try:
            yield
        finally:
            if own_lifespan:
                await runtime.stop()
                await runtime.transport.stop()

    module = runtime.module
    app = new_app(title=f"Amazon Lite {module.name}", description=module.description,
                  version="1.0.0", lifespan=lifespan,
                  docs_url="/docs", redoc_url=None)
    app.state.runtime = runtime
    install_problem_handlers(app)
    app.include_router(ops_router(runtime.check_ready))
    app.include_router(module.router, dependencies=[Depends(get_principal)])
    app.openapi = lambda: service_openapi(app)  # type: ignore[method-assign]
    app.add_middleware(EdgeMiddleware, service=module.name, max_body_bytes=runtime.platform.max_body_bytes)
    return app


def service_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    app.openapi_schema = document_kernel_problems(schema, app.routes)
    return app.openapi_schema
