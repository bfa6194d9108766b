from __future__ import annotations

from amazonlite.platform.errors import Conflict, Forbidden, NotFound


class TenantNotFound(NotFound):
    # Also the answer to a tenant admin naming another tenant: its existence is not revealed.
    type = "tenant-not-found"
    title = "No such tenant"


class TenantExists(Conflict):
    type = "tenant-exists"
    title = "A tenant with this id already exists"


class PlatformTenantNotSuspendable(Conflict):
    # Platform administration lives in the default tenant: suspended, nobody could sign in to undo it.
    type = "platform-tenant-not-suspendable"
    title = "The platform's own tenant cannot be suspended"


class StatusChangeForbidden(Forbidden):
    # A tenant admin who suspended their own tenant could not sign in to undo it.
    type = "tenant-status-change-forbidden"
    title = "Only a platform admin changes a tenant's status"
