"""The folded counters and histograms must read exactly as the OTel SDK's own instruments did, on
/metrics and over OTLP.

The reference is a plain SDK ``MeterProvider`` built here with the instruments the processor
declared before the fold (name, unit, description, bucket advisory, resource, scope), fed the same
values the records imply, one SDK call each.
"""

from __future__ import annotations

import math
import random
import threading
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AGGREGATION_TEMPORALITY_CUMULATIVE
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData, ResourceMetrics, ScopeMetrics
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rag_otel import __version__
from rag_otel import semconv as sc
from rag_otel.processor.derived_metrics import (
    COST,
    FOLDED,
    PROCESSOR_SERVICE_NAME,
    QUALITY_SCORE,
    QUERIES,
    QUERY_DURATION,
    SCOPE,
    SCORING_DURATION,
    TOKENS,
    DerivedMetrics,
    FoldedMetrics,
)
from rag_otel.processor.normalize import ModelUsage
from rag_otel.records import AxisScore, QualityResult, QueryRecord

AXES = ("accuracy", "completeness", "relevance", "consistency")
PROM_NAMES = {"rag_processor_query_duration_seconds", "rag_processor_quality_score",
              "rag_processor_scoring_duration_seconds", "rag_processor_queries", "rag_processor_tokens",
              "rag_processor_cost_USD"}
# On a bound (bisect_left puts it in that bucket), between bounds, above the last bound, zero;
# negative and non-finite values are dropped by the SDK and must be by the fold too.
EDGE_SCORES = (0.0, 0.1, 0.15, 0.8, 1.0, 1.2, -0.1, math.nan, math.inf)
EDGE_SECONDS = (0.0, 0.01, 0.32, 0.33, 81.92, 500.0, -1.0)


class Reference:
    """A plain OTel SDK MeterProvider with the same instruments: what the processor used to do."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.memory = InMemoryMetricReader()
        resource = Resource.create({sc.SERVICE_NAME: PROCESSOR_SERVICE_NAME, "service.version": __version__})
        self.provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=self.registry), self.memory],
                                      resource=resource)
        meter = self.provider.get_meter("rag_otel.processor", __version__)
        # as the processor declared them when they were SDK instruments
        self.instruments: dict[Any, Any] = {
            QUERIES: meter.create_counter("rag.processor.queries", unit="{query}",
                                          description="RAG queries processed, by service, model, status, latency."),
            TOKENS: meter.create_counter("rag.processor.tokens", unit="{token}",
                                         description="Tokens by model and type."),
            COST: meter.create_counter("rag.processor.cost", unit="USD",
                                       description="Model cost in US dollars by model."),
            QUERY_DURATION: meter.create_histogram(
                "rag.processor.query.duration", unit="s", description="Whole RAG query duration (root span).",
                explicit_bucket_boundaries_advisory=[0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12,
                                                     10.24, 20.48, 40.96, 81.92]),
            QUALITY_SCORE: meter.create_histogram(
                "rag.processor.quality.score", unit="1",
                description="Quality score in [0,1] by axis (and overall), model.",
                explicit_bucket_boundaries_advisory=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]),
            SCORING_DURATION: meter.create_histogram(
                "rag.processor.scoring.duration", unit="s", description="Time to score one query, by evaluator.",
                explicit_bucket_boundaries_advisory=[0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                     0.25, 0.5, 1, 2.5, 5, 10]),
        }

    def record_queries(self, batch: list[tuple[QueryRecord, list[ModelUsage]]]) -> None:
        """The values the old ``DerivedMetrics.record_queries`` recorded, one SDK call each."""
        for r, usage in batch:
            service, model = r.service, r.model or "unknown"
            self.instruments[QUERIES].add(1, {"service": service, "model": model, "status": r.status,
                                              "latency_category": r.latency_category or ""})
            for u in usage:
                if u.input_tokens:
                    self.instruments[TOKENS].add(u.input_tokens, {"service": service, "model": u.model,
                                                                  "gen_ai.token.type": "input"})
                if u.output_tokens:
                    self.instruments[TOKENS].add(u.output_tokens, {"service": service, "model": u.model,
                                                                   "gen_ai.token.type": "output"})
                if u.cost_usd:
                    self.instruments[COST].add(u.cost_usd, {"service": service, "model": u.model})
            self.instruments[QUERY_DURATION].record(r.duration_s, {"service": service, "model": model,
                                                                   "status": r.status})
            q = r.quality
            if q is not None and q.status == "scored":
                for axis, s in q.axes.items():
                    self.instruments[QUALITY_SCORE].record(s.score, {"service": service, "model": model, "axis": axis})
                if q.overall is not None:
                    self.instruments[QUALITY_SCORE].record(q.overall, {"service": service, "model": model,
                                                                       "axis": "overall"})

    def record_scoring(self, seconds: float, evaluator: str) -> None:
        self.instruments[SCORING_DURATION].record(seconds, {"backend": evaluator or "unknown"})

    def otlp(self) -> ExportMetricsServiceRequest:
        data = self.memory.get_metrics_data()
        assert data is not None
        return encode_metrics(data)


def make_records(rng: random.Random, n: int) -> list[tuple[QueryRecord, list[ModelUsage]]]:
    out = []
    for i in range(n):
        seconds = EDGE_SECONDS[i] if i < len(EDGE_SECONDS) else rng.expovariate(1 / 2.0)
        scores = [EDGE_SCORES[(i + k) % len(EDGE_SCORES)] if i < 12 else round(rng.random(), rng.choice((1, 3)))
                  for k in range(5)]
        status = "scored" if i % 7 else rng.choice(("no_content", "skipped", "error"))
        quality = None if i % 11 == 5 else QualityResult(
            {a: AxisScore(s) for a, s in zip(AXES, scores, strict=False)},
            None if i % 13 == 3 else scores[4], "lexical/1", status=status)  # type: ignore[arg-type]
        model = rng.choice(("gpt-4o-mini", "claude-3-haiku"))
        usage = [ModelUsage(model, "chat", rng.choice((0, 900, 1200)), rng.choice((0, 80)),
                            rng.choice((0.0, None, 0.0001, 0.00073))),
                 ModelUsage("text-embedding-3-small", "embeddings", 12, 0, 0.0000002)][:1 + i % 2]
        out.append((QueryRecord(f"{i:032x}", f"{i:016x}", 10_000.0, 10_000.0 + seconds,
                                service=rng.choice(("app", "billing")), models=[model] if i % 9 else [],
                                status=rng.choice(("ok", "ok", "error")),  # type: ignore[arg-type]
                                latency_category=rng.choice(("good", None)), quality=quality), usage))
    return out


def folded_families(text: str) -> dict[str, tuple[str, str, str, list[tuple[str, tuple, float]]]]:
    """The folded instruments' families in a /metrics body: help, unit, type and sorted samples."""
    found = {}
    for f in text_string_to_metric_families(text):
        if f.name in PROM_NAMES:
            found[f.name] = (f.documentation, f.unit, f.type,
                             sorted((s.name, tuple(sorted(s.labels.items())), s.value) for s in f.samples))
    return found


def attrs(kvs: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((kv.key, kv.value.string_value) for kv in kvs))


def otlp_folded(request: ExportMetricsServiceRequest) -> dict[str, Any]:
    """name -> (resource, scope, unit, description, kind, {attributes: point fields}) for the folded instruments."""
    names = {spec.name for spec in FOLDED}
    out: dict[str, Any] = {}
    for rm in request.resource_metrics:
        resource = attrs(kv for kv in rm.resource.attributes if kv.key in (sc.SERVICE_NAME, "service.version"))
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name not in names:
                    continue
                assert m.name not in out, f"{m.name} emitted twice"
                kind = m.WhichOneof("data")
                if kind == "histogram":  # the sum (or a counter's value) is always third
                    points = {attrs(p.attributes): (list(p.bucket_counts), list(p.explicit_bounds), p.sum, p.count,
                                                    p.min, p.max, p.HasField("min"), p.HasField("max"),
                                                    len(p.exemplars)) for p in m.histogram.data_points}
                    shape = (kind, m.histogram.aggregation_temporality)
                else:
                    points = {attrs(p.attributes): (p.WhichOneof("value"), None, getattr(p, p.WhichOneof("value")),
                                                    len(p.exemplars)) for p in m.sum.data_points}
                    shape = (kind, m.sum.aggregation_temporality, m.sum.is_monotonic)
                out[m.name] = (resource, sm.scope.name, sm.scope.version, m.unit, m.description, shape, points)
    return out


def without_sums(found: dict[str, Any]) -> dict[str, Any]:
    """Prometheus families or OTLP histograms with every sum left out."""
    out: dict[str, Any] = {}
    for name, value in found.items():
        *head, last = value
        if isinstance(last, list):  # Prometheus: samples
            out[name] = (*head, [x for x in last if not x[0].endswith(("_sum", "_total"))])
        else:  # OTLP: points by attributes
            out[name] = (*head, {a: p[:2] + p[3:] for a, p in last.items()})
    return out


def sums(found: dict[str, Any]) -> dict[tuple, float]:
    out: dict[tuple, float] = {}
    for name, (*_, last) in found.items():
        if isinstance(last, list):
            out.update({(name, x[1]): x[2] for x in last if x[0].endswith(("_sum", "_total"))})
        else:
            out.update({(name, a): p[2] for a, p in last.items()})
    return out


def test_metrics_and_otlp_counters_and_histograms_equal_the_sdks_for_the_same_values() -> None:
    rng = random.Random(3)
    forwarded: list[ExportMetricsServiceRequest] = []
    dm = DerivedMetrics(forwarded.append, export_interval=3600)
    ref = Reference()
    for round_ in range(3):  # cumulative across collections: compare after each batch
        records = make_records(rng, 40 + round_)
        for i in range(0, len(records), 16):
            dm.record_queries(records[i:i + 16])
        ref.record_queries(records)
        for seconds, backend in ((0.0004, "lexical/1"), (0.0005, "lexical/1"), (3.0, "llm/2"), (20.0, ""),
                                 (rng.random() / 100, "lexical/1"), (-0.1, "llm/2")):
            dm.record_scoring(seconds, backend)
            ref.record_scoring(seconds, backend)

        mine = folded_families(dm.prometheus_text().decode())
        theirs = folded_families(generate_latest(ref.registry).decode())
        assert set(theirs) == PROM_NAMES
        dm.provider.force_flush()  # also makes the Prometheus reader collect: drop that, as a scrape would
        dm.prometheus_text()
        assert forwarded, "the forward path sent nothing"
        mine_otlp, theirs_otlp = otlp_folded(forwarded[-1]), otlp_folded(ref.otlp())
        assert set(theirs_otlp) == {spec.name for spec in FOLDED}
        if round_ == 0:  # one collection: bit for bit
            assert mine == theirs
            assert mine_otlp == theirs_otlp
        else:  # the SDK adds each collection's sum to the previous total: sums may differ in the last bit
            assert without_sums(mine) == without_sums(theirs)
            assert without_sums(mine_otlp) == without_sums(theirs_otlp)
            assert sums(mine) == pytest.approx(sums(theirs), rel=1e-12, abs=0)
            assert sums(mine_otlp) == pytest.approx(sums(theirs_otlp), rel=1e-12, abs=0)
        for _, _, _, _, _, shape, points in mine_otlp.values():
            assert shape[1] == AGGREGATION_TEMPORALITY_CUMULATIVE and points
    # the edge values landed where the SDK puts them: 0.1 (a bound) counted in the le=0.1 bucket
    ok = [line for line in dm.prometheus_text().decode().splitlines()
          if line.startswith("rag_processor_quality_score_bucket") and 'le="0.1"' in line]
    assert ok and any(float(line.rsplit(" ", 1)[1]) > 0 for line in ok)
    dm.shutdown()
    ref.provider.shutdown()


def test_the_final_collection_at_shutdown_carries_the_histograms_downstream() -> None:
    forwarded: list[ExportMetricsServiceRequest] = []
    dm = DerivedMetrics(forwarded.append, export_interval=3600)
    dm.record_scoring(0.002, "lexical/1")  # no query yet: the histogram still goes out, in the processor's scope
    dm.shutdown()
    got = otlp_folded(forwarded[-1])
    assert list(got) == [sc.METRIC_P_SCORING_DURATION]
    resource, scope, version, unit, _, _, points = got[sc.METRIC_P_SCORING_DURATION]
    assert (scope, version, unit) == (SCOPE, __version__, "s")
    assert dict(resource)[sc.SERVICE_NAME] == PROCESSOR_SERVICE_NAME
    assert points[(("backend", "lexical/1"),)][2:4] == (0.002, 1)
    # the SDK's own instruments are still in the same scope of the same request
    scopes = {sm.scope.name: [m.name for m in sm.metrics] for rm in forwarded[-1].resource_metrics
              for sm in rm.scope_metrics}
    assert set(scopes) == {SCOPE} and sc.METRIC_P_LATE_SPANS in scopes[SCOPE]


def test_concurrent_batches_lose_no_observation() -> None:
    dm = DerivedMetrics()
    records = [QueryRecord(f"{i:032x}", f"{i:016x}", 0.0, 0.5, service="app", models=["m"], status="ok",
                           quality=QualityResult({a: AxisScore(0.5) for a in AXES}, 0.5, "lexical/1"))
               for i in range(16)]

    def work() -> None:
        for _ in range(50):
            dm.record_queries([(r, []) for r in records])
            dm.record_scoring(0.001, "lexical/1")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    families = folded_families(dm.prometheus_text().decode())
    count = {s[0]: s[2] for s in families["rag_processor_quality_score"][3]
             if s[0].endswith("_count") and ("axis", "overall") in s[1]}
    assert count == {"rag_processor_quality_score_count": 4 * 50 * 16}
    scoring = [s for s in families["rag_processor_scoring_duration_seconds"][3] if s[0].endswith("_count")]
    assert [s[2] for s in scoring] == [4 * 50]
    dm.shutdown()



def test_folded_metrics_get_a_scope_of_their_own_when_the_sdk_collected_none_in_it() -> None:
    folded = FoldedMetrics(FOLDED)
    folded.record([(QUERIES, ("app", "m", "ok", "good"), 2), (QUERIES, ("app", "m", "ok", "good"), 1),
                   (COST, ("app", "m"), -1.0)])  # a negative increment is dropped, as the SDK drops it
    scope = InstrumentationScope(SCOPE, __version__)
    other = ScopeMetrics(InstrumentationScope("receiver"), [], "")
    data = folded.add_to(MetricsData([ResourceMetrics(Resource.create({}), [other], "")]), scope)
    (rm,) = data.resource_metrics
    assert [sm.scope for sm in rm.scope_metrics] == [other.scope, scope]
    (metric,) = rm.scope_metrics[1].metrics
    (point,) = metric.data.data_points  # type: ignore[union-attr]
    assert (metric.name, point.value, point.attributes) == (
        sc.METRIC_P_QUERIES, 3, {"service": "app", "model": "m", "status": "ok", "latency_category": "good"})
