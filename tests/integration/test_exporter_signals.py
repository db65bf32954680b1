"""Per-endpoint signals against real OTLP receivers: an endpoint that takes only traces (Jaeger)
gets no metrics or logs, while an endpoint with the default takes all three."""

from __future__ import annotations

from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import ResourceMetrics

from rag_otel.config import Endpoint
from rag_otel.processor.exporter import OtlpFanOut, RetryPolicy
from rag_otel.processor.sink import MemorySink
from tests.support.otlp_io import Metrics, resource_spans, running_receiver


def _metric() -> ResourceMetrics:
    rm = ResourceMetrics()
    m = rm.scope_metrics.add().metrics.add()
    m.name = "rag.test.gauge"
    m.gauge.data_points.add().as_double = 1.0
    return rm


def _log() -> ResourceLogs:
    rl = ResourceLogs()
    rl.scope_logs.add().log_records.add().body.string_value = "hello"
    return rl


def test_each_signal_goes_only_to_the_endpoints_that_take_it() -> None:
    jaeger, everything, metrics = MemorySink(), MemorySink(), Metrics()
    with running_receiver(jaeger) as rj, running_receiver(everything) as re:
        fo = OtlpFanOut([Endpoint.from_flag(f"grpc://{rj.grpc_address}#traces"),
                         Endpoint(url=f"http://{re.http_address}", timeout=5)],
                        metrics.meter, retry=RetryPolicy(initial_backoff=0.05, max_backoff=0.2, max_elapsed=5))
        fo.start()
        try:
            fo.export_spans([resource_spans(4)])
            fo.export_metrics([_metric()])
            fo.export_logs([_log()])
            assert fo.flush(10)
        finally:
            fo.shutdown(1)
    assert len(jaeger.spans()) == 4
    assert not jaeger.metrics and not jaeger.logs  # Jaeger would answer Unimplemented
    assert len(everything.spans()) == 4 and len(everything.metrics) == 1 and len(everything.logs) == 1
    assert metrics.value("rag.processor.export.dropped") == 0
