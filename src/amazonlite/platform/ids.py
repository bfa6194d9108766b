"""Identifiers: UUIDs, time-ordered (UUIDv7) so that rows keyed by them append to their index."""

from __future__ import annotations

import uuid

import uuid6


def new_id() -> uuid.UUID:
    """A new time-ordered UUID (version 7)."""
    return uuid.UUID(bytes=uuid6.uuid7().bytes)
