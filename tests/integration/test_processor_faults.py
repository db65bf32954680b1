"""The processor holds under poison values, failing stages, cardinality floods and memory pressure (issue 13).

Real parts: an in-process ``ProcessorService`` (its OTLP receiver on real sockets, its exporter sending
over HTTP), fed by the OpenTelemetry SDK's own exporters or raw OTLP/HTTP posts, exporting to the test
OTLP receiver in tests/support/otlp_sink.py; the store is the real DuckDB file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

from rag_otel.config import Endpoint
from rag_otel.processor.service import ProcessorService
from tests.integration.test_processor_e2e import base_config as config
from tests.support.otlp_io import resource_spans
from tests.support.otlp_sink import OtlpSink

CONTENT_KEYS = {"rag.query.text", "rag.answer.text", "gen_ai.input.messages", "gen_ai.output.messages",
                "gen_ai.retrieval.query.text"}
SECRET = "the customer's account number is 4711-0815"


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    with OtlpSink() as s:
        yield s


def send(endpoint: str, traces: list[dict[str, Any]]) -> None:
    """One RAG trace per item (root + retrieval + chat, content scoring_only), via the SDK's OTLP/HTTP exporter.
    Item keys: ``docs`` (the documents attribute, a string), ``model``, ``input_tokens``."""
    provider = TracerProvider(resource=Resource.create({"service.name": "rag-app"}))
    provider.add_span_processor(BatchSpanProcessor(HttpSpanExporter(endpoint=endpoint), schedule_delay_millis=50))
    tracer = provider.get_tracer("test-app")
    for t in traces:
        model = t.get("model", "gpt-4o-mini")
        with tracer.start_as_current_span("rag.query", attributes={
                "rag.query.text": "What is my account number?", "rag.answer.text": SECRET,
                "rag.content.capture": "scoring_only"}):
            with tracer.start_as_current_span("retrieval faiss", kind=SpanKind.CLIENT, attributes={
                    "gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "faiss",
                    "gen_ai.retrieval.query.text": "account number",
                    "gen_ai.retrieval.documents": t.get("docs", json.dumps([{"id": "d1", "content": SECRET}]))}):
                pass
            with tracer.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT, attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": model, "gen_ai.response.model": model,
                    "gen_ai.usage.input_tokens": t.get("input_tokens", 420), "gen_ai.usage.output_tokens": 35,
                    "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text",
                                                                                       "content": SECRET}]}])}):
                pass
    assert provider.force_flush(30_000)
    provider.shutdown()


def metric_value(svc: ProcessorService, line_start: str) -> float:
    text = httpx.get(f"http://{svc.http_address}/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start))


def test_a_trace_that_fails_normalization_is_still_stripped_and_counted(sink: OtlpSink, tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000  # valid JSON the normalizer cannot read (RecursionError)
    svc = ProcessorService(config(sink, tmp_path), metrics_interval=0.3).start()
    try:
        send(f"http://{svc.receiver.http_address}/v1/traces", [{"docs": deep}, {}])
        spans = sink.wait_for_spans(count=6, timeout=20)
        health = httpx.get(f"http://{svc.http_address}/health").json()
        failed = metric_value(svc, "rag_processor_traces_failed_total")
    finally:
        svc.stop()
    assert len(spans) == 6
    for s in spans:
        assert not CONTENT_KEYS & set(s.attributes), f"content left on {s.name}"
    wire = b"".join(r.SerializeToString() for reqs in sink.requests.values() for r in reqs)
    assert b"4711-0815" not in wire and b"[[[[" not in wire
    assert health["pipeline"]["failed_traces"] == 1 and health["pipeline"]["records"] == 1
    assert failed == 1


def test_absurd_token_counts_are_rejected_and_the_rest_of_the_batch_is_stored(sink: OtlpSink, tmp_path: Path) -> None:
    svc = ProcessorService(config(sink, tmp_path), metrics_interval=0.3).start()
    try:
        send(f"http://{svc.receiver.http_address}/v1/traces",
             [{}, {}, {"input_tokens": 2**63 - 1}, {}, {"input_tokens": -5}])
        sink.wait_for_spans("rag.query", count=5, timeout=20)
        assert svc.store_writer.flush(10)
        stored = svc.store.sql("SELECT count(*), sum(input_tokens), max(input_tokens) FROM queries")[0]
        health = httpx.get(f"http://{svc.http_address}/health").json()
        tokens = metric_value(svc, 'rag_processor_tokens_total{gen_ai_token_type="input"')
    finally:
        svc.stop()
    assert stored == (5, 3 * 420, 420)  # every record kept; the absurd counts set aside, not summed
    assert health["pipeline"]["rejected_values"] >= 2 and health["store"]["failed_batches"] == 0
    assert tokens == 3 * 420


def test_model_names_beyond_the_cardinality_limit_fold_into_the_overflow_series(
        sink: OtlpSink, tmp_path: Path) -> None:
    svc = ProcessorService(config(sink, tmp_path, metric_cardinality_limit=20), metrics_interval=0.3).start()
    try:
        send(f"http://{svc.receiver.http_address}/v1/traces", [{"model": f"m-{i}"} for i in range(100)])
        sink.wait_for_spans("rag.query", count=100, timeout=30)
        svc.pipeline.wait_idle(10)
        text = httpx.get(f"http://{svc.http_address}/metrics").text
        overflowed = metric_value(svc, 'rag_processor_metric_overflow_total{metric="rag.processor.queries",')
    finally:
        svc.stop()
    series = [line for line in text.splitlines() if line.startswith("rag_processor_queries_total{")]
    assert len(series) == 20  # 19 models + the overflow series
    assert sum(float(line.rsplit(" ", 1)[1]) for line in series) == 100  # nothing lost from the totals
    assert sum('otel_metric_overflow="true"' in line for line in series) == 1
    assert overflowed == 100 - 19


def big_request(n: int, size: int, tag: str) -> bytes:
    rs = resource_spans(n, tag=tag)
    for span in rs.scope_spans[0].spans:
        kv = span.attributes.add()
        kv.key, kv.value.string_value = "payload", "x" * size
    return ExportTraceServiceRequest(resource_spans=[rs]).SerializeToString()


def test_the_memory_limit_answers_503_before_anything_accepted_is_dropped(sink: OtlpSink, tmp_path: Path) -> None:
    """16 KiB spans, downstream down: intake must push back (503 + Retry-After) while everything accepted is still
    held; when the downstream is back, every accepted span is delivered and none was dropped."""
    sink.reject = True
    svc = ProcessorService(config(sink, tmp_path, memory_limit_mib=16, export_queue_size=2000),
                           metrics_interval=0.3).start()
    accepted = 0
    refused = None
    try:
        url = f"http://{svc.receiver.http_address}/v1/traces"
        with httpx.Client() as client:
            for i in range(80):  # 80 x 50 spans x 16 KiB = 64 MB offered, 4x the limit
                r = client.post(url, content=big_request(50, 16 << 10, f"{i}-"),
                                headers={"content-type": "application/x-protobuf"})
                if r.status_code == 503:
                    refused = r
                    break
                assert r.status_code == 200
                accepted += 50
        assert refused is not None, "no back-pressure before 64 MB was accepted"
        assert int(refused.headers["retry-after"]) >= 1
        assert accepted * (16 << 10) <= 16 << 20  # refused within the limit
        dropped_while_down = metric_value(svc, "rag_processor_export_dropped_total")
        sink.reject = False
        delivered = sink.wait_for_spans(count=accepted, timeout=60)
    finally:
        svc.stop()
    assert dropped_while_down == 0
    assert len(delivered) == accepted


def test_health_is_public_and_shows_no_credentials(sink: OtlpSink, tmp_path: Path) -> None:
    secret_url = "https://svc:hunter2-pass@apm.example:4318/otlp?api_key=k3y-s3cret&region=eu"
    cfg = config(sink, tmp_path)
    cfg.processor.exports.append(Endpoint(url=secret_url, headers={"authorization": "Bearer tok-s3cret"}))
    svc = ProcessorService(cfg, metrics_interval=0.3).start()
    try:
        raw = httpx.get(f"http://{svc.http_address}/health").text
    finally:
        svc.stop()
    health = json.loads(raw)
    assert health["exports"] == [sink.http_endpoint, "https://***@apm.example:4318/otlp?api_key=***&region=***"]
    for secret in ("hunter2", "k3y-s3cret", "tok-s3cret", "svc:"):
        assert secret not in raw
