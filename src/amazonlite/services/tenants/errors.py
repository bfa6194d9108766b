from __future__ import annotations

from amazonlite.platform.errors import Conflict, NotFound


class TenantNotFound(NotFound):
    # Also the answer to a tenant admin naming another tenant: its existence is not revealed.
    type = "tenant-not-found"
    title = "No such tenant"


class TenantExists(Conflict):
    type = "tenant-exists"
    title = "A tenant with this id already exists"
