"""``GET /api/v1/queries/{trace_id}``: one query as the query view shows it, from a real processor fed by
the real OTel SDK over OTLP/HTTP (span waterfall, model calls with tokens and cost, sources, quality
explanations, feedback, the alert it tripped), and what the store keeps under each content setting."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from rag_otel.config import AlertRule, ModelObservation, Notifier
from rag_otel.processor.service import ProcessorService
from rag_otel.semconv import QUALITY_AXES

JAEGER = "http://jaeger.example:16686"
QUESTION = "How do I rotate the API key of a service account?"
ANSWER = "Open Settings, choose the service account, then Rotate key; the old key stops working after 24 hours."
DOCS = [{"id": "kb-17", "score": 0.91,
         "content": "To rotate a service account key open Settings and choose Rotate key."},
        {"id": "kb-03", "score": 0.42, "content": "Billing is monthly."}]


def send(svc: ProcessorService, capture: str, *, fail: bool = False) -> str:
    """One RAG query shaped like the SDK's (root, retrieval, embeddings, chat), returned as its trace id."""
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=f"http://{svc.receiver.http_address}/v1/traces"), schedule_delay_millis=50))
    tracer = provider.get_tracer("query-view-test")
    with tracer.start_as_current_span("rag.query", attributes={
            "rag.query.text": QUESTION, "rag.answer.text": ANSWER, "rag.content.capture": capture,
            "user.id": "alice", "session.id": "s-1"}) as root:
        with tracer.start_as_current_span("embeddings text-embedding-3-small", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "embeddings", "gen_ai.request.model": "text-embedding-3-small",
                "gen_ai.usage.input_tokens": 12}):
            time.sleep(0.01)
        with tracer.start_as_current_span("retrieval kb", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "retrieval", "gen_ai.retrieval.documents": json.dumps(DOCS)}):
            time.sleep(0.02)
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 200}) as chat:
            time.sleep(0.03)
            if fail:
                chat.set_status(Status(StatusCode.ERROR, "rate limited"))
        if fail:
            root.set_status(Status(StatusCode.ERROR, "rate limited"))
        trace_id = format(root.get_span_context().trace_id, "032x")
    assert provider.force_flush(10_000)
    provider.shutdown()
    return trace_id


def start(tmp_path: Path, capture: str) -> ProcessorService:
    cfg = ModelObservation()
    p = cfg.processor
    p.otlp_grpc = p.otlp_http = p.http = "127.0.0.1:0"
    p.data_dir = str(tmp_path / "data")
    p.trace_wait = 0.1
    p.shutdown_grace = 3.0
    cfg.content.capture = capture
    cfg.dashboards.jaeger_ui_url = JAEGER
    cfg.alerting.notifiers = [Notifier(type="log")]
    cfg.performance_monitoring.alert_rules = [
        AlertRule(name="costly_queries", metric="cost_per_query", operator="gt", threshold=0.0, window="5m")]
    return ProcessorService(cfg).start()


def detail(api: httpx.Client, trace_id: str) -> dict:
    deadline = time.monotonic() + 20
    while True:  # records reach the store after the trace wait and the writer's batch
        r = api.get(f"/api/v1/queries/{trace_id}")
        if r.status_code == 200 or time.monotonic() > deadline:
            assert r.status_code == 200, r.text
            return r.json()
        time.sleep(0.1)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ProcessorService, httpx.Client]]:
    svc = start(tmp_path_factory.mktemp("qv-full"), "full")
    with httpx.Client(base_url=f"http://{svc.http_address}", timeout=20) as api:
        yield svc, api
    svc.stop()


def test_a_query_opens_with_its_waterfall_calls_sources_and_explanations(full) -> None:
    svc, api = full
    q = detail(api, send(svc, "full"))
    assert q["query_text"] == QUESTION and q["user_id"] == "alice" and q["trace_url"].startswith(f"{JAEGER}/trace/")
    spans = q["spans"]
    assert [s["role"] for s in spans] == ["other", "embedding", "retrieval", "llm"]  # start order, root first
    root, emb, ret, chat = spans
    assert root["parent"] is None and all(s["parent"] == root["id"] for s in (emb, ret, chat))
    assert root["start_ms"] == 0 and abs(root["duration_ms"] - 1000 * q["duration_s"]) < 1
    assert emb["start_ms"] <= ret["start_ms"] <= chat["start_ms"]  # the waterfall's order in time
    assert chat["duration_ms"] >= 30 and ret["duration_ms"] >= 20
    # per call: tokens and the price table's cost (gpt-4o-mini: $0.15 in / $0.60 out per 1M tokens)
    assert chat["model"] == "gpt-4o-mini" and (chat["input_tokens"], chat["output_tokens"]) == (1000, 200)
    assert chat["cost_usd"] == pytest.approx(1000 * 0.15e-6 + 200 * 0.60e-6)
    assert emb["model"] == "text-embedding-3-small" and emb["input_tokens"] == 12
    assert q["cost_usd"] == pytest.approx(sum(s["cost_usd"] or 0 for s in spans if s.get("counted")))
    assert q["sources"] == [{"id": "kb-17", "score": 0.91}, {"id": "kb-03", "score": 0.42}]  # never content
    axes = q["quality"]["axes"]
    assert q["quality"]["status"] == "scored" and "relevance" in axes and set(axes) <= set(QUALITY_AXES)
    for a in axes.values():
        assert a["explanation"] and 0 <= a["score"] <= 1 and a["label"] in ("good", "fair", "poor")
    assert any(a.get("evidence") for a in axes.values())  # full capture: the quoted evidence is kept


def test_feedback_and_the_alert_it_tripped_show_on_the_query(full) -> None:
    svc, api = full
    first = send(svc, "full")
    detail(api, first)
    svc.pipeline.evaluate_alerts()  # costly_queries fires on the first priced query
    assert any(s.rule == "costly_queries" and s.state == "firing" for s in svc.alerts.statuses())
    second = send(svc, "full")
    r = api.post("/api/v1/feedback", json={"trace_id": second, "thumbs": "down", "comment": "outdated"})
    assert r.status_code == 201
    q = detail(api, second)
    assert q["alerts"] == ["costly_queries"]
    assert [e["rule"] for e in q["alert_events"]] and q["alert_events"][0]["state"] == "firing"
    assert [(f["thumbs"], f["comment"]) for f in q["feedback"]] == [("down", "outdated")]
    snap = api.get("/api/v1/snapshot").json()  # the live Alerts panel links that query
    assert next(a for a in snap["alerts"] if a["rule"] == "costly_queries")["last_trace_id"] == second


def test_a_failed_query_shows_the_failing_call(full) -> None:
    svc, api = full
    q = detail(api, send(svc, "full", fail=True))
    assert q["status"] == "error" and q["error_type"] == "rate limited"
    assert [s["status"] for s in q["spans"]] == ["error", "ok", "ok", "error"]


def test_unknown_and_malformed_trace_ids_are_clear_errors(full) -> None:
    _, api = full
    r = api.get("/api/v1/queries/" + "ab" * 16)
    assert r.status_code == 404 and "no query with trace id" in r.json()["message"]
    r = api.get("/api/v1/queries/not-a-trace")
    assert r.status_code == 400 and "32 hex digits" in r.json()["message"]
    assert api.get("/api/v1/queries/search", params={"text": "rotate"}).status_code == 200  # not taken for an id


def test_scoring_only_keeps_explanations_but_no_content_or_evidence(tmp_path: Path) -> None:
    svc = start(tmp_path, "scoring_only")
    try:
        with httpx.Client(base_url=f"http://{svc.http_address}", timeout=20) as api:
            tid = send(svc, "scoring_only")
            q = detail(api, tid)
        assert q["query_text"] is None
        axes = q["quality"]["axes"]
        assert axes and all(a["explanation"] for a in axes.values())
        assert not any("evidence" in a for a in axes.values())
        stored = svc.store.sql("SELECT spans || sources || quality FROM query_details WHERE trace_id = ?", [tid])
        blob = stored[0][0]
        for text in (QUESTION, ANSWER, DOCS[0]["content"], "rotate"):  # nothing captured for scoring is kept
            assert text.lower() not in blob.lower()
    finally:
        svc.stop()


def test_query_details_go_with_their_rows_at_retention(full) -> None:
    svc, _ = full
    from datetime import timedelta

    from rag_otel.store.store import utc

    assert svc.store.count("query_details") == svc.store.count("queries") > 0
    svc.store.apply_retention(utc(time.time()) + timedelta(days=svc.config.metrics_collection.retention_days + 1))
    assert svc.store.count("query_details") == svc.store.count("queries") == 0
