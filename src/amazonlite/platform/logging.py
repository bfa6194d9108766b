"""Structured logs: JSON lines with timestamp, level, service, event, trace and correlation ids."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog

from amazonlite.platform.tracing import current_ids

_SERVICE = {"name": "amazonlite"}


def _add_service(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    event.setdefault("service", _SERVICE["name"])
    return event


def _add_trace(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    trace_id, span_id = current_ids()
    if trace_id:
        event.setdefault("trace_id", trace_id)
        event.setdefault("span_id", span_id)
    return event


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the moment of writing. A logger configured once must
    not keep a stream that its caller later replaces and closes (a CLI runner, a test capture):
    a log line would then raise inside the code that logs."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_STDERR = _CurrentStderr()


def _orjson_dumps(obj: Any, default: Any = None) -> str:
    return orjson.dumps(obj, default=default).decode()


def configure_logging(service: str, *, level: str = "INFO", json: bool = True, cache: bool = True) -> None:
    """`cache=False` keeps loggers re-reading the configuration (tests that capture output); a
    process configures once and caches (faster)."""
    _SERVICE["name"] = service
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        _add_service,
        _add_trace,
        structlog.processors.format_exc_info,
    ]
    renderer: Any = (structlog.processors.JSONRenderer(serializer=_orjson_dumps) if json
                     else structlog.dev.ConsoleRenderer())
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=_STDERR),  # type: ignore[arg-type]
        cache_logger_on_first_use=cache,
    )
    # Libraries that log through the standard library go through the same renderer.
    handler = logging.StreamHandler(_STDERR)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=processors,
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "kafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # aiokafka logs each failed attempt at `error` while a broker is away (6,600 lines in 5 minutes);
    # the Kafka transport logs each consumer group's and each relay's outage once instead.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
