"""The real OpenTelemetry SDK exporters (gRPC and HTTP, gzip) deliver into our receiver intact."""

from __future__ import annotations

import socket

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetrics
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetrics
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from rag_otel.processor.receiver import OtlpReceiver, ReceiverConfig
from rag_otel.processor.sink import MemorySink
from tests.support.otlp_io import Metrics, running_receiver, self_signed_cert

RESOURCE = Resource.create({"service.name": "rag-app"})


def exporters(proto: str, receiver, **kw):
    if proto == "grpc":
        common = {"endpoint": receiver.grpc_address, "compression": grpc.Compression.Gzip, **kw}
        common.setdefault("insecure", "credentials" not in kw)
        return GrpcSpans(**common), GrpcMetrics(**common), GrpcLogs(**common)
    base = kw.pop("base", f"http://{receiver.http_address}")
    common = {"compression": HttpCompression.Gzip, **kw}
    return (HttpSpans(endpoint=f"{base}/v1/traces", **common), HttpMetrics(endpoint=f"{base}/v1/metrics", **common),
            HttpLogs(endpoint=f"{base}/v1/logs", **common))


def send_all(span_exp, metric_exp, log_exp) -> tuple[str, str]:
    """Emit one RAG-shaped trace, one counter and one log record; return the root's (trace_id, span_id) hex."""
    tp = TracerProvider(resource=RESOURCE)
    tp.add_span_processor(SimpleSpanProcessor(span_exp))
    tracer = tp.get_tracer("rag")
    with (tracer.start_as_current_span("rag.query", attributes={"rag.query.text": "what is otel?"}) as root,
          tracer.start_as_current_span("chat gpt-4o", attributes={"gen_ai.usage.input_tokens": 42})):
        pass
    ctx = root.get_span_context()

    mp = MeterProvider(resource=RESOURCE, metric_readers=[PeriodicExportingMetricReader(metric_exp, 3_600_000)])
    mp.get_meter("rag").create_counter("rag.queries").add(3, {"rag.query.status": "ok"})

    lp = LoggerProvider(resource=RESOURCE)
    lp.add_log_record_processor(SimpleLogRecordProcessor(log_exp))
    lp.get_logger("rag").emit(body="thumbs up", attributes={"rag.feedback.score": 1.0}, event_name="rag.feedback")
    for p in (tp, mp, lp):
        p.shutdown()  # the meter provider exports its one collection here
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def assert_arrived(sink: MemorySink, trace_id: str, root_id: str) -> None:
    spans = {s.name: s for s in sink.spans()}
    assert set(spans) == {"rag.query", "chat gpt-4o"}
    root, chat = spans["rag.query"], spans["chat gpt-4o"]
    assert root.trace_id.hex() == trace_id and root.span_id.hex() == root_id
    assert chat.parent_span_id.hex() == root_id
    assert {a.key: a.value.string_value for a in root.attributes} == {"rag.query.text": "what is otel?"}
    assert chat.attributes[0].value.int_value == 42
    service = sink.traces[0].resource_spans[0].resource.attributes
    assert any(a.key == "service.name" and a.value.string_value == "rag-app" for a in service)

    metric = sink.metrics[0].resource_metrics[0].scope_metrics[0].metrics[0]
    assert metric.name == "rag.queries" and metric.sum.data_points[0].as_int == 3

    record = sink.logs[0].resource_logs[0].scope_logs[0].log_records[0]
    assert record.body.string_value == "thumbs up" and record.event_name == "rag.feedback"


@pytest.mark.parametrize("proto", ["grpc", "http"])
def test_sdk_exporters_deliver_traces_metrics_logs_intact(proto: str) -> None:
    sink, metrics = MemorySink(), Metrics()
    with running_receiver(sink, metrics) as receiver:
        trace_id, root_id = send_all(*exporters(proto, receiver))
    assert_arrived(sink, trace_id, root_id)
    assert metrics.value("rag.processor.received", signal="spans") == 2
    assert metrics.value("rag.processor.received", signal="metric_points") == 1
    assert metrics.value("rag.processor.received", signal="log_records") == 1
    assert metrics.value("rag.processor.refused") == 0


@pytest.mark.parametrize("proto", ["grpc", "http"])
def test_bearer_token_is_required_and_accepted(proto: str) -> None:
    sink, metrics = MemorySink(), Metrics()
    with running_receiver(sink, metrics, bearer_token="s3cret") as receiver:
        send_all(*exporters(proto, receiver))  # no token: refused, the SDK logs and drops
        assert sink.spans() == [] and not sink.metrics and not sink.logs
        # one request per span (SimpleSpanProcessor), one for metrics, one for logs
        assert metrics.value("rag.processor.refused", reason="unauthenticated", signal="spans") == 2
        assert metrics.value("rag.processor.refused", reason="unauthenticated") == 4
        send_all(*exporters(proto, receiver, headers={"authorization": "Bearer wrong"}))
        assert sink.spans() == []
        trace_id, root_id = send_all(*exporters(proto, receiver, headers={"authorization": "Bearer s3cret"}))
    assert_arrived(sink, trace_id, root_id)
    assert metrics.value("rag.processor.refused", reason="unauthenticated") == 8


@pytest.mark.parametrize("proto", ["grpc", "http"])
def test_tls_with_a_self_signed_certificate(proto: str, tmp_path, monkeypatch) -> None:
    # requests lets these variables override the exporter's certificate_file: keep them out.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    cert, key = self_signed_cert(tmp_path)
    sink = MemorySink()
    with running_receiver(sink, tls_cert_file=str(cert), tls_key_file=str(key)) as receiver:
        if proto == "grpc":
            creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
            trace_id, root_id = send_all(*exporters(proto, receiver, credentials=creds))
        else:
            trace_id, root_id = send_all(*exporters(proto, receiver, base=f"https://{receiver.http_address}",
                                                    certificate_file=str(cert)))
    assert_arrived(sink, trace_id, root_id)


@pytest.mark.parametrize("front", ["grpc", "http"])
def test_a_taken_port_is_a_clear_error(front: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        addr = f"127.0.0.1:{taken.getsockname()[1]}"
        other = None
        config = ReceiverConfig(grpc_endpoint=addr if front == "grpc" else other,
                                http_endpoint=addr if front == "http" else other)
        receiver = OtlpReceiver(config, MemorySink(), Metrics().meter)
        with pytest.raises(OSError, match=f"cannot bind OTLP/.* to {addr}"):
            receiver.start()
