from __future__ import annotations

from amazonlite.platform.errors import BadRequest, ServiceUnavailable


class InvalidSearch(BadRequest):
    type = "invalid-search"
    title = "The search cannot be run as asked"


class CatalogUnavailable(ServiceUnavailable):
    type = "catalog-unavailable"
    title = "The catalog cannot be read to rebuild the index"
