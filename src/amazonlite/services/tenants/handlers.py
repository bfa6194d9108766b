from __future__ import annotations

from amazonlite.platform.consumer import EventHandlers

# The tenants service consumes no events.
handlers = EventHandlers()
