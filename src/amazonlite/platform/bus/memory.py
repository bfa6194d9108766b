"""The in-process transport: the embedded topology's bus.

`publish` hands each subscribed group the messages of its topics, in order, in one delivery (the
consumer applies them in runs, one transaction each), and returns only after every group has
applied (or dead-lettered) them, so the outbox row is marked sent only once its effects are
committed in every consumer's database. A crash before that re-publishes it at the next start,
and the consumers' inboxes drop the repeat: at-least-once delivery, at-most-once effect, with no broker.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence

from amazonlite.platform.bus import Deliver, Message


class InProcessTransport:
    name = "in-process"
    delivers_inline = True

    def __init__(self) -> None:
        self._subscribers: dict[str, list[tuple[str, Deliver]]] = defaultdict(list)
        self._started = False

    def subscribe(self, group: str, topics: Sequence[str], deliver: Deliver) -> None:
        for topic in topics:
            self._subscribers[topic].append((group, deliver))

    async def start(self) -> None:
        self._started = True

    async def stop(self) -> None:
        self._started = False

    async def publish(self, messages: Sequence[Message]) -> None:
        deliveries: dict[str, tuple[Deliver, list[Message]]] = {}
        for message in messages:
            for group, deliver in self._subscribers.get(message.topic, ()):
                deliveries.setdefault(group, (deliver, []))[1].append(message)
        if deliveries:
            await asyncio.gather(*(deliver(batch) for deliver, batch in deliveries.values()))

    async def ping(self) -> None:
        if not self._started:
            raise ConnectionError("the in-process bus is not started")

    def check_consumer(self, group: str, stale_after: float) -> str:
        return "ok"  # no broker: a subscriber is called by the publisher itself
