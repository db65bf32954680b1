"""A tiny, real OTLP receiver for tests: gRPC and HTTP/protobuf on free 127.0.0.1 ports.

Why: tests must see what really leaves a process over the wire (exporter, protocol, resource,
batching), not what an in-memory exporter was handed.  The sink decodes every
``Export{Trace,Metrics,Logs}ServiceRequest`` it receives and keeps it in memory.

API::

    from tests.support.otlp_sink import OtlpSink, otlp_sink  # otlp_sink is a pytest fixture

    with OtlpSink() as sink:                 # starts gRPC + HTTP servers, stops them on exit
        sink.grpc_endpoint                   # "http://127.0.0.1:<port>"  (OTLP gRPC)
        sink.http_endpoint                   # "http://127.0.0.1:<port>"  (POST /v1/traces|metrics|logs)
        spans = sink.wait_for_spans("rag.query", count=1, timeout=10)   # -> list[SinkSpan]
        sink.spans()                         # every span so far (SinkSpan: name, attributes, ids...)
        sink.wait_for_metric("rag.queries")  # -> list[SinkMetric] once a metric of that name arrived
        sink.metrics(); sink.metric_names()
        sink.wait_for_logs(lambda r: r.event_name == "rag.feedback")   # -> list[SinkLog]
        sink.logs()
        sink.requests                        # raw decoded requests: {"traces": [...], "metrics": [...], "logs": [...]}
        sink.transports                      # e.g. {"grpc", "http"}: which servers received anything
        sink.reject = True                   # answer UNAVAILABLE (gRPC) / 503 (HTTP), keep nothing
        sink.clear()

``OtlpSink(grpc=False)`` or ``OtlpSink(http=False)`` starts only one server.  HTTP accepts
``Content-Encoding: gzip``.  Attribute values are decoded to plain Python (str, int, float,
bool, list, dict, bytes).  Ids are lowercase hex strings (``parent_span_id`` is ``""`` for a root).
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

__all__ = ["OtlpSink", "SinkLog", "SinkMetric", "SinkSpan", "any_value", "attributes", "otlp_sink"]


def any_value(v: AnyValue) -> Any:
    """Plain Python value of an OTLP ``AnyValue``."""
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return attributes(v.kvlist_value.values)
    return getattr(v, kind)


def attributes(kvs: Any) -> dict[str, Any]:
    """``repeated KeyValue`` -> dict."""
    return {kv.key: any_value(kv.value) for kv in kvs}


@dataclass
class SinkSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int  # opentelemetry.proto.trace.v1.Span.SpanKind: 1 INTERNAL, 2 SERVER, 3 CLIENT
    status_code: int  # 0 UNSET, 1 OK, 2 ERROR
    status_message: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    resource: dict[str, Any]
    scope: str
    start_ns: int
    end_ns: int


@dataclass
class SinkMetric:
    name: str
    unit: str
    kind: str  # gauge | sum | histogram | exponential_histogram | summary
    points: list[Any]  # the proto data points as received
    resource: dict[str, Any]
    scope: str

    def point_attributes(self) -> list[dict[str, Any]]:
        return [attributes(p.attributes) for p in self.points]


@dataclass
class SinkLog:
    event_name: str
    body: Any
    attributes: dict[str, Any]
    trace_id: str
    span_id: str
    severity_text: str
    resource: dict[str, Any]
    scope: str


@dataclass
class _Store:
    requests: dict[str, list[Any]] = field(default_factory=lambda: {"traces": [], "metrics": [], "logs": []})
    transports: set[str] = field(default_factory=set)
    cond: threading.Condition = field(default_factory=threading.Condition)


class _TraceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: OtlpSink) -> None:
        self.sink = sink

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.sink._grpc_receive("traces", request, context)
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, sink: OtlpSink) -> None:
        self.sink = sink

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.sink._grpc_receive("metrics", request, context)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class _LogsServicer(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, sink: OtlpSink) -> None:
        self.sink = sink

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.sink._grpc_receive("logs", request, context)
        return logs_service_pb2.ExportLogsServiceResponse()


_HTTP_PATHS: dict[str, tuple[str, Any, Any]] = {
    "/v1/traces": ("traces", trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
    "/v1/metrics": (
        "metrics", metrics_service_pb2.ExportMetricsServiceRequest, metrics_service_pb2.ExportMetricsServiceResponse,
    ),
    "/v1/logs": ("logs", logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
}


class OtlpSink:
    """Real OTLP gRPC + HTTP servers on 127.0.0.1 collecting everything in memory (see module doc)."""

    def __init__(self, *, grpc: bool = True, http: bool = True) -> None:
        self._want_grpc = grpc
        self._want_http = http
        self._store = _Store()
        self._grpc_server: Any = None
        self._http_server: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self.grpc_port = 0
        self.http_port = 0
        self.reject = False

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> OtlpSink:
        if self._want_grpc:
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
            trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceServicer(self), server)
            metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsServicer(self), server)
            logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_LogsServicer(self), server)
            self.grpc_port = server.add_insecure_port("127.0.0.1:0")
            server.start()
            self._grpc_server = server
        if self._want_http:
            self._http_server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
            self._http_server.daemon_threads = True
            self.http_port = self._http_server.server_address[1]
            self._http_thread = threading.Thread(target=self._http_server.serve_forever, daemon=True)
            self._http_thread.start()
        return self

    def stop(self) -> None:
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=None)
            self._grpc_server = None
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()
            self._http_server = None

    def __enter__(self) -> OtlpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    # --- receiving ---------------------------------------------------------------------------
    def _keep(self, signal: str, request: Any, transport: str) -> None:
        with self._store.cond:
            self._store.requests[signal].append(request)
            self._store.transports.add(transport)
            self._store.cond.notify_all()

    def _grpc_receive(self, signal: str, request: Any, context: grpc.ServicerContext) -> None:
        if self.reject:
            context.abort(grpc.StatusCode.UNAVAILABLE, "sink rejects (test)")
        self._keep(signal, request, "grpc")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                route = _HTTP_PATHS.get(self.path.split("?", 1)[0])
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if route is None:
                    self._reply(404, b"unknown OTLP path")
                    return
                if sink.reject:
                    self._reply(503, b"sink rejects (test)")
                    return
                signal, req_cls, resp_cls = route
                try:
                    if self.headers.get("Content-Encoding", "").lower() == "gzip":
                        body = gzip.decompress(body)
                    request = req_cls.FromString(body)
                except Exception as e:
                    self._reply(400, f"bad OTLP body: {e}".encode())
                    return
                sink._keep(signal, request, "http")
                self._reply(200, resp_cls().SerializeToString(), "application/x-protobuf")

            def _reply(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    # --- reading -----------------------------------------------------------------------------
    @property
    def requests(self) -> dict[str, list[Any]]:
        with self._store.cond:
            return {k: list(v) for k, v in self._store.requests.items()}

    @property
    def transports(self) -> set[str]:
        with self._store.cond:
            return set(self._store.transports)

    def clear(self) -> None:
        with self._store.cond:
            for v in self._store.requests.values():
                v.clear()
            self._store.transports.clear()

    def spans(self) -> list[SinkSpan]:
        out: list[SinkSpan] = []
        for req in self.requests["traces"]:
            for rs in req.resource_spans:
                res = attributes(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        out.append(SinkSpan(
                            name=s.name, trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                            parent_span_id=s.parent_span_id.hex(), kind=s.kind,
                            status_code=s.status.code, status_message=s.status.message,
                            attributes=attributes(s.attributes),
                            events=[(e.name, attributes(e.attributes)) for e in s.events],
                            resource=res, scope=ss.scope.name,
                            start_ns=s.start_time_unix_nano, end_ns=s.end_time_unix_nano,
                        ))
        return out

    def metrics(self) -> list[SinkMetric]:
        out: list[SinkMetric] = []
        for req in self.requests["metrics"]:
            for rm in req.resource_metrics:
                res = attributes(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        kind = m.WhichOneof("data") or ""
                        points = list(getattr(m, kind).data_points) if kind else []
                        out.append(SinkMetric(m.name, m.unit, kind, points, res, sm.scope.name))
        return out

    def metric_names(self) -> set[str]:
        return {m.name for m in self.metrics()}

    def logs(self) -> list[SinkLog]:
        out: list[SinkLog] = []
        for req in self.requests["logs"]:
            for rl in req.resource_logs:
                res = attributes(rl.resource.attributes)
                for sl in rl.scope_logs:
                    for r in sl.log_records:
                        out.append(SinkLog(
                            event_name=r.event_name, body=any_value(r.body), attributes=attributes(r.attributes),
                            trace_id=r.trace_id.hex(), span_id=r.span_id.hex(), severity_text=r.severity_text,
                            resource=res, scope=sl.scope.name,
                        ))
        return out

    # --- waiting -----------------------------------------------------------------------------
    def _wait(self, get: Callable[[], list[Any]], ok: Callable[[list[Any]], bool], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        with self._store.cond:
            while True:
                items = get()
                if ok(items):
                    return items
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"OtlpSink: {what} not received within {timeout}s (got {len(items)})")
                self._store.cond.wait(min(left, 0.1))

    def wait_for_spans(self, name: str | None = None, count: int = 1, timeout: float = 10.0) -> list[SinkSpan]:
        """Spans named ``name`` (any name if None) once at least ``count`` arrived."""
        return self._wait(
            lambda: [s for s in self.spans() if name is None or s.name == name],
            lambda xs: len(xs) >= count, timeout, f"{count} span(s) {name or ''}".strip(),
        )

    def wait_for_metric(self, name: str, timeout: float = 10.0) -> list[SinkMetric]:
        """Every received metric named ``name``, once at least one arrived."""
        return self._wait(lambda: [m for m in self.metrics() if m.name == name], bool, timeout, f"metric {name}")

    def wait_for_logs(
        self, predicate: Callable[[SinkLog], bool] = lambda _r: True, count: int = 1, timeout: float = 10.0,
    ) -> list[SinkLog]:
        """Log records matching ``predicate`` once at least ``count`` arrived."""
        return self._wait(
            lambda: [r for r in self.logs() if predicate(r)], lambda xs: len(xs) >= count, timeout, "log records",
        )


@pytest.fixture
def otlp_sink() -> Iterator[OtlpSink]:
    """A started sink (gRPC + HTTP), stopped after the test."""
    with OtlpSink() as sink:
        yield sink
