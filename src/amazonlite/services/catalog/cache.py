"""Hot products, kept serialised (platform/read_cache.py): in Redis when the topology has one, in
the process's memory otherwise. `GET /products/{id}` answers an active product's document from
here; every change to a product's document (its own writes, a rename of its brand or category, its
deletion) drops the entry after the change commits."""

from __future__ import annotations

import uuid
from typing import Any

from amazonlite.platform.read_cache import ReadCache


class ProductCache:
    def __init__(self, documents: ReadCache, *, prefix: str) -> None:
        self.documents = documents
        self.prefix = prefix

    @classmethod
    def create(cls, redis: Any, *, prefix: str, ttl_seconds: float, max_local_entries: int,
               timeout_seconds: float) -> ProductCache:
        return cls(ReadCache.shared_or_local(redis, name="catalog.product", ttl_seconds=ttl_seconds,
                                             max_local_entries=max_local_entries, timeout_seconds=timeout_seconds),
                   prefix=prefix)

    def key(self, tenant_id: str, product_id: uuid.UUID) -> str:
        return f"{self.prefix}:catalog:product:{tenant_id}:{product_id}"

    async def get(self, tenant_id: str, product_id: uuid.UUID) -> bytes | None:
        return await self.documents.get(self.key(tenant_id, product_id))

    async def put(self, tenant_id: str, product_id: uuid.UUID, document: bytes) -> None:
        await self.documents.put(self.key(tenant_id, product_id), document)

    async def drop(self, tenant_id: str, product_id: uuid.UUID) -> None:
        await self.documents.drop(self.key(tenant_id, product_id))
