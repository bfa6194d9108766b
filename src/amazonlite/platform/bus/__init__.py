"""The bus: one interface, two transports (in-process for the embedded topology, Kafka)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = field(default=())


# A consumer's delivery function, handed messages in order (a partition's fetched records, a
# relay's batch): returns once every one is applied or dead-lettered; raises only when that could
# not be recorded (its store is down), and then the transport delivers them all again.
Deliver = Callable[[Sequence[Message]], Awaitable[None]]


class Transport(Protocol):
    name: str
    # Whether `publish` returns only once every subscribed group has applied the messages (the
    # in-process bus), rather than once a broker has accepted them.
    delivers_inline: bool

    def subscribe(self, group: str, topics: Sequence[str], deliver: Deliver) -> None:
        """Register a consumer group before `start()`."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, messages: Sequence[Message]) -> None:
        """Publish in order; returns when every message is durably accepted."""

    async def ping(self) -> None:
        """Raise when the transport cannot publish."""

    def check_consumer(self, group: str, stale_after: float) -> str:
        """The readiness of a consumer group: "ok", or "failing: <why>" when it has not joined, or
        not polled or committed successfully for `stale_after` seconds."""
