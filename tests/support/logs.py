"""The JSON log lines a test's code writes, read as a server's operator would read them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import structlog

from amazonlite.platform.logging import configure_logging

Logs = Callable[[], list[dict[str, Any]]]


def read_json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Logs]:
    """The body of the `logs` fixture: logging configured as a server's, then every JSON line so far."""
    configure_logging("test", json=True, cache=False)
    capsys.readouterr()
    lines: list[dict[str, Any]] = []

    def read() -> list[dict[str, Any]]:
        lines.extend(orjson.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{"))
        return lines

    yield read
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def at_level(lines: list[dict[str, Any]], level: str) -> list[str]:
    return [line["event"] for line in lines if line["level"] == level]
