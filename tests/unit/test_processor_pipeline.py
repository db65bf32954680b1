"""The pipeline as a Sink, without servers: flushes, stripping, pass-through, back-pressure, system samples.

The downstream here is a plain collecting object implementing the exporter's three methods (the
real OTLP exporter and receiver are exercised in tests/integration/test_processor_e2e.py).
"""

from __future__ import annotations

import gc
import json
import threading
import time
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from rag_otel.config import ModelObservation
from rag_otel.processor.enrich import any_value
from rag_otel.processor.pipeline import GC_THRESHOLDS, Pipeline, default_scoring_threads, raise_gc_thresholds
from rag_otel.processor.system_samples import system_samples
from rag_otel.records import AxisScore, QualityResult, SystemSample


def recent_ns() -> int:
    """10 s ago, read when a request is built: the alert engine's windows are in wall time, and a module-level
    time would be as old as the test run is long (a 10-minute suite put it outside the 5-minute window)."""
    return time.time_ns() - 10_000_000_000


T0 = recent_ns()  # a fixed time for spans whose age does not matter (alert windows read recent_ns())


class Collect:
    """Downstream that keeps what it is given (same interface as the OTLP fan-out)."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.resources: list[Any] = []
        self.metrics: list[Any] = []
        self.logs: list[Any] = []
        self.lock = threading.Lock()

    def export_spans(self, resource_spans: Any) -> None:
        with self.lock:
            for rs in resource_spans:
                self.resources.append(rs.resource)
                self.spans.extend(s for ss in rs.scope_spans for s in ss.spans)

    def export_metrics(self, resource_metrics: Any) -> None:
        self.metrics.extend(resource_metrics)

    def export_logs(self, resource_logs: Any) -> None:
        self.logs.extend(resource_logs)


class FixedScorer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, list[str]]] = []

    def score(self, question: str, answer: str, sources: Any) -> QualityResult:
        self.calls.append((question, answer, list(sources)))
        axes = {a: AxisScore(0.9, f"{a} ok", "good") for a in ("accuracy", "completeness", "relevance", "consistency")}
        return QualityResult(axes, 0.9, "fixed/1", grade="good")


def attrs(span: Span) -> dict[str, Any]:
    from tests.support.otlp_sink import attributes

    return attributes(span.attributes)


def rag_request(trace: int, *, root: bool = True, capture: str = "scoring_only", service: str = "app") -> Any:
    tid = trace.to_bytes(16, "big")
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name", value=any_value(service))
    ss = rs.scope_spans.add()
    ss.scope.name = "test"

    t0 = recent_ns()

    def add(sid: int, parent: int, name: str, a: dict[str, Any], end_ms: int = 100) -> None:
        ss.spans.append(Span(
            trace_id=tid, span_id=sid.to_bytes(8, "big"), parent_span_id=parent.to_bytes(8, "big") if parent else b"",
            name=name, start_time_unix_nano=t0, end_time_unix_nano=t0 + end_ms * 1_000_000,
            attributes=[KeyValue(key=k, value=any_value(v)) for k, v in a.items()]))

    if root:
        add(1, 0, "rag.query", {"rag.query.text": "Capital of France?", "rag.answer.text": "Paris.",
                                "rag.content.capture": capture, "user.id": "u1"}, end_ms=1500)
    add(2, 1, "retrieval faiss", {"gen_ai.operation.name": "retrieval", "gen_ai.retrieval.documents":
                                  json.dumps([{"id": "d1", "score": 0.9, "content": "Paris is the capital."}])})
    add(3, 1, "chat gpt-4o-mini", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                                   "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100,
                                   "gen_ai.input.messages": "[]", "gen_ai.output.messages": "[]"})
    return req


def make(**processor: Any) -> tuple[Pipeline, Collect, FixedScorer]:
    cfg = ModelObservation()
    cfg.processor.trace_wait = 0.05
    for k, v in processor.items():
        setattr(cfg.processor, k, v)
    cfg.content.capture = "scoring_only"
    down, scorer = Collect(), FixedScorer()
    return Pipeline(cfg, down, scorer=scorer).start(), down, scorer


def wait_spans(p: Pipeline, down: Collect, n: int, timeout: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while len(down.spans) < n and time.monotonic() < deadline:
        p.wait_idle(0.05)
        time.sleep(0.01)
    assert len(down.spans) >= n, f"only {len(down.spans)} of {n} spans exported"


def test_complete_trace_is_scored_enriched_and_stripped() -> None:
    p, down, scorer = make()
    assert not p.offer_traces(rag_request(1)).full
    wait_spans(p, down, 3)
    p.shutdown(2)
    root = next(s for s in down.spans if s.name == "rag.query")
    a = attrs(root)
    assert scorer.calls == [("Capital of France?", "Paris.", ["Paris is the capital."])]
    assert a["rag.quality.status"] == "scored" and a["rag.quality.overall"] == 0.9
    assert a["rag.quality.grade"] == "good" and a["rag.quality.evaluator"] == "fixed/1"
    assert a["rag.latency.category"] == "good"  # 1.5 s against the default thresholds
    assert a["gen_ai.usage.cost"] > 0  # none on the spans: computed from pricing.yaml
    assert [e.name for e in root.events] == ["gen_ai.evaluation.result"] * 4
    assert "rag.query.text" not in a and "rag.answer.text" not in a
    retrieval = next(s for s in down.spans if s.name.startswith("retrieval"))
    assert json.loads(attrs(retrieval)["gen_ai.retrieval.documents"]) == [{"id": "d1", "score": 0.9}]
    chat = attrs(next(s for s in down.spans if s.name.startswith("chat")))
    assert "gen_ai.input.messages" not in chat and chat["gen_ai.usage.input_tokens"] == 1000
    assert down.resources[0].attributes[0].value.string_value == "app"


def test_keep_content_exports_content_untouched() -> None:
    p, down, _ = make(keep_content=True)
    p.offer_traces(rag_request(1))
    wait_spans(p, down, 3)
    p.shutdown(2)
    root = next(s for s in down.spans if s.name == "rag.query")
    assert attrs(root)["rag.query.text"] == "Capital of France?"


def test_trace_without_root_is_flushed_unscored_at_timeout() -> None:
    p, down, scorer = make(trace_timeout=0.2)
    p.offer_traces(rag_request(7, root=False))
    wait_spans(p, down, 2)
    p.shutdown(2)
    # the topmost span stands in for the missing root and says the trace went unscored
    assert [attrs(s).get("rag.quality.status") for s in down.spans].count("skipped") == 1
    assert scorer.calls == [] and p.stats.unscored_flushes == 1


def test_overflow_flushes_oldest_trace_unscored_not_dropped() -> None:
    p, down, scorer = make(max_in_flight_traces=1, trace_wait=30.0)
    p.offer_traces(rag_request(1))
    p.offer_traces(rag_request(2))  # evicts trace 1
    wait_spans(p, down, 3)
    [root] = [s for s in down.spans if s.name == "rag.query"]
    assert root.trace_id[-1] == 1 and attrs(root)["rag.quality.status"] == "skipped"
    assert "rag.query.text" not in attrs(root)  # stripped all the same
    assert p.in_flight_traces == 1
    assert p.shutdown(2)  # shutdown flushes trace 2 unscored
    assert len([s for s in down.spans if s.name == "rag.query"]) == 2 and scorer.calls == []


def test_non_rag_trace_passes_through_untouched_but_for_content() -> None:
    """Not a query, so nothing is added; but a span of it may still carry captured text (an
    OpenInference chain's input.value): under scoring_only that leaves no more than a query's does."""
    p, down, _ = make()
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    ss.spans.append(Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="GET /health",
                         attributes=[KeyValue(key="http.route", value=any_value("/health"))]))
    ss.spans.append(Span(trace_id=b"\x01" * 16, span_id=b"\x03" * 8, parent_span_id=b"\x02" * 8, name="Chain",
                         attributes=[KeyValue(key="input.value", value=any_value("my secret question")),
                                     KeyValue(key="openinference.span.kind", value=any_value("CHAIN"))]))
    health = ss.spans[0].SerializeToString()
    p.offer_traces(req)
    wait_spans(p, down, 2)
    p.shutdown(2)
    assert down.spans[0].SerializeToString() == health
    assert {kv.key for kv in down.spans[1].attributes} == {"openinference.span.kind"}
    assert p.stats.passed_through == 1


def test_non_rag_trace_keeps_its_content_when_the_processor_captures_full() -> None:
    cfg = ModelObservation()
    cfg.content.capture = "full"
    cfg.processor.trace_wait = 0.05
    down = Collect()
    p = Pipeline(cfg, down).start()
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    ss.spans.append(Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="Chain",
                         attributes=[KeyValue(key="input.value", value=any_value("kept"))]))
    original = ss.spans[0].SerializeToString()
    p.offer_traces(req)
    wait_spans(p, down, 1)
    p.shutdown(2)
    assert down.spans[0].SerializeToString() == original


def test_full_queue_answers_back_pressure_and_loses_nothing_taken() -> None:
    cfg = ModelObservation()
    cfg.processor.max_queue_items = 5
    down = Collect()
    p = Pipeline(cfg, down)  # not started: nothing drains the queue
    assert not p.offer_traces(rag_request(1)).full  # 3 spans
    refused = p.offer_traces(rag_request(2))  # 3 more would exceed 5
    assert refused.full and refused.retry_after > 0
    p.start()
    assert p.shutdown(2)
    assert len(down.spans) == 3
    big = Pipeline(cfg, Collect())
    req = rag_request(3)
    req.resource_spans.extend(rag_request(4).resource_spans)  # 6 spans > 5: an empty queue still takes it
    assert not big.offer_traces(req).full


def test_metrics_pass_through_unchanged_and_feed_system_samples() -> None:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.add(key="service.name", value=any_value("app"))
    rm.resource.attributes.add(key="host.name", value=any_value("h1"))
    sm = rm.scope_metrics.add()
    cpu = sm.metrics.add(name="system.cpu.utilization")
    for cpu_id, idle in (("cpu0", 0.2), ("cpu1", 0.4)):
        pt = cpu.gauge.data_points.add(as_double=idle, time_unix_nano=recent_ns())
        pt.attributes.add(key="cpu", value=any_value(cpu_id))
        pt.attributes.add(key="system.cpu.state", value=any_value("idle"))
    mem = sm.metrics.add(name="system.memory.utilization")
    pt = mem.gauge.data_points.add(as_double=0.75, time_unix_nano=recent_ns())
    pt.attributes.add(key="system.memory.state", value=any_value("used"))
    sm.metrics.add(name="rag.system.health.score").gauge.data_points.add(as_double=88.0, time_unix_nano=recent_ns())
    before = req.SerializeToString()

    seen: list[SystemSample] = []
    cfg = ModelObservation()
    down = Collect()
    p = Pipeline(cfg, down)
    p.on_system.append(seen.append)
    p.start()
    p.offer_metrics(req)
    assert p.shutdown(2)
    out = ExportMetricsServiceRequest()
    out.resource_metrics.extend(down.metrics)
    assert out.SerializeToString() == before
    [s] = seen
    assert (s.service, s.host) == ("app", "h1")
    assert abs(s.cpu_percent - 70.0) < 1e-9 and abs(s.memory_percent - 75.0) < 1e-9 and s.health_score == 88.0
    assert system_samples(ExportMetricsServiceRequest()) == []


class SlowScorer(FixedScorer):
    """Stands in for a slow LLM judge: every score takes 50 ms."""

    def score(self, question: str, answer: str, sources: Any) -> QualityResult:
        import time

        time.sleep(0.05)
        return super().score(question, answer, sources)


def test_slow_scorer_turns_into_back_pressure_and_loses_nothing_accepted() -> None:
    cfg = ModelObservation()
    cfg.processor.trace_wait = 0.0
    cfg.processor.max_queue_items = 9  # three 3-span traces
    cfg.content.capture = "scoring_only"
    down = Collect()
    p = Pipeline(cfg, down, scorer=SlowScorer(), scoring_threads=1).start()
    accepted = refused = 0
    for t in range(1, 80):
        if p.offer_traces(rag_request(t)).full:
            refused += 1
        else:
            accepted += 1
    assert refused > 0, "the queue never filled: no back-pressure"
    assert p.shutdown(10)
    assert len(down.spans) == 3 * accepted  # every accepted span went out, scored or flushed unscored


def test_alert_rules_are_evaluated_periodically_and_mark_later_queries() -> None:
    from rag_otel.alerts.engine import AlertEngine
    from rag_otel.config import AlertRule
    from rag_otel.records import AlertEvent

    cfg = ModelObservation()
    cfg.processor.trace_wait = 0.0
    cfg.content.capture = "scoring_only"
    cfg.alerting.evaluation_interval = 0.1
    cfg.performance_monitoring.alert_rules = [
        AlertRule(name="any_traffic", metric="queries_per_minute", operator="gt", threshold=0.0)]
    down, events = Collect(), []
    fired = threading.Event()
    p = Pipeline(cfg, down, scorer=FixedScorer(), alerts=AlertEngine.from_config(cfg))

    def seen(batch: list[AlertEvent]) -> None:
        events.extend(batch)
        fired.set()

    p.on_alert.append(seen)
    p.start()
    p.offer_traces(rag_request(1))
    assert fired.wait(5), "no periodic evaluation fired the rule"
    assert [(e.rule, e.state) for e in events][:1] == [("any_traffic", "firing")]
    p.offer_traces(rag_request(2))
    wait_spans(p, down, 6)
    p.shutdown(2)
    marked = {s.trace_id[-1]: attrs(s).get("rag.alert.names") for s in down.spans if s.name == "rag.query"}
    assert marked == {1: None, 2: ["any_traffic"]}


def test_a_request_exported_whole_is_the_received_message_and_a_split_one_is_copied() -> None:
    from rag_otel.processor.assembly import TraceAssembler
    from rag_otel.processor.pipeline import resource_spans

    req = rag_request(1)
    ss = req.resource_spans[0].scope_spans[0]
    ss.spans.extend(rag_request(2).resource_spans[0].scope_spans[0].spans)
    asm = TraceAssembler(0.0, 30.0, 100)
    asm.add_request(req.resource_spans)
    first, second = asm.expire(time.monotonic() + 1)
    whole = resource_spans([*first.spans, *second.spans])
    assert len(whole) == 1 and whole[0] is req.resource_spans[0]  # no copy: the message itself
    part = resource_spans(first.spans)
    assert part[0] is not req.resource_spans[0]
    assert [s.span_id for s in part[0].scope_spans[0].spans] == [s.span_id for _, s in first.spans]
    assert part[0].resource == req.resource_spans[0].resource and part[0].scope_spans[0].scope.name == "test"


def test_gc_thresholds_are_raised_never_lowered_and_only_by_the_process_owner() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        assert Pipeline(ModelObservation(), Collect()).start().shutdown(5)
        assert gc.get_threshold() == (700, 10, 10)  # a host embedding a Pipeline keeps its own GC settings
        raise_gc_thresholds()
        assert gc.get_threshold() == GC_THRESHOLDS
        higher = (GC_THRESHOLDS[0] * 2, 5, GC_THRESHOLDS[2] * 3)
        gc.set_threshold(*higher)
        raise_gc_thresholds()
        assert gc.get_threshold() == (higher[0], GC_THRESHOLDS[1], higher[2])
    finally:
        gc.set_threshold(*before)


def test_one_scoring_thread_when_every_axis_is_lexical_two_with_a_model_backend() -> None:
    cfg = ModelObservation()
    assert default_scoring_threads(cfg) == 1
    axis = cfg.quality_assessment.metrics[0]
    cfg.quality_assessment.backends = {axis: "llm"}
    assert default_scoring_threads(cfg) == 2
    cfg.quality_assessment.metrics = [a for a in cfg.quality_assessment.metrics if a != axis]
    assert default_scoring_threads(cfg) == 1  # a backend for an axis not scored does not count


def test_apps_log_records_lose_their_content_and_keep_the_rest() -> None:
    """GenAI instrumentations put prompts and answers in events (log records) too: the official openai
    instrumentation's gen_ai.user.message / gen_ai.choice bodies, its gen_ai.input.messages attributes."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

    p, down, _ = make()
    req = ExportLogsServiceRequest()
    sl = req.resource_logs.add().scope_logs.add()
    user = LogRecord(event_name="gen_ai.user.message", attributes=[
        KeyValue(key="gen_ai.system", value=any_value("openai"))])
    user.body.kvlist_value.values.add(key="content", value=any_value("my secret question"))
    details = LogRecord(attributes=[
        KeyValue(key="event.name", value=any_value("gen_ai.client.inference.operation.details")),
        KeyValue(key="gen_ai.input.messages", value=any_value('[{"role":"user","parts":[{"content":"secret"}]}]')),
        KeyValue(key="gen_ai.request.model", value=any_value("gpt-4o-mini"))])
    plain = LogRecord(attributes=[KeyValue(key="code.function", value=any_value("handler"))])
    plain.body.string_value = "request served in 12 ms"
    sl.log_records.extend([user, details, plain])
    p.offer_logs(req)
    p.wait_idle(2)
    p.shutdown(2)
    (rl,) = down.logs
    got_user, got_details, got_plain = rl.scope_logs[0].log_records
    assert not got_user.HasField("body") and got_user.attributes[0].key == "gen_ai.system"
    assert [kv.key for kv in got_details.attributes] == ["event.name", "gen_ai.request.model"]
    assert got_plain == plain  # not a content event: an app's own log line is its business
