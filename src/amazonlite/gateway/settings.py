"""Gateway settings (`AMAZONLITE_GATEWAY_*`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AMAZONLITE_GATEWAY_", extra="ignore")

    # Distributed upstreams: one pooled httpx client per upstream.
    upstream_timeout_seconds: float = Field(default=10.0, gt=0)
    upstream_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    upstream_max_connections: int = Field(default=256, ge=1)
    upstream_max_keepalive_connections: int = Field(default=64, ge=0)
    # Readiness and OpenAPI fetches from the upstreams.
    readiness_timeout_seconds: float = Field(default=2.0, gt=0)
    openapi_cache_seconds: float = Field(default=30.0, ge=0)

    # Access tokens (issued by the auth service, verified here against its JWKS).
    token_issuer: str = "amazonlite-auth"
    token_audience: str = "amazonlite"
    token_leeway_seconds: int = Field(default=5, ge=0)
    # An unknown `kid` refetches the JWKS, at most once per this interval.
    jwks_refresh_min_interval_seconds: float = Field(default=5.0, ge=0)
    # Keys older than this are refetched on the next verification (removed keys stop working).
    jwks_max_age_seconds: float = Field(default=600.0, gt=0)
    # Verified access tokens kept (until they expire) so a token is checked once, not per request.
    verified_token_cache_size: int = Field(default=10_000, ge=0)
    # A minted internal token is reused for this fraction of its lifetime (0 disables the cache).
    internal_token_reuse_fraction: float = Field(default=0.5, ge=0, le=0.9)
    internal_token_cache_size: int = Field(default=10_000, ge=0)

    # Browser origins allowed to call the API (a storefront on another origin); empty: no CORS.
    # As JSON in the environment: AMAZONLITE_GATEWAY_CORS_ALLOW_ORIGINS='["https://shop.example"]'.
    cors_allow_origins: list[str] = Field(default_factory=list)

    # Resilience per upstream (platform/resilience.py): the deadline is `upstream_timeout_seconds`, the
    # bulkhead admits this many requests in flight and this many waiting; breaker and retry settings
    # come from `AMAZONLITE_RESILIENCE_*`.
    upstream_max_concurrent: int = Field(default=256, ge=1)
    upstream_max_waiting: int = Field(default=1024, ge=0)

    # Tenant settings (status, rate limits) read from the tenants service and kept this long; an
    # unknown tenant id is remembered for `unknown_tenant_cache_seconds` (a new tenant shows up then).
    tenant_cache_seconds: float = Field(default=30.0, gt=0)
    unknown_tenant_cache_seconds: float = Field(default=5.0, gt=0)
    tenant_cache_size: int = Field(default=10_000, ge=1)
    # Rate limits: the tenant's `tenant_per_minute` / `client_per_minute` requests per this window
    # (sliding window counter). Only tests shorten it. Without a tenants upstream these defaults apply.
    rate_limit_enabled: bool = True
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=3600)
    default_tenant_per_minute: int = Field(default=6_000, ge=1)
    default_client_per_minute: int = Field(default=600, ge=1)

    # Response cache of public reads (gateway/cache.py): on when the topology gives a cache policy and
    # an event bus to invalidate it. Entries live this long at most (an invalidating event or a write
    # through the gateway drops them sooner); bodies over `response_cache_max_body_bytes` are not kept;
    # the in-memory store holds at most `response_cache_max_bytes` (bodies, headers, bookkeeping),
    # evicting the least recently used. Redis: give it a `maxmemory` and the `volatile-lru` policy
    # (entries expire, the tenants' generation keys do not, so those are never the ones evicted).
    response_cache_enabled: bool = True
    response_cache_ttl_seconds: float = Field(default=30.0, gt=0, le=3600)
    response_cache_max_body_bytes: int = Field(default=256 * 1024, ge=0)
    response_cache_max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)

    # Addresses (or CIDR networks) of reverse proxies in front of the gateway. Only a request that
    # arrives from one of them has its `X-Forwarded-For` believed (never `Forwarded`, `X-Real-IP` and
    # the like: gateway/edge.py); empty: the peer address is the client.
    trusted_proxies: list[str] = Field(default_factory=list)
    # The deployment is served over TLS (directly or by a proxy): send Strict-Transport-Security.
    behind_tls: bool = False
    hsts_max_age_seconds: int = Field(default=63_072_000, ge=0)
