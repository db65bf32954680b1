"""configure() exporting over real OTLP (gRPC and HTTP) into tests/support/otlp_sink.py, and an
app that keeps serving, unslowed, when the collector endpoint is down."""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Iterator

import pytest

from rag_otel import configure, generate, rag_query, record_feedback, retrieve, semconv
from tests.support.otel_globals import fresh_otel_globals
from tests.support.otlp_sink import OtlpSink


@pytest.fixture(autouse=True)
def fresh_globals(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("RAG_OTEL_CONFIG", "OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER",
                "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2")  # bounds a final export to a stopped sink
    with fresh_otel_globals():
        yield


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    with OtlpSink() as s:
        yield s


def one_query() -> None:
    @retrieve("kb", top_k=2)
    def search() -> list[dict]:
        return [{"id": "a", "score": 0.9}, {"id": "b", "score": 0.4}]

    with rag_query(user_id="u1", features=["citations"]) as q:
        search()
        with generate("gpt-4o-mini", provider="openai") as g:
            g.set_usage(input_tokens=120, output_tokens=30)
    record_feedback(q, thumbs=True)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_traces_metrics_and_feedback_arrive_over_otlp(sink: OtlpSink, protocol: str) -> None:
    endpoint = sink.grpc_endpoint if protocol == "grpc" else sink.http_endpoint
    h = configure(service_name="rag-svc", endpoint=endpoint, protocol=protocol, system_metrics=True, instrument=[])
    one_query()
    assert h.force_flush(10_000)

    (root,) = sink.wait_for_spans("rag.query")
    spans = {s.name: s for s in sink.wait_for_spans(count=3)}
    assert spans["retrieval kb"].parent_span_id == root.span_id
    assert spans["chat gpt-4o-mini"].parent_span_id == root.span_id
    assert spans["chat gpt-4o-mini"].kind == 3  # CLIENT
    chat_cost = spans["chat gpt-4o-mini"].attributes[semconv.GEN_AI_USAGE_COST]
    assert chat_cost > 0 and root.attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(chat_cost)
    assert root.attributes[semconv.RAG_FEATURES] == ["citations"]
    assert root.resource["service.name"] == "rag-svc"
    assert root.resource["telemetry.distro.name"] == "rag-otel"
    assert sink.transports == {"grpc" if protocol == "grpc" else "http"}

    names = sink.metric_names()
    for expected in (semconv.METRIC_RAG_QUERIES, semconv.METRIC_RAG_QUERY_DURATION, semconv.METRIC_RAG_COST,
                     semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION, semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE,
                     semconv.METRIC_RAG_RETRIEVED_DOCUMENTS, semconv.METRIC_RAG_FEEDBACK_SCORE,
                     semconv.METRIC_HEALTH_SCORE, semconv.METRIC_PROCESS_RSS, "system.cpu.utilization"):
        assert expected in names, expected
    (feedback,) = sink.wait_for_logs(lambda r: r.event_name == semconv.RAG_FEEDBACK_EVENT)
    assert feedback.trace_id == root.trace_id and feedback.span_id == root.span_id
    assert feedback.attributes[semconv.RAG_FEEDBACK_THUMBS] == "up"
    h.shutdown()  # while the sink still listens (else the final export retries against a closed port)


def test_metrics_are_pushed_at_the_configured_interval(sink: OtlpSink, tmp_path) -> None:
    cfg = tmp_path / "rag-otel.yaml"
    cfg.write_text("model_observation:\n  metrics_collection: {interval: 0.2}\n")
    h = configure(config=cfg, endpoint=sink.grpc_endpoint, traces_exporter="none", logs_exporter="none",
                  system_metrics=False, instrument=[])
    one_query()
    # No flush: the reader's own schedule (the SDK default would be 60 s) pushes the points.
    sink.wait_for_metric(semconv.METRIC_RAG_QUERIES, timeout=3)
    h.shutdown()


def _dead_endpoint() -> str:
    with socket.socket() as s:  # bind, learn the port, close: nothing listens there afterwards
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_endpoint_down_the_app_keeps_serving_unslowed(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")  # export attempts run while we measure
    h = configure(endpoint=_dead_endpoint(), protocol=protocol, system_metrics=False, instrument=[])

    @rag_query
    def answer(i: int) -> str:
        with generate("gpt-4o-mini") as g:
            g.set_usage(input_tokens=10, output_tokens=5)
        return f"answer {i}"

    timings = []
    for i in range(300):
        t0 = time.perf_counter()
        assert answer(i) == f"answer {i}"
        timings.append(time.perf_counter() - t0)
    # Exports fail in the background.  A call that waited for one would take at least the 1 s exporter
    # timeout; here calls take about a hundred microseconds (the bounds are generous: CI machines are
    # shared and noisy, single calls can be descheduled for tens of milliseconds).
    assert statistics.median(timings) < 0.002
    assert max(timings) < 0.5
    t0 = time.perf_counter()
    h.shutdown()  # bounded by the exporter timeout, not hung
    assert time.perf_counter() - t0 < 15
