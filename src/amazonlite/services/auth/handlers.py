"""auth consumes no events; it publishes `user.registered.v1`."""

from __future__ import annotations

from amazonlite.platform.consumer import EventHandlers

handlers = EventHandlers()
