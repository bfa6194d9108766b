"""Composition root of the whole platform: which services exist, and how a process is assembled.

- embedded: one process, the gateway with every service mounted in it, SQLite files, the
  in-process bus (or Kafka, when `AMAZONLITE_KAFKA_BOOTSTRAP` is set);
- distributed: `service_app()` for one service per process, `gateway_app()` for the gateway,
  proxying over HTTP to the services' URLs.

The factories read their settings from the environment so that uvicorn can start several
workers (`factory=True`).
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from amazonlite.contracts.catalog import ProductDeletedV1, ProductUpdatedV1
from amazonlite.contracts.reviews import ProductRatingUpdatedV1
from amazonlite.gateway.app import CachePolicy, Upstream, create_gateway
from amazonlite.platform.bus import Message, Transport
from amazonlite.platform.bus.kafka import KafkaTransport
from amazonlite.platform.bus.memory import InProcessTransport
from amazonlite.platform.config import PlatformSettings, platform_settings
from amazonlite.platform.logging import configure_logging
from amazonlite.platform.migrations import upgrade
from amazonlite.platform.revocation import MemoryRevocationStore, RedisRevocationStore, RevocationStore
from amazonlite.platform.service import ServiceModule, ServiceRuntime, create_service_app, freeze_startup_heap
from amazonlite.platform.tracing import configure_tracing

# Every service, in the order they start and are seeded.
SERVICE_NAMES: tuple[str, ...] = ("tenants", "auth", "users", "catalog", "search", "inventory", "cart", "orders",
                                  "payments")
SERVICE_ENV = "AMAZONLITE_SERVICE"
UPSTREAMS_ENV = "AMAZONLITE_GATEWAY_UPSTREAMS"
# The gateway caches the catalog's public reads, and forgets a tenant's when its catalog changes.
CATALOG_CACHE = CachePolicy(
    routes=frozenset({"/api/v1/products", "/api/v1/categories", "/api/v1/brands"}),
    invalidated_by=(ProductUpdatedV1.event_type, ProductDeletedV1.event_type, ProductRatingUpdatedV1.event_type),
)
# Where a service process finds the others: `auth=http://auth:8001,catalog=http://catalog:8003`.
SERVICE_URLS_ENV = "AMAZONLITE_SERVICE_URLS"


def load_service(name: str) -> ServiceModule:
    if name not in SERVICE_NAMES:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(SERVICE_NAMES)}")
    module = importlib.import_module(f"amazonlite.services.{name}.app")
    return module.SERVICE


def make_transport(platform: PlatformSettings, client_id: str) -> Transport:
    if platform.embedded_bus:
        return InProcessTransport()
    return KafkaTransport(platform.kafka_bootstrap, client_id=client_id,
                          partitions=platform.kafka_topic_partitions,
                          session_timeout_ms=platform.kafka_session_timeout_ms,
                          heartbeat_interval_ms=platform.kafka_heartbeat_interval_ms,
                          request_timeout_ms=platform.kafka_request_timeout_ms,
                          restart_after_s=platform.kafka_consumer_restart_after_ms / 1000,
                          fetch_max_wait_ms=platform.kafka_fetch_max_wait_ms)


def make_redis(platform: PlatformSettings) -> Any:
    if not platform.redis_url:
        return None
    from redis.asyncio import Redis

    return Redis.from_url(platform.redis_url, socket_timeout=2, socket_connect_timeout=2)


def make_revocations(platform: PlatformSettings, redis: Any) -> RevocationStore:
    if redis is None:
        return MemoryRevocationStore()
    return RedisRevocationStore(redis, platform.redis_prefix)


def build_runtime(name: str, platform: PlatformSettings, *, transport: Transport,
                  revocations: RevocationStore, redis: Any) -> ServiceRuntime:
    return ServiceRuntime(load_service(name), platform, transport=transport, revocations=revocations, redis=redis)


def migrate(names: Sequence[str], platform: PlatformSettings) -> None:
    for name in names:
        module = load_service(name)
        upgrade(name, module.migrations, module.settings().resolved_database_url(platform))


async def seed(names: Sequence[str], platform: PlatformSettings, tenant_id: str) -> None:
    """Load each service's demo data, in order. The events a service records stay in its outbox and
    are published when it runs; the services seeded after it also get them now, through their own
    consumers (so inventory's seed sees the SKUs the catalog's seed created). Their inboxes remember
    the events, so the bus delivering them again later has no second effect."""
    transport = InProcessTransport()
    revocations = MemoryRevocationStore()
    recorded: list[Message] = []
    for name in names:
        runtime = build_runtime(name, platform, transport=transport, revocations=revocations, redis=None)
        try:
            if runtime.module.seed is None:
                continue
            if runtime.module.on_startup is not None:
                await runtime.module.on_startup(runtime)
            topics = runtime.module.handlers.subscriptions
            await runtime.consumer.deliver_many([message for message in recorded if message.topic in topics])
            await runtime.module.seed(runtime, tenant_id)
            recorded.extend(await runtime.relay.unpublished(tenant_id))
        finally:
            await runtime.db.dispose()


def _configure(process: str, platform: PlatformSettings) -> None:
    configure_logging(process, level=platform.log_level, json=platform.log_json)
    configure_tracing(process)


def build_embedded(platform: PlatformSettings, names: Sequence[str] = SERVICE_NAMES, *,
                   server_process: bool = False) -> FastAPI:
    """Every service and the gateway in one process, sharing one bus and one revocation store.
    `server_process`: this app is the process's (not a test's), so its start-up heap is frozen."""
    transport = make_transport(platform, "amazonlite")
    redis = make_redis(platform)
    revocations = make_revocations(platform, redis)
    runtimes = [build_runtime(n, platform, transport=transport, revocations=revocations, redis=redis)
                for n in names]
    upstreams = [Upstream(name=rt.name, app=create_service_app(rt, own_lifespan=False), ready=rt.check_ready)
                 for rt in runtimes]
    for runtime in runtimes:
        for upstream in upstreams:
            if upstream.name != runtime.name:
                runtime.services.register(upstream.name, app=upstream.app)

    async def start() -> None:
        await transport.start()
        for runtime in runtimes:
            await runtime.start()

    async def stop() -> None:
        for runtime in reversed(runtimes):
            await runtime.stop()
        await transport.stop()
        if redis is not None:
            await redis.aclose()

    on_startup = [start, freeze_startup_heap] if server_process else [start]
    return create_gateway(platform, upstreams, revocations=revocations, cache_policy=CATALOG_CACHE,
                          events=transport, redis=redis, on_startup=on_startup, on_shutdown=[stop])


class MisconfiguredProcess(RuntimeError):
    pass


def require_distributed_settings(platform: PlatformSettings) -> None:
    """A process of the distributed topology cannot fall back to embedded stand-ins: an in-process
    bus there has no subscribers (events would be marked sent and lost), and in-memory revocations
    are invisible to the gateway (logout would not log out). Its environment must also be chosen,
    so that production secrets are never replaced by development defaults by accident."""
    missing = []
    if not platform.kafka_bootstrap:
        missing.append("AMAZONLITE_KAFKA_BOOTSTRAP (Kafka: the event bus, also the gateway's cache invalidations)")
    if not platform.redis_url:
        missing.append("AMAZONLITE_REDIS_URL (Redis: revoked access tokens, shared by auth and the gateway)")
    if "AMAZONLITE_ENVIRONMENT" not in os.environ:
        missing.append("AMAZONLITE_ENVIRONMENT (production; or development/test for a local run)")
    if missing:
        raise MisconfiguredProcess("a distributed process needs " + "; ".join(missing)
                                   + " — for everything in one process use `amazonlite up`")


def embedded_app() -> FastAPI:
    platform = platform_settings()
    _configure("amazonlite", platform)
    return build_embedded(platform, server_process=True)


def service_app() -> FastAPI:
    """One service as its own process (`amazonlite serve <service>`): name from AMAZONLITE_SERVICE."""
    name = os.environ[SERVICE_ENV]
    platform = platform_settings()
    _configure(name, platform)
    require_distributed_settings(platform)
    redis = make_redis(platform)
    runtime = build_runtime(name, platform, transport=make_transport(platform, name),
                            revocations=make_revocations(platform, redis), redis=redis)
    for other, url in parse_upstreams(os.environ.get(SERVICE_URLS_ENV, "")).items():
        if other != name:
            runtime.services.register(other, url=url)
    return create_service_app(runtime, own_lifespan=True)


def parse_upstreams(value: str) -> dict[str, str]:
    """`{"auth": "http://..."}` JSON, or `auth=http://...,users=http://...`."""
    value = value.strip()
    if not value:
        return {}
    if value.startswith("{"):
        parsed = json.loads(value)
        return {str(k): str(v) for k, v in parsed.items()}
    pairs = (item.split("=", 1) for item in value.split(",") if item.strip())
    return {k.strip(): v.strip() for k, v in pairs}


def gateway_app() -> FastAPI:
    """The gateway alone, proxying to the services named in AMAZONLITE_GATEWAY_UPSTREAMS."""
    platform = platform_settings()
    _configure("gateway", platform)
    require_distributed_settings(platform)
    urls = parse_upstreams(os.environ.get(UPSTREAMS_ENV, ""))
    unknown = set(urls) - set(SERVICE_NAMES)
    if unknown:
        raise ValueError(f"unknown services in {UPSTREAMS_ENV}: {sorted(unknown)}")
    redis = make_redis(platform)
    revocations = make_revocations(platform, redis)
    transport = make_transport(platform, "gateway")  # catalog events invalidate the response cache

    async def stop() -> None:
        await transport.stop()
        if redis is not None:
            await redis.aclose()

    upstreams = [Upstream(name=name, url=url) for name, url in urls.items()]
    return create_gateway(platform, upstreams, revocations=revocations, cache_policy=CATALOG_CACHE,
                          events=transport, redis=redis, on_startup=[transport.start, freeze_startup_heap],
                          on_shutdown=[stop])
