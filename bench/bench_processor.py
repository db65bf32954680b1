"""Processor throughput: spans per CPU-second end to end, beside the pure decode/re-encode ceiling.

Run: ``.venv/bin/python bench/bench_processor.py [--repeats 5] [--requests 120]``

Each request holds 50 RAG traces of 6 spans (HTTP server span -> rag.query -> retrieval ->
embeddings, rerank, chat), content captured ``scoring_only``, no cost on any span, texts made of
random words (so no scorer cache helps).  Both loops start from the same serialized request
bodies and end with the same wire encoding the exporter does (``exporter.frame`` per resource):

- ceiling: decode each body, re-encode its resources.  The Python floor for "OTLP in, OTLP out".
- end to end: decode, ``Pipeline.offer_traces`` (queue, assembly, normalization, lexical scoring
  of every query, enrichment, content stripping, alert engine, derived metrics), re-encode.

CPU time is ``time.process_time()`` (all threads of this process).  Also measured: the delay a
trace gets beyond ``trace_wait`` under a paced load (p50/p99), peak RSS with 10,000 traces in
flight, and the lexical scorer's time per query.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from rag_otel.alerts.engine import AlertEngine
from rag_otel.config import AlertRule, ModelObservation
from rag_otel.processor.derived_metrics import DerivedMetrics
from rag_otel.processor.exporter import frame
from rag_otel.processor.pipeline import Pipeline
from rag_otel.quality import build_scorer

TRACES_PER_REQUEST = 50
SPANS_PER_TRACE = 6
WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda",
    "paris", "france", "capital", "river", "city", "museum", "train", "ticket", "refund", "policy",
    "account", "password", "invoice", "order", "shipping", "warranty", "battery", "screen", "model", "price",
    "plan", "storage", "upgrade", "cancel", "support", "email", "phone", "address", "weekend", "holiday",
    "office", "hours",)
T0 = 1_700_000_000_000_000_000


def _kv(k: str, v: Any) -> KeyValue:
    if isinstance(v, int):
        return KeyValue(key=k, value=AnyValue(int_value=v))
    if isinstance(v, float):
        return KeyValue(key=k, value=AnyValue(double_value=v))
    return KeyValue(key=k, value=AnyValue(string_value=v))


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + "."


def make_bodies(n_requests: int, seed: int = 7) -> list[bytes]:
    """Serialized ExportTraceServiceRequests as an SDK would send them."""
    rng = random.Random(seed)
    bodies = []
    next_trace = 1
    for _ in range(n_requests):
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.attributes.extend([_kv("service.name", "rag-app"), _kv("service.version", "1.2.3"),
                                       _kv("host.name", "app-1"), _kv("telemetry.sdk.language", "python")])
        ss = rs.scope_spans.add()
        ss.scope.name = "rag_otel"
        for _ in range(TRACES_PER_REQUEST):
            tid = next_trace.to_bytes(16, "big")
            next_trace += 1
            q, a = _text(rng, 10), _text(rng, 30)
            docs = json.dumps([{"id": f"d{i}", "score": round(rng.random(), 3), "content": _text(rng, 60)}
                               for i in range(3)])

            base = next_trace * 8

            def span(sid: int, parent: int, name: str, kind: int, attrs: dict[str, Any], ms: int,
                     tid: bytes = tid, base: int = base, ss: Any = ss) -> None:
                ss.spans.append(Span(
                    trace_id=tid, span_id=(base + sid).to_bytes(8, "big"),
                    parent_span_id=(base + parent).to_bytes(8, "big") if parent else b"",
                    name=name, kind=kind, start_time_unix_nano=T0, end_time_unix_nano=T0 + ms * 1_000_000,
                    attributes=[_kv(k, v) for k, v in attrs.items()]))

            span(3, 2, "retrieval faiss", 3, {"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "faiss",
                                              "gen_ai.request.top_k": 3, "gen_ai.retrieval.documents": docs}, 40)
            span(4, 3, "embeddings text-embedding-3-small", 3, {
                "gen_ai.operation.name": "embeddings", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "text-embedding-3-small", "gen_ai.usage.input_tokens": 14}, 20)
            span(5, 2, "rerank", 1, {"rag.rerank.model": "bge-reranker", "rag.rerank.top_n": 3}, 30)
            span(6, 2, "chat gpt-4o-mini", 3, {
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 900, "gen_ai.usage.output_tokens": 60,
                "gen_ai.response.finish_reasons": "stop", "server.address": "api.example", "server.port": 443}, 900)
            span(2, 1, "rag.query", 1, {"rag.query.text": q, "rag.answer.text": a,
                                        "rag.content.capture": "scoring_only",
                                        "user.id": f"u{rng.randrange(50)}", "session.id": "s1",
                                        "rag.documents.count": 3}, 1000)
            span(1, 0, "POST /ask", 2, {"http.request.method": "POST", "http.route": "/ask",
                                        "http.response.status_code": 200, "url.scheme": "http"}, 1010)
        bodies.append(req.SerializeToString())
    return bodies


class Framing:
    """Downstream doing the exporter's real encoding work (frame each resource), then dropping the bytes."""

    def __init__(self) -> None:
        self.spans = 0
        self.bytes = 0
        self.lock = threading.Lock()
        self.on_trace: Any = None

    def export_spans(self, resource_spans: Any) -> None:
        n = b = 0
        for rs in resource_spans:
            b += len(frame(rs))
            for ss in rs.scope_spans:
                n += len(ss.spans)
                if self.on_trace is not None:
                    now = time.monotonic()
                    for s in ss.spans:
                        if not s.parent_span_id:
                            self.on_trace(s.trace_id, now)
        with self.lock:
            self.spans += n
            self.bytes += b

    def export_metrics(self, resource_metrics: Any) -> None:
        for rm in resource_metrics:
            frame(rm)

    def export_logs(self, resource_logs: Any) -> None:
        pass


def config(trace_wait: float = 0.0, max_in_flight: int = 10_000, sample_rate: float = 1.0) -> ModelObservation:
    cfg = ModelObservation()
    cfg.quality_assessment.sample_rate = sample_rate
    cfg.content.capture = "scoring_only"
    cfg.processor.trace_wait = trace_wait
    cfg.processor.max_in_flight_traces = max_in_flight
    cfg.processor.max_queue_items = 10_000_000
    cfg.performance_monitoring.alert_rules = [
        AlertRule(name="slow", metric="average_response_time", operator="gt", threshold=5.0),
        AlertRule(name="errors", metric="error_rate", operator="gt", threshold=0.05),
    ]
    return cfg


def build(cfg: ModelObservation, down: Framing) -> tuple[Pipeline, DerivedMetrics]:
    metrics = DerivedMetrics(None)
    p = Pipeline(cfg, down, scorer=build_scorer(cfg.quality_assessment), alerts=AlertEngine.from_config(cfg),
                 metrics=metrics)
    return p.start(), metrics


def run_ceiling(bodies: list[bytes]) -> float:
    spans = 0
    c0 = time.process_time()
    for body in bodies:
        req = ExportTraceServiceRequest.FromString(body)
        for rs in req.resource_spans:
            frame(rs)
            spans += sum(len(ss.spans) for ss in rs.scope_spans)
    return spans / (time.process_time() - c0)


def run_pipeline(bodies: list[bytes], sample_rate: float = 1.0) -> tuple[float, float]:
    down = Framing()
    p, metrics = build(config(sample_rate=sample_rate), down)
    total = len(bodies) * TRACES_PER_REQUEST * SPANS_PER_TRACE
    gc.collect()
    c0, w0 = time.process_time(), time.perf_counter()
    for body in bodies:
        while p.offer_traces(ExportTraceServiceRequest.FromString(body)).full:
            time.sleep(0.001)
    while down.spans < total:
        time.sleep(0.002)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    assert p.stats.scored == (len(bodies) * TRACES_PER_REQUEST if sample_rate == 1.0 else 0), p.stats
    p.shutdown(5)
    metrics.shutdown()
    return total / cpu, total / wall


def run_delay(bodies: list[bytes], rate_spans: float, trace_wait: float = 0.1) -> tuple[float, float]:
    """Delay beyond trace_wait from a trace's arrival to its export, under a paced load."""
    down = Framing()
    arrived: dict[bytes, float] = {}
    delays: list[float] = []
    lock = threading.Lock()

    def exported(tid: bytes, now: float) -> None:
        with lock:
            delays.append(now - arrived[tid] - trace_wait)

    down.on_trace = exported
    p, metrics = build(config(trace_wait=trace_wait), down)
    per_request = TRACES_PER_REQUEST * SPANS_PER_TRACE
    interval = per_request / rate_spans
    start = time.perf_counter()
    for i, body in enumerate(bodies):
        while time.perf_counter() < start + i * interval:
            time.sleep(0.0005)
        req = ExportTraceServiceRequest.FromString(body)
        now = time.monotonic()
        with lock:
            for s in req.resource_spans[0].scope_spans[0].spans:
                if not s.parent_span_id:
                    arrived[s.trace_id] = now
        p.offer_traces(req)
    p.shutdown(10)
    metrics.shutdown()
    delays.sort()
    return delays[len(delays) // 2], delays[int(len(delays) * 0.99)]


def run_rss(bodies: list[bytes], traces: int = 10_000) -> tuple[float, float, int]:
    """RSS growth with ``traces`` traces held in flight (trace_wait long, nothing completes)."""
    import psutil

    proc = psutil.Process(os.getpid())
    down = Framing()
    p, metrics = build(config(trace_wait=3600, max_in_flight=traces), down)
    gc.collect()
    before = proc.memory_info().rss
    n = 0
    for body in bodies:
        if n >= traces:
            break
        p.offer_traces(ExportTraceServiceRequest.FromString(body))
        n += TRACES_PER_REQUEST
    p.wait_idle(30)
    held = p.in_flight_traces
    after = proc.memory_info().rss
    p.shutdown(30)
    metrics.shutdown()
    return before / 2**20, (after - before) / 2**20, held


def run_scoring(n: int = 2000) -> float:
    rng = random.Random(3)
    scorer = build_scorer(ModelObservation().quality_assessment)
    cases = [(_text(rng, 10), _text(rng, 30), [_text(rng, 60) for _ in range(3)]) for _ in range(n)]
    times = []
    for q, a, docs in cases:
        t0 = time.perf_counter()
        scorer.score(q, a, docs)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--requests", type=int, default=120, help="requests of 300 spans each per run")
    args = ap.parse_args()
    bodies = make_bodies(args.requests)
    run_ceiling(bodies[:10])
    run_pipeline(bodies[:10])  # warm up imports and caches
    ceil, e2e, e2e_wall, unscored = [], [], [], []
    for _ in range(args.repeats):
        ceil.append(run_ceiling(bodies))
        cpu, wall = run_pipeline(make_bodies(args.requests, seed=random.randrange(1 << 30)))
        e2e.append(cpu)
        e2e_wall.append(wall)
        unscored.append(run_pipeline(make_bodies(args.requests, seed=random.randrange(1 << 30)), 0.0)[0])
    c, e, u = statistics.median(ceil), statistics.median(e2e), statistics.median(unscored)
    print(f"spans per run: {args.requests * TRACES_PER_REQUEST * SPANS_PER_TRACE}, repeats: {args.repeats}")
    print(f"ceiling (decode + re-encode):      {c:>10,.0f} spans/CPU-s (median)")
    print(f"end to end (pipeline, lexical):    {e:>10,.0f} spans/CPU-s (median), {statistics.median(e2e_wall):,.0f}"
          f" spans/wall-s; {e / c:.1%} of the ceiling")
    print(f"end to end, scoring sampled at 0:  {u:>10,.0f} spans/CPU-s (median); {u / c:.1%} of the ceiling")
    rate = e * 0.5
    p50, p99 = run_delay(make_bodies(60, seed=11), rate)
    print(f"delay beyond trace_wait at {rate:,.0f} spans/s: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    base, grew, held = run_rss(make_bodies(10_000 // TRACES_PER_REQUEST, seed=5))
    print(f"RSS with {held:,} traces in flight: +{grew:.0f} MiB over {base:.0f} MiB "
          f"(peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")
    print(f"lexical scoring per query:         {run_scoring():>10.0f} us (median)")


if __name__ == "__main__":
    main()
