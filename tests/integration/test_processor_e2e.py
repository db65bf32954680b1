"""`rag-otel serve` end to end: real OTel SDK exporters in, a real OTLP receiver downstream, real Prometheus.

In-process service object for most checks (fast, lets the test drive one alert evaluation), and
once as a real subprocess stopped with SIGTERM.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from rag_otel.analytics import parse_period, run
from rag_otel.config import AlertRule, Endpoint, ModelObservation, Notifier
from rag_otel.processor.service import ProcessorService
from tests.support.otlp_sink import OtlpSink, SinkSpan

QUESTION = "What is the capital of France?"
ANSWER = "Paris is the capital of France."
DOCS = [{"id": "doc-1", "score": 0.92, "content": "Paris is the capital and largest city of France."},
        {"id": "doc-2", "score": 0.41, "content": "France is a country in Western Europe."}]
CONTENT_KEYS = {"rag.query.text", "rag.answer.text", "gen_ai.input.messages", "gen_ai.output.messages",
                "gen_ai.retrieval.query.text"}


def messages(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


def send_rag_traces(exporter: Any, n: int = 1, user: str = "alice", fail: bool = False, question: str = QUESTION,
                    answer: str = ANSWER, docs: list[dict[str, Any]] = DOCS) -> None:
    """A RAG query as our SDK shapes it (root + retrieval + embeddings + chat), content scoring_only."""
    provider = TracerProvider(resource=Resource.create({"service.name": "rag-app"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    tracer = provider.get_tracer("test-app")
    for _ in range(n):
        with tracer.start_as_current_span("rag.query", attributes={
            "rag.query.text": question, "rag.answer.text": answer, "rag.content.capture": "scoring_only",
            "user.id": user, "session.id": "s-1",
        }) as root:
            with tracer.start_as_current_span("retrieval faiss", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "faiss", "gen_ai.request.top_k": 2,
                "gen_ai.retrieval.query.text": question, "gen_ai.retrieval.documents": json.dumps(docs),
            }), tracer.start_as_current_span("embeddings text-embedding-3-small", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "embeddings", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "text-embedding-3-small", "gen_ai.usage.input_tokens": 12,
            }):
                pass
            with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 420, "gen_ai.usage.output_tokens": 35,
                "gen_ai.input.messages": messages("user", question),
                "gen_ai.output.messages": messages("assistant", answer),
            }):
                pass
            if fail:
                root.set_status(Status(StatusCode.ERROR, "upstream timeout"))
    assert provider.force_flush(10_000)
    provider.shutdown()


def base_config(sink: OtlpSink, tmp_path: Path, **processor: Any) -> ModelObservation:
    """A processor on free loopback ports exporting to ``sink``, content captured for scoring only."""
    cfg = ModelObservation()
    p = cfg.processor
    p.otlp_grpc = p.otlp_http = p.http = "127.0.0.1:0"
    p.exports = [Endpoint(url=sink.http_endpoint)]
    p.data_dir = str(tmp_path / "data")
    p.trace_wait = 0.2
    p.shutdown_grace = 5.0
    for k, v in processor.items():
        setattr(p, k, v)
    cfg.content.capture = "scoring_only"
    cfg.alerting.notifiers = [Notifier(type="log")]
    return cfg


def config(sink: OtlpSink, tmp_path: Path, **processor: Any) -> ModelObservation:
    cfg = base_config(sink, tmp_path, **processor)
    cfg.performance_monitoring.alert_rules = [
        AlertRule(name="costly_queries", metric="cost_per_query", operator="gt", threshold=0.0, window="5m"),
    ]
    return cfg


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    with OtlpSink() as s:
        yield s


@pytest.fixture
def service(sink: OtlpSink, tmp_path: Path) -> Iterator[ProcessorService]:
    svc = ProcessorService(config(sink, tmp_path), metrics_interval=0.3).start()
    try:
        yield svc
    finally:
        svc.stop()


def roots(sink: OtlpSink, count: int, timeout: float = 10.0) -> list[SinkSpan]:
    return sink.wait_for_spans("rag.query", count=count, timeout=timeout)


def test_sdk_traces_over_grpc_and_http_come_out_enriched_and_stripped(
    service: ProcessorService, sink: OtlpSink,
) -> None:
    send_rag_traces(GrpcSpanExporter(endpoint=service.receiver.grpc_address, insecure=True))
    send_rag_traces(HttpSpanExporter(endpoint=f"http://{service.receiver.http_address}/v1/traces"))
    spans = sink.wait_for_spans(count=8)
    assert len(spans) == 8
    for root in [s for s in spans if s.name == "rag.query"]:
        a = root.attributes
        assert a["rag.quality.status"] == "scored"
        for axis in ("accuracy", "completeness", "relevance", "consistency", "overall"):
            assert 0.0 <= a[f"rag.quality.{axis}"] <= 1.0
        assert a["rag.quality.overall"] > 0.6  # the answer is the source, nearly verbatim
        assert a["rag.quality.grade"] in ("good", "fair") and a["rag.quality.evaluator"].startswith("lexical")
        assert a["rag.latency.category"] == "excellent"
        # no cost on any span: 420 in + 35 out at gpt-4o-mini prices, plus 12 embedding tokens
        assert a["gen_ai.usage.cost"] == pytest.approx(420 * 0.15e-6 + 35 * 0.6e-6 + 12 * 0.02e-6)
        evals = [attrs for name, attrs in root.events if name == "gen_ai.evaluation.result"]
        assert sorted(e["gen_ai.evaluation.name"] for e in evals) == [
            "accuracy", "completeness", "consistency", "relevance"]
        assert all("gen_ai.evaluation.score.value" in e and e["gen_ai.evaluation.explanation"] for e in evals)
        assert root.resource["service.name"] == "rag-app"
    for s in spans:
        assert not CONTENT_KEYS & set(s.attributes), f"content left on {s.name}"
    retrieval = next(s for s in spans if s.name == "retrieval faiss")
    assert json.loads(retrieval.attributes["gen_ai.retrieval.documents"]) == [
        {"id": "doc-1", "score": 0.92}, {"id": "doc-2", "score": 0.41}]
    chat = next(s for s in spans if s.name == "chat gpt-4o-mini")
    assert chat.attributes == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 420, "gen_ai.usage.output_tokens": 35,
    }
    assert chat.events == [] and chat.kind == 3
    health = httpx.get(f"http://{service.http_address}/health").json()
    assert health["status"] == "ok" and health["pipeline"]["records"] == 2 and health["scorer"] is True


@pytest.mark.parametrize("keep", [False, True])
def test_evaluation_events_never_carry_content_that_was_stripped(sink: OtlpSink, tmp_path: Path, keep: bool) -> None:
    """The scorer's evidence quotes the answer (an unsupported name, a number): with content captured only for
    scoring it must not reach the downstream in the evaluation events either; kept content keeps the evidence."""
    leaky = "Paris is the capital of France. Ask Zebulon Quaxley at extension 4711 about tours."
    svc = ProcessorService(config(sink, tmp_path, keep_content=keep), metrics_interval=0.3).start()
    try:
        send_rag_traces(GrpcSpanExporter(endpoint=svc.receiver.grpc_address, insecure=True), answer=leaky)
        root = roots(sink, 1)[0]
    finally:
        svc.stop()
    why = {e["gen_ai.evaluation.name"]: e.get("gen_ai.evaluation.explanation", "")
           for name, e in root.events if name == "gen_ai.evaluation.result"}
    assert "contradiction" in why["consistency"]  # the finding itself is still told
    wire = b"".join(r.SerializeToString() for reqs in sink.requests.values() for r in reqs)
    if keep:
        assert "quaxley" in why["consistency"] and "4711" in why["consistency"]
        assert b"Zebulon Quaxley" in wire  # the content itself was kept too
    else:
        for secret in (b"Zebulon", b"zebulon", b"Quaxley", b"quaxley", b"4711"):
            assert secret not in wire, secret


@pytest.mark.parametrize("mode", ["log", "both"])
def test_evaluation_results_as_log_based_events(sink: OtlpSink, tmp_path: Path, mode: str) -> None:
    """processor.evaluation_events: log | both: the downstream gets gen_ai.evaluation.result log records tied to
    the root span (its trace and span id, its resource), with events on the span only for "both"."""
    svc = ProcessorService(config(sink, tmp_path, evaluation_events=mode), metrics_interval=0.3).start()
    try:
        send_rag_traces(HttpSpanExporter(endpoint=f"http://{svc.receiver.http_address}/v1/traces"))
        root = roots(sink, 1)[0]
        logs = sink.wait_for_logs(lambda r: r.event_name == "gen_ai.evaluation.result", count=4)
    finally:
        svc.stop()
    assert sorted(r.attributes["gen_ai.evaluation.name"] for r in logs) == [
        "accuracy", "completeness", "consistency", "relevance"]
    for r in logs:
        assert (r.trace_id, r.span_id) == (root.trace_id, root.span_id)
        assert r.resource["service.name"] == "rag-app" and r.scope == "rag_otel.processor"
        assert r.attributes["gen_ai.evaluation.score.value"] == root.attributes[
            "rag.quality." + r.attributes["gen_ai.evaluation.name"]]
    span_events = [e for name, e in root.events if name == "gen_ai.evaluation.result"]
    assert len(span_events) == (4 if mode == "both" else 0)
    assert root.attributes["rag.quality.status"] == "scored"  # the span attributes stay in every mode


def test_a_chinese_query_is_marked_unsupported_language_not_given_scores(
    service: ProcessorService, sink: OtlpSink,
) -> None:
    """The lexical rules are English: a Chinese query gets a status saying so, downstream and in the store,
    and no invented score reaches the span, the derived metrics or the analytics; an English one beside it
    is scored as usual."""
    exporter = GrpcSpanExporter(endpoint=service.receiver.grpc_address, insecure=True)
    send_rag_traces(exporter, user="li", question="如何重置密码？", answer="您可以在设置页面点击“忘记密码”来重置密码。",
                    docs=[{"id": "kb-7", "score": 0.9, "content": "要重置密码，请打开设置页面并点击“忘记密码”。"}])
    send_rag_traces(GrpcSpanExporter(endpoint=service.receiver.grpc_address, insecure=True), user="alice")
    spans = sink.wait_for_spans(count=8)
    by_user = {s.attributes["user.id"]: s for s in spans if s.name == "rag.query"}
    zh = by_user["li"]
    assert {k: v for k, v in zh.attributes.items() if k.startswith("rag.quality.")} == {
        "rag.quality.status": "unsupported_language"}
    assert [name for name, _ in zh.events if name == "gen_ai.evaluation.result"] == []
    assert by_user["alice"].attributes["rag.quality.status"] == "scored"
    for s in spans:
        assert not CONTENT_KEYS & set(s.attributes), f"content left on {s.name}"  # stripped all the same

    assert service.pipeline.wait_idle(10) and service.store_writer.flush(10)
    rows = {r["user_id"]: r for r in service.store.recent_queries(10)}
    assert rows["li"]["q_status"] == "unsupported_language" and rows["li"]["q_overall"] is None
    assert rows["alice"]["q_status"] == "scored"
    quality = run("quality", service.store, parse_period("1h"))
    assert quality["statuses"] == {"unsupported_language": 1, "scored": 1} and quality["scored"] == 1
    text = httpx.get(f"http://{service.http_address}/metrics").text
    counts = re.findall(r'^rag_processor_quality_score_count\{[^}]*axis="overall"[^}]*\} (\S+)$', text, re.M)
    assert [float(c) for c in counts] == [1.0]  # the English query only


def test_alert_marker_app_metrics_and_derived_metrics(service: ProcessorService, sink: OtlpSink) -> None:
    grpc_addr = service.receiver.grpc_address
    send_rag_traces(GrpcSpanExporter(endpoint=grpc_addr, insecure=True), user="alice")
    roots(sink, 1)
    events = service.pipeline.evaluate_alerts()
    assert [(e.rule, e.state) for e in events] == [("costly_queries", "firing")]
    send_rag_traces(GrpcSpanExporter(endpoint=grpc_addr, insecure=True), user="bob", fail=True)
    second = next(s for s in roots(sink, 2) if s.attributes["user.id"] == "bob")
    assert second.attributes["rag.alert.fired"] is True
    assert second.attributes["rag.alert.names"] == ["costly_queries"]

    # app metrics pass through unchanged
    mp = MeterProvider(resource=Resource.create({"service.name": "rag-app"}), metric_readers=[
        PeriodicExportingMetricReader(GrpcMetricExporter(endpoint=grpc_addr, insecure=True),
                                      export_interval_millis=60_000)])
    mp.get_meter("app").create_counter("app.requests").add(3, {"route": "/ask"})
    mp.shutdown()
    [app_metric] = sink.wait_for_metric("app.requests")
    assert app_metric.resource["service.name"] == "rag-app" and app_metric.scope == "app"
    assert [p.as_int for p in app_metric.points] == [3]
    assert app_metric.point_attributes() == [{"route": "/ask"}]

    # derived metrics arrive downstream over OTLP ...
    def derived(name: str) -> Any:
        deadline = time.monotonic() + 10
        while True:
            got = [m for m in sink.wait_for_metric(name) if m.resource["service.name"] == "rag-otel-processor"]
            pts = [p for m in got for p in m.points]
            if sum(getattr(p, "as_int", 0) or getattr(p, "count", 0) for p in pts) >= 2 or time.monotonic() > deadline:
                return got
            time.sleep(0.2)

    queries = derived("rag.processor.queries")[-1]
    by_status = {a["status"]: p.as_int for a, p in zip(queries.point_attributes(), queries.points, strict=True)}
    assert by_status == {"ok": 1, "error": 1}
    assert {a["model"] for a in queries.point_attributes()} == {"gpt-4o-mini"}
    quality = derived("rag.processor.quality.score")[-1]
    assert {a["axis"] for a in quality.point_attributes()} == {
        "accuracy", "completeness", "relevance", "consistency", "overall"}
    for name in ("rag.processor.tokens", "rag.processor.cost", "rag.processor.query.latency",
                 "rag.processor.active_users", "rag.processor.received", "rag.processor.traces.in_flight"):
        assert sink.wait_for_metric(name)

    # ... and at /metrics in the Prometheus format, under the names the rule export relies on
    text = httpx.get(f"http://{service.http_address}/metrics").text
    for prom in ("rag_processor_queries_total", "rag_processor_quality_score_bucket", "rag_processor_tokens_total",
                 "rag_processor_cost_USD_total", "rag_processor_query_latency_seconds",
                 "rag_processor_error_rate", "rag_processor_queries_per_minute", "rag_processor_active_users",
                 "rag_processor_query_duration_seconds_bucket", "rag_processor_scoring_duration_seconds_bucket",
                 "rag_processor_received_total", "rag_processor_pipeline_queue_depth",
                 "rag_processor_traces_in_flight", "rag_processor_alerts_firing"):
        assert re.search(rf"^{prom}[{{ ]", text, re.M), f"{prom} missing from /metrics"
    assert re.search(r'^rag_processor_active_users\S* 2\.0$', text, re.M)
    assert re.search(r'^rag_processor_error_rate\S* 0\.5$', text, re.M)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def prometheus(service: ProcessorService, tmp_path: Path) -> Iterator[str]:
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.fail("the prometheus binary is missing: apt-get install prometheus (.ci/run does)")
    conf = tmp_path / "prometheus.yml"
    conf.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "rag-otel", "scrape_interval": "1s",
                            "static_configs": [{"targets": [service.http_address]}]}],
    }))
    port = _free_port()
    proc = subprocess.Popen(
        [exe, f"--config.file={conf}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("prometheus did not become ready")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_real_prometheus_scrapes_the_derived_series(
    service: ProcessorService, sink: OtlpSink, prometheus: str,
) -> None:
    send_rag_traces(GrpcSpanExporter(endpoint=service.receiver.grpc_address, insecure=True), n=3)
    roots(sink, 3)
    deadline = time.monotonic() + 15
    result: list[Any] = []
    while time.monotonic() < deadline:
        r = httpx.get(f"{prometheus}/api/v1/query", params={"query": "sum(rag_processor_queries_total)"}).json()
        result = r["data"]["result"]
        if result and float(result[0]["value"][1]) == 3:
            break
        time.sleep(0.3)
    assert result and float(result[0]["value"][1]) == 3
    r = httpx.get(f"{prometheus}/api/v1/query",
                  params={"query": 'rag_processor_quality_score_count{axis="overall",model="gpt-4o-mini"}'}).json()
    assert float(r["data"]["result"][0]["value"][1]) == 3
    r = httpx.get(f"{prometheus}/api/v1/query", params={"query": 'rag_processor_query_latency_seconds'}).json()
    assert {s["metric"]["quantile"] for s in r["data"]["result"]} == {"0.5", "0.95", "0.99"}


def test_subprocess_serve_flushes_in_flight_traces_on_sigterm(sink: OtlpSink, tmp_path: Path) -> None:
    conf = tmp_path / "rag-otel.yaml"
    conf.write_text(yaml.safe_dump({"model_observation": {
        "content": {"capture": "scoring_only"},
        "processor": {"trace_wait": 60, "trace_timeout": 120, "shutdown_grace": 5},
    }}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag_otel.cli", "serve", "--config", str(conf), "--otlp-grpc", "127.0.0.1:0",
         "--otlp-http", "127.0.0.1:0", "--http", "127.0.0.1:0", "--export", f"grpc://127.0.0.1:{sink.grpc_port}",
         "--data-dir", str(tmp_path / "data")],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    log: list[str] = []
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr], daemon=True)
    reader.start()
    try:
        http_addr = otlp_http = None
        deadline = time.monotonic() + 20
        while http_addr is None and time.monotonic() < deadline:
            try:
                log.append(lines.get(timeout=0.2))
            except queue.Empty:
                continue
            if m := re.search(r"OTLP HTTP (\S+), HTTP http://(\S+)", log[-1]):
                otlp_http, http_addr = m.group(1), m.group(2)
        assert http_addr, f"rag-otel serve did not log its addresses: {log}"
        send_rag_traces(HttpSpanExporter(endpoint=f"http://{otlp_http}/v1/traces"), n=2)
        deadline = time.monotonic() + 10
        while httpx.get(f"http://{http_addr}/health").json()["pipeline"]["traces_in_flight"] < 2:
            assert time.monotonic() < deadline, "traces never reached the processor"
            time.sleep(0.05)
        assert sink.spans() == []  # held for trace_wait (60 s)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert time.monotonic() - t0 < 5
        spans = sink.wait_for_spans(count=8, timeout=5)
        rs = [s for s in spans if s.name == "rag.query"]
        assert len(rs) == 2
        for r in rs:
            assert r.attributes["rag.quality.status"] == "skipped"  # flushed unscored, not dropped
            assert "rag.query.text" not in r.attributes  # and still stripped
        reader.join(5)  # the process has exited: its stderr ends
        while not lines.empty():
            log.append(lines.get())
        assert any("stopped: everything accepted was exported" in x for x in log), log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
