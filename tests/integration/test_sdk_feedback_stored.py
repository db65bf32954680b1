"""Feedback recorded in the app with the SDK's ``record_feedback`` lands in the processor's store and
analytics, not only downstream: the real SDK exports its rag.feedback log records over OTLP/HTTP into
a real ProcessorService (it used to count only feedback posted to the API)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag_otel import configure, generate, rag_query, record_feedback
from rag_otel.analytics import parse_period, run
from rag_otel.processor.service import ProcessorService
from tests.integration.test_web_api import config
from tests.support.otel_globals import fresh_otel_globals


@pytest.fixture
def svc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProcessorService]:
    for var in ("RAG_OTEL_CONFIG", "OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_LOGS_EXPORTER"):
        monkeypatch.delenv(var, raising=False)
    cfg = config(tmp_path)
    cfg.processor.trace_wait = 0.2
    cfg.performance_monitoring.alert_rules = []
    s = ProcessorService(cfg, env={}).start()
    try:
        with fresh_otel_globals():
            yield s
    finally:
        s.stop()


def test_record_feedback_reaches_the_store_and_the_users_satisfaction(svc: ProcessorService) -> None:
    h = configure(service_name="rag-svc", endpoint=f"http://{svc.receiver.http_address}", protocol="http/protobuf",
                  instrument=[])
    with rag_query("How do I reset my password?", user_id="u-fb") as q, generate("gpt-4o-mini",
                                                                                  provider="openai") as g:
        g.set_usage(input_tokens=100, output_tokens=20)
        g.set_answer("Use the reset link on the sign-in page.")
    trace_id = format(q.span.get_span_context().trace_id, "032x")
    assert record_feedback(q, thumbs=True, comment="helpful", user_id="u-fb")
    assert record_feedback(trace_id, score=0.25, user_id="u-fb")  # later, by the trace id the app kept
    assert not record_feedback(trace_id, score=3.0)  # refused in the app, so nothing to store
    assert h.force_flush(10_000)

    deadline = time.monotonic() + 15
    while svc.store.count("feedback") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    rows = svc.store.sql("SELECT trace_id, query_id, score, thumbs, comment, user_id FROM feedback ORDER BY ts")
    assert rows == [(trace_id, trace_id, 1.0, "up", "helpful", "u-fb"), (trace_id, trace_id, 0.25, None, None, "u-fb")]

    while svc.store.count("queries") < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    users = run("user_behavior", svc.store, parse_period("1h"))["users"]
    (me,) = [u for u in users if u["user_id"] == "u-fb"]
    assert me["feedback_count"] == 2 and me["satisfaction"] == pytest.approx(0.625)
