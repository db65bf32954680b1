"""Processor throughput: spans per CPU-second end to end, beside the pure decode/re-encode ceiling.

Run: ``.venv/bin/python bench/bench_processor.py [--repeats 5] [--requests 120] [--quick]``;
``--e2e six|mix`` prints one end-to-end run of one workload (``bench_processor_ab.py`` compares two
checkouts with it; ``mix`` is RAG traces with 20 non-GenAI spans each, see ``make_bodies``).

Each request holds 50 RAG traces of 6 spans from the shared workload ``bench/otlp_workload.py``
(HTTP server span -> rag.query -> retrieval -> embeddings, rerank, chat), content captured
``scoring_only``, no cost on any span, texts made of random words (so no scorer cache helps).
Both loops start from the same serialized request bodies and end with the same wire encoding
the exporter does (``exporter.frame`` per resource):

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
import os
import random
import resource
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

# RAG_OTEL_BENCH_SRC: another checkout's src (bench_processor_ab.py measures main with this file's workloads)
sys.path.insert(0, os.environ.get("RAG_OTEL_BENCH_SRC") or str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otlp_workload import MIXED_SPANS_PER_TRACE, SPANS_PER_TRACE, WORDS, make_mixed_requests, make_requests

from rag_otel.alerts.engine import AlertEngine
from rag_otel.config import AlertRule, ModelObservation
from rag_otel.processor.derived_metrics import DerivedMetrics
from rag_otel.processor.exporter import frame
from rag_otel.processor.pipeline import Pipeline, raise_gc_thresholds
from rag_otel.quality import build_scorer

TRACES_PER_REQUEST = 50
MIXED_TRACES_PER_REQUEST = 12  # 300 spans per request, as in the six-span workload
T0 = 1_700_000_000_000_000_000
# workload -> (traces per request, spans per trace)
WORKLOADS = {"six": (TRACES_PER_REQUEST, SPANS_PER_TRACE), "mix": (MIXED_TRACES_PER_REQUEST, MIXED_SPANS_PER_TRACE)}


def make_bodies(n_requests: int, seed: int = 7, workload: str = "six") -> list[bytes]:
    """The shared RAG workloads (bench/otlp_workload.py): ``six``, 50 six-span traces per request; ``mix``,
    12 traces of 5 RAG spans and 20 non-GenAI spans (FastAPI server and chunk sends, httpx, SQLAlchemy, redis)."""
    if workload == "mix":
        return make_mixed_requests(n_requests, MIXED_TRACES_PER_REQUEST, seed=seed)
    return make_requests(n_requests, TRACES_PER_REQUEST, seed=seed)


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + "."


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
    raise_gc_thresholds()  # as ProcessorService.start does for `rag-otel serve`
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


def run_pipeline(bodies: list[bytes], sample_rate: float = 1.0, workload: str = "six") -> tuple[float, float]:
    down = Framing()
    p, metrics = build(config(sample_rate=sample_rate), down)
    traces_per_request, spans_per_trace = WORKLOADS[workload]
    total = len(bodies) * traces_per_request * spans_per_trace
    gc.collect()
    c0, w0 = time.process_time(), time.perf_counter()
    for body in bodies:
        while p.offer_traces(ExportTraceServiceRequest.FromString(body)).full:
            time.sleep(0.001)
    while down.spans < total:
        time.sleep(0.002)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    assert p.stats.scored == (len(bodies) * traces_per_request if sample_rate == 1.0 else 0), p.stats
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


def run_stages(bodies: list[bytes], workload: str = "six") -> dict[str, float]:
    """CPU µs per span of each stage, run one after another in this thread (where the time goes)."""
    from rag_otel.pricing import load_prices
    from rag_otel.processor import enrich
    from rag_otel.processor.assembly import TraceAssembler
    from rag_otel.processor.normalize import normalize
    from rag_otel.processor.pipeline import resource_spans

    cfg = config()
    prices, scorer = load_prices(), build_scorer(cfg.quality_assessment)
    alerts, metrics = AlertEngine.from_config(cfg), DerivedMetrics(None)
    asm = TraceAssembler(0.0, 30.0, 1_000_000)
    spent: dict[str, float] = {}

    def lap(name: str, t0: float) -> float:
        now = time.process_time()
        spent[name] = spent.get(name, 0.0) + now - t0
        return now

    for body in bodies:
        t = time.process_time()
        req = ExportTraceServiceRequest.FromString(body)
        t = lap("decode", t)
        asm.add_request(req.resource_spans)
        traces = asm.expire(time.monotonic() + 1)
        t = lap("assemble", t)
        norms = [normalize(tr, prices) for tr in traces]
        t = lap("normalize", t)
        for n in norms:
            r = n.record
            r.quality = scorer.score(r.query_text, r.answer_text, [x.content for x in r.sources if x.content])
        t = lap("score (lexical)", t)
        for n in norms:
            n.record.latency_category = cfg.performance_monitoring.latency_thresholds.category(n.record.duration_s)
            alerts.observe(n.record)
            n.record.alerts = alerts.firing_names_for(n.record)
        t = lap("alerts", t)
        for n in norms:
            enrich.strip_content(n.indexes)
        t = lap("strip content", t)
        for n in norms:
            enrich.enrich_root(n.root, n.record, n.record.quality, cost_missing=True,
                               grade_thresholds=cfg.quality_assessment.grade_thresholds, present=n.root_keys)
        t = lap("enrich", t)
        metrics.record_queries([(n.record, n.usage) for n in norms])
        t = lap("derived metrics", t)
        for rs in resource_spans([x for tr in traces for x in tr.spans]):
            frame(rs)
        lap("regroup + encode", t)
    traces_per_request, spans_per_trace = WORKLOADS[workload]
    spans = len(bodies) * traces_per_request * spans_per_trace
    metrics.shutdown()
    return {k: v / spans * 1e6 for k, v in spent.items()}


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


def sizing(repeats: int, requests: int) -> None:
    """Spans and traces per CPU-second of each workload, scored (lexical, every query) and unscored."""
    cases = [(wl, rate) for wl in ("six", "mix") for rate in (1.0, 0.0)]
    for wl, rate in cases:
        run_pipeline(make_bodies(10, seed=1, workload=wl), rate, wl)  # warm up imports and caches
    got: dict[tuple[str, float], list[float]] = {c: [] for c in cases}
    for r in range(repeats):
        for wl, rate in cases if r % 2 == 0 else cases[::-1]:
            bodies = make_bodies(requests, seed=random.randrange(1 << 30), workload=wl)
            got[(wl, rate)].append(run_pipeline(bodies, rate, wl)[0])
    for (wl, rate), runs in got.items():
        spans = statistics.median(runs)
        print(f"{wl:<4} {'every query scored' if rate else 'unscored':<19} {spans:>8,.0f} spans/CPU-s "
              f"({min(runs):,.0f}-{max(runs):,.0f}), {spans / WORKLOADS[wl][1]:>6,.0f} traces/CPU-s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--requests", type=int, default=120, help="requests of 300 spans each per run")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 repeat of 10 requests")
    ap.add_argument("--e2e", choices=sorted(WORKLOADS),
                    help="only one end-to-end run (lexical scoring of every query) of this workload, printed as "
                         "a number of spans per CPU-second (bench_processor_ab.py runs this)")
    ap.add_argument("--sizing", action="store_true",
                    help="capacity per core (docs/deploy.md): both workloads, every query scored and none, "
                         "--repeats rounds in turn; medians of spans and traces per CPU-second")
    args = ap.parse_args()
    if args.sizing:
        sizing(args.repeats, args.requests)
        return
    if args.e2e:
        warm = make_bodies(10, seed=1, workload=args.e2e)
        run_pipeline(warm, workload=args.e2e)  # warm up imports and caches
        print(run_pipeline(make_bodies(args.requests, seed=random.randrange(1 << 30), workload=args.e2e),
                           workload=args.e2e)[0])
        return
    if args.quick:
        args.repeats, args.requests = 1, 10
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
    rate = statistics.median(e2e_wall) * 0.5  # half of what this (shared) machine delivered in wall time
    p50, p99 = run_delay(make_bodies(60, seed=11), rate)
    print(f"delay beyond trace_wait at {rate:,.0f} spans/s: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    base, grew, held = run_rss(make_bodies(10_000 // TRACES_PER_REQUEST, seed=5))
    print(f"RSS with {held:,} traces in flight: +{grew:.0f} MiB over {base:.0f} MiB "
          f"(peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")
    print(f"lexical scoring per query:         {run_scoring():>10.0f} us (median)")
    stages = run_stages(make_bodies(max(10, args.requests // 4), seed=13))
    total = sum(stages.values())
    print("where the CPU goes (single thread, stage by stage):")
    for name, us in stages.items():
        print(f"  {name:<18} {us:7.1f} us/span  {us / total:6.1%}")


if __name__ == "__main__":
    main()
