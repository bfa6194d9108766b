from __future__ import annotations

from amazonlite.platform.errors import NotFound


class ProfileNotFound(NotFound):
    type = "profile-not-found"
    title = "No profile yet"
