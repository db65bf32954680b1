"""Pure parts of the receiver: OTLP/JSON ids, validation, capped gunzip, bearer, settings."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from rag_otel.config import ConfigError, ProcessorSettings, Tls
from rag_otel.processor import otlp_json
from rag_otel.processor.ingest import BadRequest, Signal, check_bearer, validate
from rag_otel.processor.otlp_http import _TooLarge, gunzip_capped
from rag_otel.processor.receiver import ReceiverConfig, parse_hostport


def test_json_hex_ids_in_spans_links_logs_and_exemplars() -> None:
    tid, sid = "0102030405060708090a0b0c0d0e0f10", "1112131415161718"
    span_doc = {"traceId": tid, "spanId": sid, "parentSpanId": sid, "links": [{"traceId": tid, "spanId": sid}]}
    req = otlp_json.parse(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span_doc]}]}]}).encode(),
                          ExportTraceServiceRequest())
    span = req.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id.hex() == tid and span.span_id.hex() == sid and span.parent_span_id.hex() == sid
    assert span.links[0].trace_id.hex() == tid
    logs_doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": tid, "severityNumber": 9}]}]}]}
    logs = otlp_json.parse(json.dumps(logs_doc).encode(), ExportLogsServiceRequest())
    assert logs.resource_logs[0].scope_logs[0].log_records[0].trace_id.hex() == tid
    point_doc = {"asInt": "5", "exemplars": [{"spanId": sid}]}
    metric_doc = {"name": "m", "sum": {"dataPoints": [point_doc]}}
    metrics_doc = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [metric_doc]}]}]}
    metrics = otlp_json.parse(json.dumps(metrics_doc).encode(), ExportMetricsServiceRequest())
    point = metrics.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0]
    assert point.as_int == 5 and point.exemplars[0].span_id.hex() == sid


@pytest.mark.parametrize("body", [b"[1]", b"{", b'{"resourceSpans": 3}', "\u00e9".encode("latin-1")])
def test_json_that_is_not_otlp_is_a_clear_error(body: bytes) -> None:
    with pytest.raises(otlp_json.JsonDecodeError):
        otlp_json.parse(body, ExportTraceServiceRequest())


def test_validate_keeps_good_spans_and_counts_bad_ones() -> None:
    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    for tid, sid, parent in [(b"\x01" * 16, b"\x02" * 8, b""), (bytes(16), b"\x02" * 8, b""),
                             (b"\x01" * 16, b"\x02" * 8, b"\x03"), (b"\x01" * 15, b"\x02" * 8, b"")]:
        s = spans.add()
        s.trace_id, s.span_id, s.parent_span_id = tid, sid, parent
    kept, rejected, why = validate(Signal.TRACES, req)
    assert (kept, rejected) == (1, 3) and len(req.resource_spans[0].scope_spans[0].spans) == 1
    assert "trace_id" in why


def test_validate_metrics_without_a_name() -> None:
    req = ExportMetricsServiceRequest()
    metrics = req.resource_metrics.add().scope_metrics.add().metrics
    good, bad = metrics.add(), metrics.add()
    good.name = "ok"
    good.gauge.data_points.add()
    bad.sum.data_points.add()
    bad.sum.data_points.add()
    assert validate(Signal.METRICS, req)[:2] == (1, 2)


def test_gunzip_caps_the_output_not_the_input() -> None:
    assert gunzip_capped(gzip.compress(b"x" * 1000), 1000) == b"x" * 1000
    assert gunzip_capped(gzip.compress(b"ab") + gzip.compress(b"cd"), 10) == b"abcd"  # two members
    with pytest.raises(_TooLarge):
        gunzip_capped(gzip.compress(bytes(10_000_000)), 1_000_000)
    with pytest.raises(BadRequest, match="truncated"):
        gunzip_capped(gzip.compress(b"y" * 5000)[:-20], 100_000)
    with pytest.raises(BadRequest, match="invalid gzip"):
        gunzip_capped(zlib.compress(b"not gzip framing"), 100)


def test_bearer_check() -> None:
    assert check_bearer(None, None)
    assert check_bearer("t", "Bearer t")
    assert not check_bearer("t", None)
    assert not check_bearer("t", "Bearer u")
    assert not check_bearer("t", "Basic t")


def test_settings_to_receiver_config() -> None:
    s = ProcessorSettings(otlp_grpc="0.0.0.0:14317", bearer_token_env="RX_TOKEN", max_request_bytes=2048,
                          max_concurrent_requests=3, tls=Tls(cert_file="c.pem", key_file="k.pem"))
    c = ReceiverConfig.from_settings(s, env={"RX_TOKEN": "abc"})
    assert (c.grpc_endpoint, c.bearer_token, c.max_request_bytes) == ("0.0.0.0:14317", "abc", 2048)
    assert c.max_concurrent_requests == 3
    assert (c.tls_cert_file, c.tls_key_file) == ("c.pem", "k.pem")
    with pytest.raises(ConfigError, match="RX_TOKEN"):
        ReceiverConfig.from_settings(s, env={})
    with pytest.raises(ConfigError, match="HOST:PORT"):
        ReceiverConfig.from_settings(ProcessorSettings(otlp_http="localhost"), env={})


def test_parse_hostport() -> None:
    assert parse_hostport("127.0.0.1:4317") == ("127.0.0.1", 4317)
    assert parse_hostport("[::1]:4318") == ("::1", 4318)
    assert parse_hostport(":4318") == ("0.0.0.0", 4318)


def test_refusal_logging_is_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from rag_otel.processor.ingest import RateLimitedLog

    log = RateLimitedLog(logging.getLogger("rag_otel.test"), interval=0.2)
    with caplog.at_level(logging.WARNING, "rag_otel.test"):
        for _ in range(100):
            log.warning("malformed", "refused: %s", "bad")
        log.warning("too_large", "refused: %s", "big")
        import time

        time.sleep(0.25)
        log.warning("malformed", "refused: %s", "bad again")
    assert [r.getMessage() for r in caplog.records] == [
        "refused: bad", "refused: big", "refused: bad again (99 similar suppressed)"]
