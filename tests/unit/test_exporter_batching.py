"""Pure parts of the exporter: wire framing, item counting, backoff, the bounded queue."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import ResourceMetrics

from rag_otel.config import ConfigError, Endpoint
from rag_otel.processor.export_transport import GrpcTransport, HttpTransport, transport_for
from rag_otel.processor.exporter import OtlpFanOut, RetryPolicy, count_items, frame
from rag_otel.processor.ingest import Signal
from tests.support.otlp_io import Metrics, resource_spans


def test_framed_resources_concatenate_into_the_export_request() -> None:
    resources = [resource_spans(3), resource_spans(200, service="b")]  # 200 spans: multi-byte length varint
    body = b"".join(frame(r) for r in resources)
    assert ExportTraceServiceRequest.FromString(body) == ExportTraceServiceRequest(resource_spans=resources)
    assert count_items(Signal.TRACES, resources[1]) == 200


def test_backoff_grows_caps_and_obeys_the_server() -> None:
    p = RetryPolicy(initial_backoff=0.5, max_backoff=4, jitter=0.2)
    assert 0.4 <= p.backoff(0, None) <= 0.6
    assert 1.6 <= p.backoff(2, None) <= 2.4
    assert p.backoff(10, None) <= 4.8
    assert p.backoff(0, 2.5) == 2.5
    assert p.backoff(0, 99) == 4  # a server cannot park us longer than max_backoff


def test_a_full_queue_drops_the_oldest_and_counts_them() -> None:
    metrics = Metrics()
    fo = OtlpFanOut([Endpoint(url="http://127.0.0.1:9")], metrics.meter, queue_size=25)  # never started
    for i in range(5):
        fo.export_spans([resource_spans(10, tag=f"{i}-")])
    q = fo.queues[0]
    assert q.depth == 20  # two resources of 10 fit in 25
    kept = [ExportTraceServiceRequest.FromString(e.framed).resource_spans[0].scope_spans[0].spans[0].name
            for e in q._queues[Signal.TRACES]]
    assert kept == ["3-0", "4-0"]
    assert metrics.value("rag.processor.export.dropped", reason="queue_full") == 30
    assert metrics.value("rag.processor.queue.depth", endpoint="http://127.0.0.1:9") == 20


def test_export_with_no_endpoints_is_a_no_op() -> None:
    fo = OtlpFanOut([], Metrics().meter)
    fo.start()
    fo.export_spans([resource_spans(1)])
    assert fo.shutdown(0.1)


def test_endpoint_url_picks_the_protocol() -> None:
    assert isinstance(transport_for(Endpoint(url="http://collector:4318")), HttpTransport)
    assert isinstance(transport_for(Endpoint(url="grpc://collector:4317")), GrpcTransport)
    with pytest.raises(ConfigError, match="grpc"):
        transport_for(Endpoint(url="udp://collector:4317"))


def _points(n: int) -> ResourceMetrics:
    rm = ResourceMetrics()
    metric = rm.scope_metrics.add().metrics.add(name="rag.processor.queries")
    for i in range(n):
        metric.sum.data_points.add(as_int=i)
    return rm


def test_metrics_never_push_spans_out_of_the_export_queue() -> None:
    """Issue 13: a flood of metric points (20,000 model names) pushed accepted spans out of the shared queue.
    Each signal now has its own bound: the flood drops only its own oldest points."""
    metrics = Metrics()
    fo = OtlpFanOut([Endpoint(url="http://127.0.0.1:9")], metrics.meter, queue_size=100)  # never started
    fo.export_spans([resource_spans(50), resource_spans(50)])
    for _ in range(40):
        fo.export_metrics([_points(20)])
    q = fo.queues[0]
    assert q._items[Signal.TRACES] == 100 and q._items[Signal.METRICS] == 100
    assert metrics.value("rag.processor.export.dropped", signal="spans") == 0
    assert metrics.value("rag.processor.export.dropped", signal="metric_points", reason="queue_full") == 700
