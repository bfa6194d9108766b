"""Outages of a dependency (a service's database, an upstream service, Redis) logged once per
change of its state, not once per request.

While a dependency is down every request that needs it fails the same expected way (a 503 or 504
problem): one `warning` when the outage begins and one `info` when it ends say all there is to say,
and leave `error` to what needs a person. The failures in between are counted, not logged (the
request metrics still count every answer).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger("amazonlite.outages")


@dataclass(slots=True)
class _Outage:
    began: float
    failures: int


class DependencyStates:
    """What this process last saw of each dependency, by name (`users.database`,
    `gateway.upstream.catalog`)."""

    def __init__(self) -> None:
        self._down: dict[str, _Outage] = {}

    def unavailable(self, dependency: str, **fields: Any) -> None:
        outage = self._down.get(dependency)
        if outage is not None:
            outage.failures += 1
            return
        self._down[dependency] = _Outage(time.monotonic(), 1)
        log.warning("outages.dependency_went_down", dependency=dependency, **fields)

    def available(self, dependency: str) -> None:
        if not self._down:  # the common case: nothing is down, nothing to look up
            return
        outage = self._down.pop(dependency, None)
        if outage is not None:
            log.info("outages.dependency_came_back", dependency=dependency, failures=outage.failures,
                     down_seconds=round(time.monotonic() - outage.began, 1))


DEPENDENCIES = DependencyStates()


def database_dependency(service: str) -> str:
    return f"{service}.database"


def upstream_dependency(service: str, *, caller: str = "gateway") -> str:
    """A service another one calls, as the outage log names it: `<caller>.upstream.<service>`."""
    return f"{caller}.upstream.{service}"


def redis_dependency(owner: str) -> str:
    return f"{owner}.redis"
