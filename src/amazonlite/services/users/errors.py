from __future__ import annotations

from amazonlite.platform.errors import AppError, Conflict, NotFound


class ProfileNotFound(NotFound):
    type = "profile-not-found"
    title = "No profile yet"


class AddressNotFound(NotFound):
    # Also the answer for another user's address: its existence is not revealed.
    type = "address-not-found"
    title = "No such address"


class AddressLimitReached(Conflict):
    type = "address-limit-reached"
    title = "The address book is full"


class DefaultAddressRequired(Conflict):
    type = "default-address-required"
    title = "An address book always has a default address"


class AddressUnreadable(AppError):
    # A stored value fails to decrypt: its key left the ring before rotation finished, or the value
    # was altered or copied from another row. Never shown as something else.
    status = 500
    type = "address-unreadable"
    title = "A stored address cannot be decrypted"
