from __future__ import annotations

from amazonlite.platform.consumer import EventHandlers

# product.rating.updated.v1 (from reviews) will land here once its contract is published.
handlers = EventHandlers()
