from __future__ import annotations

from amazonlite.contracts import UserRegisteredV1
from amazonlite.platform.consumer import EventContext, EventHandlers
from amazonlite.services.users import service

handlers = EventHandlers()


@handlers.subscriber(UserRegisteredV1)
async def on_user_registered(ctx: EventContext, event: UserRegisteredV1) -> None:
    await service.create_profile(ctx.session, event, cache=ctx.runtime.state.profile_cache)
