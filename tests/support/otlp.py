"""A local OpenTelemetry collector for tests: an OTLP/HTTP receiver (protobuf, `POST /v1/traces`) on
a free port, served in a thread, that keeps every span the platform's processes export. The
platform exports with its production exporter (`OTEL_EXPORTER_OTLP_ENDPOINT`), so a test sees what a
Jaeger or Tempo behind a real collector would."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class ReceivedSpan:
    service: str  # the exporting process's `service.name`
    name: str
    trace_id: str  # 32 hex digits
    span_id: str
    parent_span_id: str  # "" for a root span
    kind: int  # OTLP's SpanKind: 2 server, 3 client, 5 consumer


class Collector:
    def __init__(self) -> None:
        self._spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        collector = self

        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                collector._keep(request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _keep(self, request: ExportTraceServiceRequest) -> None:
        received = []
        for resource_spans in request.resource_spans:
            service = next((attribute.value.string_value for attribute in resource_spans.resource.attributes
                            if attribute.key == "service.name"), "")
            for scope_spans in resource_spans.scope_spans:
                received += [ReceivedSpan(service, span.name, span.trace_id.hex(), span.span_id.hex(),
                                          span.parent_span_id.hex(), span.kind) for span in scope_spans.spans]
        with self._lock:
            self._spans += received

    def spans(self, trace_id: str | None = None) -> list[ReceivedSpan]:
        """The spans received so far (of one trace, if given)."""
        with self._lock:
            return [span for span in self._spans if trace_id is None or span.trace_id == trace_id]

    def env(self) -> dict[str, str]:
        """What a platform process needs to export here, at once (the batch processor's delay shortened)."""
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}


@contextlib.contextmanager
def local_collector() -> Iterator[Collector]:
    collector = Collector()
    thread = threading.Thread(target=collector._server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="otlp-collector", daemon=True)
    thread.start()
    try:
        yield collector
    finally:
        collector._server.shutdown()
        collector._server.server_close()
