"""Metrics the processor derives from query records, and its own health, via the OTel SDK.

One ``MeterProvider`` (resource ``service.name=rag-otel-processor``) with two readers:

- a Prometheus reader on a private registry, served at ``/metrics`` (scraped by Prometheus);
- a periodic reader whose exporter encodes OTLP and hands the request to the processor's own
  downstream exporter, so derived metrics ride the same endpoints, queue, retry and counters as
  everything else (one place for "where data goes").

Counters and histograms are cumulative, so "per hour" and "per minute" views are PromQL
``increase(...[1h])``; the sliding-window gauges (latency quantiles, error rate, queries per
minute, active users) are computed here because alert rules evaluate them directly.

The per-query instruments (query, token and cost counters; duration, quality score per axis and
scoring time histograms) are not SDK instruments: an SDK ``Histogram.record`` or ``Counter.add``
costs ~15-20 µs (attribute cleaning and hashing, a Measurement, locks) and a scored query makes
about a dozen. They are folded here instead (:class:`FoldedMetrics`, under 1 µs a value) and
handed to both readers as the SDK's own ``Metric`` objects, in the processor's scope, at every
collection, so the Prometheus exporter and the OTLP encoder turn them into exactly what they made
of the SDK instruments before. The rare ones (late spans, and the receiver's and exporter's
counters on ``meter``) stay on the SDK.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from rag_otel import __version__, semconv_opt_in
from rag_otel import semconv as sc
from rag_otel.processor.normalize import ModelUsage
from rag_otel.records import QueryRecord

PROCESSOR_SERVICE_NAME = "rag-otel-processor"
SCOPE = sc.PROCESSOR_SCOPE
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
SCORING_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
QUANTILES = (0.5, 0.95, 0.99)
PROMETHEUS_CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(frozen=True, eq=False)
class FoldedSpec:
    """One instrument as the SDK would declare it: a histogram with ``bounds``, else a monotonic
    counter. ``keys`` name the attribute values, in the order callers give them."""

    name: str
    unit: str
    description: str
    keys: tuple[str, ...]
    bounds: tuple[float, ...] | None = None


class _Series:
    """Cumulative state of one (instrument, attribute values) stream since its first value."""

    __slots__ = ("attributes", "count", "counts", "max", "min", "start", "sum")

    def __init__(self, attributes: dict[str, str], bounds: tuple[float, ...] | None) -> None:
        self.attributes = attributes
        self.start = time.time_ns()
        self.counts = [0] * (len(bounds) + 1) if bounds is not None else []
        self.sum: float = 0  # an int while only ints are added, as in the SDK (OTLP as_int)
        self.count = 0
        self.min = math.inf
        self.max = -math.inf


FoldedValue = tuple[FoldedSpec, tuple[str, ...], float]


OVERFLOW_KEY: tuple[str, ...] = ("\x00overflow",)  # no attribute value from the wire can be this tuple
DEFAULT_CARDINALITY_LIMIT = 2000  # the OpenTelemetry metrics SDK specification's default


class FoldedMetrics:
    """Explicit-bucket histograms and monotonic counters folded in-process, cumulative since start.

    The arithmetic is the SDK's (histograms: ``bisect_left`` over the bounds, sum, count, min, max;
    negative and non-finite values are dropped as the SDK drops them), without its ~20 µs per call.
    Exemplars are not kept: the SDK only samples them under a sampled span, which the processor
    never has.

    Cardinality is bounded as the SDK specification says: at most ``cardinality_limit`` attribute sets
    per instrument, the last of them the overflow set ``otel.metric.overflow=true`` into which every
    value of a new attribute set goes once the limit is reached (totals stay right; only the split is
    lost).  Attribute values come from the wire (model and service names), so without this a sender
    with 20,000 model names grows /metrics without bound.  ``overflowed`` counts the values folded so.
    """

    def __init__(self, specs: Iterable[FoldedSpec], cardinality_limit: int = DEFAULT_CARDINALITY_LIMIT) -> None:
        self._series: dict[FoldedSpec, dict[tuple[str, ...], _Series]] = {s: {} for s in specs}
        self._lock = threading.Lock()
        self.cardinality_limit = max(2, cardinality_limit)
        self.overflowed: dict[str, int] = {}  # instrument name -> values folded into the overflow set

    def record(self, values: Iterable[FoldedValue]) -> None:
        """Fold a batch of (spec, attribute values, value or increment) under one lock."""
        inf, bisect_left, series = math.inf, bisect.bisect_left, self._series
        with self._lock:
            for spec, key, value in values:
                if not 0 <= value < inf:
                    continue
                streams = series[spec]
                s = streams.get(key)
                if s is None:
                    s = self._new_series(spec, streams, key)
                s.sum += value
                bounds = spec.bounds
                if bounds is None:
                    continue
                s.counts[bisect_left(bounds, value)] += 1
                s.count += 1
                if value < s.min:
                    s.min = value
                if value > s.max:
                    s.max = value

    def _new_series(self, spec: FoldedSpec, streams: dict[tuple[str, ...], _Series], key: tuple[str, ...]) -> _Series:
        """The stream a new attribute set folds into: its own, or the overflow set past the cardinality limit."""
        if len(streams) >= self.cardinality_limit - 1:
            self.overflowed[spec.name] = self.overflowed.get(spec.name, 0) + 1
            s = streams.get(OVERFLOW_KEY)
            if s is None:
                s = streams[OVERFLOW_KEY] = _Series({sc.OTEL_METRIC_OVERFLOW: True}, spec.bounds)
            return s
        s = streams[key] = _Series(dict(zip(spec.keys, key, strict=True)), spec.bounds)
        return s

    def metrics(self) -> list[Metric]:
        """One SDK ``Metric`` per instrument that has values, as the SDK would collect it."""
        now = time.time_ns()
        out = []
        with self._lock:
            for spec, streams in self._series.items():
                if not streams:
                    continue
                data: Histogram | Sum
                if spec.bounds is None:
                    data = Sum([NumberDataPoint(dict(s.attributes), s.start, now, s.sum) for s in streams.values()],
                               AggregationTemporality.CUMULATIVE, is_monotonic=True)
                else:
                    data = Histogram([HistogramDataPoint(
                        attributes=dict(s.attributes), start_time_unix_nano=s.start, time_unix_nano=now,
                        count=s.count, sum=s.sum, bucket_counts=tuple(s.counts), explicit_bounds=spec.bounds,
                        min=s.min, max=s.max) for s in streams.values()], AggregationTemporality.CUMULATIVE)
                out.append(Metric(name=spec.name, description=spec.description, unit=spec.unit, data=data))
        return out

    def add_to(self, data: MetricsData, scope: InstrumentationScope) -> MetricsData:
        """``data`` with these metrics appended to ``scope``'s metrics in the first resource."""
        metrics = self.metrics()
        if not metrics or not data.resource_metrics:
            return data
        first, *rest = data.resource_metrics
        scopes = list(first.scope_metrics)
        for i, sm in enumerate(scopes):
            if sm.scope == scope:
                scopes[i] = ScopeMetrics(sm.scope, [*sm.metrics, *metrics], sm.schema_url)
                break
        else:
            scopes.append(ScopeMetrics(scope, metrics, scope.schema_url or ""))
        return MetricsData([ResourceMetrics(first.resource, scopes, first.schema_url), *rest])


class _PrometheusReader(PrometheusMetricReader):
    """The SDK's Prometheus reader, with ``add`` applied to each collection (``_receive_metrics`` is
    the hook the SDK documents for reader subclasses)."""

    def __init__(self, registry: CollectorRegistry, add: Callable[[MetricsData], MetricsData]) -> None:
        super().__init__(registry=registry)
        self._add = add

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> None:
        super()._receive_metrics(self._add(metrics_data) if metrics_data is not None else metrics_data,
                                 timeout_millis, **kwargs)


class _ForwardExporter(MetricExporter):
    """OTLP-encodes each collection (with ``add`` applied) and hands it to ``send`` (the processor's
    downstream exporter)."""

    def __init__(self, send: Callable[[Any], Any], add: Callable[[MetricsData], MetricsData]) -> None:
        super().__init__()
        self._send = send
        self._add = add

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        try:
            self._send(encode_metrics(self._add(metrics_data)))
        except Exception:
            return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


QUERIES = FoldedSpec(sc.METRIC_P_QUERIES, "{query}", "RAG queries processed, by service, model, status, latency.",
                     ("service", "model", "status", "latency_category"))
QUERY_DURATION = FoldedSpec(sc.METRIC_P_QUERY_DURATION, "s", "Whole RAG query duration (root span).",
                            ("service", "model", "status"), tuple(sc.DURATION_BUCKETS))
QUALITY_SCORE = FoldedSpec(sc.METRIC_P_QUALITY_SCORE, "1", "Quality score in [0,1] by axis (and overall), model.",
                           ("service", "model", "axis"), SCORE_BUCKETS)
TOKENS = FoldedSpec(sc.METRIC_P_TOKENS, "{token}", "Tokens by model and type.",
                    ("service", "model", sc.GEN_AI_TOKEN_TYPE))
# under the GenAI v0.1.0 opt-in, which dropped gen_ai.token.type: one counter per kind (see semconv_opt_in)
INPUT_TOKENS = FoldedSpec(sc.METRIC_P_INPUT_TOKENS, "{token}", "Input tokens by model.", ("service", "model"))
OUTPUT_TOKENS = FoldedSpec(sc.METRIC_P_OUTPUT_TOKENS, "{token}", "Output tokens by model.", ("service", "model"))
COST = FoldedSpec(sc.METRIC_P_COST, "USD", "Model cost in US dollars by model.", ("service", "model"))
SCORING_DURATION = FoldedSpec(sc.METRIC_P_SCORING_DURATION, "s", "Time to score one query, by evaluator.",
                              ("backend",), SCORING_BUCKETS)
FOLDED = (QUERIES, QUERY_DURATION, QUALITY_SCORE, TOKENS, COST, SCORING_DURATION)


class SlidingWindow:
    """Recent queries (time, seconds, error, user) for quantiles and rates; bounded in time and count."""

    def __init__(self, seconds: float = 300.0, max_items: int = 50_000, clock: Callable[[], float] = time.time):
        self.seconds = seconds
        self.clock = clock
        self._items: deque[tuple[float, float, bool, str | None]] = deque(maxlen=max_items)
        self._lock = threading.Lock()

    def add(self, at: float, seconds: float, error: bool, user: str | None) -> None:
        with self._lock:
            self._items.append((at, seconds, error, user))

    def _recent(self) -> list[tuple[float, float, bool, str | None]]:
        cutoff = self.clock() - self.seconds
        with self._lock:
            while self._items and self._items[0][0] < cutoff:
                self._items.popleft()
            return list(self._items)

    def quantiles(self, qs: Sequence[float] = QUANTILES) -> dict[float, float]:
        durations = sorted(d for _, d, _, _ in self._recent())
        if not durations:
            return {}
        n = len(durations)
        return {q: durations[min(n - 1, max(0, int(q * n + 0.5) - 1))] for q in qs}

    def error_rate(self) -> float | None:
        items = self._recent()
        return sum(1 for i in items if i[2]) / len(items) if items else None

    def per_minute(self) -> float:
        items = self._recent()
        times = [i[0] for i in items]
        cutoff = self.clock() - 60.0
        return float(len(times) - bisect.bisect_left(sorted(times), cutoff))

    def active_users(self) -> int:
        return len({i[3] for i in self._recent() if i[3]})


_GaugeCallback = Callable[[CallbackOptions], Iterable[Observation]]


class ServiceWindows:
    """One :class:`SlidingWindow` per service, so the window gauges carry a ``service`` label like
    every other query metric (a p99 or a distinct-user count cannot be split after the fact).
    A quiet service keeps reporting 0 queries per minute and 0 users (so "no traffic" alerts can
    fire); beyond ``max_services`` the one seen longest ago is forgotten (bounded cardinality)."""

    def __init__(self, seconds: float, clock: Callable[[], float], max_services: int = 1000) -> None:
        self.seconds, self.clock, self.max_services = seconds, clock, max_services
        self._windows: dict[str, SlidingWindow] = {}  # in order of last query
        self._lock = threading.Lock()

    def add(self, service: str, at: float, seconds: float, error: bool, user: str | None) -> None:
        with self._lock:
            w = self._windows.pop(service, None) or SlidingWindow(self.seconds, clock=self.clock)
            self._windows[service] = w  # moved to the end: the most recently seen
            if len(self._windows) > self.max_services:
                del self._windows[next(iter(self._windows))]
        w.add(at, seconds, error, user)

    def items(self) -> list[tuple[str, SlidingWindow]]:
        with self._lock:
            return list(self._windows.items())

    def observe(self, fn: Callable[[SlidingWindow], float | None]) -> _GaugeCallback:
        """A gauge callback: ``fn`` of each service's window, labelled with the service."""
        def cb(_o: CallbackOptions) -> Iterable[Observation]:
            return [Observation(float(v), {"service": service}) for service, w in self.items()
                    if (v := fn(w)) is not None]
        return cb


class DerivedMetrics:
    """Owns the processor's MeterProvider; ``meter`` is shared with the receiver and exporter."""

    def __init__(
        self,
        forward: Callable[[Any], Any] | None = None,
        *,
        export_interval: float = 10.0,
        window_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
        cardinality_limit: int = DEFAULT_CARDINALITY_LIMIT,
        metric_generations: tuple[bool, bool] | None = None,
    ) -> None:
        # (v1.41 token metric, v0.1.0 ones): OTEL_SEMCONV_STABILITY_OPT_IN of the processor's own process
        self.v1_41, self.v0_1 = metric_generations or semconv_opt_in.metric_generations()
        self.registry = CollectorRegistry(auto_describe=False)
        self.folded = FoldedMetrics(FOLDED + ((INPUT_TOKENS, OUTPUT_TOKENS) if self.v0_1 else ()), cardinality_limit)
        self._scope = InstrumentationScope(SCOPE, __version__)  # the scope get_meter(SCOPE, __version__) stamps
        readers: list[Any] = [_PrometheusReader(self.registry, self._with_folded)]
        if forward is not None:
            readers.append(PeriodicExportingMetricReader(
                _ForwardExporter(forward, self._with_folded), export_interval_millis=export_interval * 1000))
        resource = Resource.create({sc.SERVICE_NAME: PROCESSOR_SERVICE_NAME, "service.version": __version__})
        self.provider = MeterProvider(metric_readers=readers, resource=resource)
        self.meter: Meter = self.provider.get_meter(SCOPE, __version__)
        self.windows = ServiceWindows(window_seconds, clock=clock)
        self._gauges: dict[str, Callable[[], float | None]] = {}
        m = self.meter
        self._late = m.create_counter(sc.METRIC_P_LATE_SPANS, unit="{span}",
                                      description="Spans that arrived after their trace was flushed (sent as-is).")
        # Counted from 0 (rate() needs the first point), and it keeps every collection non-empty: the SDK
        # readers skip an empty collection, which would skip the folded metrics added to it too.
        self._late.add(0)
        m.create_observable_gauge(sc.METRIC_P_LATENCY, [self._observe_latency], unit="s",
                                  description="Query latency quantiles over the sliding window, by service.")
        m.create_observable_gauge(sc.METRIC_P_ERROR_RATE, [self.windows.observe(SlidingWindow.error_rate)],
                                  unit="1", description="Share of queries that failed, over the sliding window.")
        m.create_observable_gauge(sc.METRIC_P_QUERIES_PER_MINUTE, [self.windows.observe(SlidingWindow.per_minute)],
                                  unit="{query}", description="Queries in the last minute, by service.")
        m.create_observable_gauge(sc.METRIC_P_ACTIVE_USERS, [self.windows.observe(SlidingWindow.active_users)],
                                  unit="{user}", description="Distinct users over the sliding window, by service.")

    def _with_folded(self, data: MetricsData) -> MetricsData:
        return self.folded.add_to(data, self._scope)

    # --- health gauges the pipeline and alert engine feed ---------------------------------------
    # (received/refused are counted by the receiver, exported/retried/dropped and the export queue
    # depth by the exporter, all on this same meter)
    def health_gauges(self, queue_depth: Callable[[], float], traces_in_flight: Callable[[], float]) -> None:
        self.meter.create_observable_gauge(sc.METRIC_P_PIPELINE_QUEUE_DEPTH, [self._observe(queue_depth)],
                                           unit="{item}", description="Items received, not yet assembled.")
        self.meter.create_observable_gauge(sc.METRIC_P_TRACES_IN_FLIGHT, [self._observe(traces_in_flight)],
                                           unit="{trace}", description="Traces being assembled.")

    def fault_counters(self, stats: Callable[[], Any], bytes_in_flight: Callable[[], float]) -> None:
        """What the processor set aside or folded rather than lose silently (docs/processor.md, Reliability):
        ``stats()`` is the pipeline's :class:`~rag_otel.processor.pipeline.PipelineStats`."""
        def counter(field: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
            return lambda _o: [Observation(getattr(stats(), field))]
        m = self.meter
        m.create_observable_counter(sc.METRIC_P_TRACES_FAILED, [counter("failed_traces")], unit="{trace}",
                                    description="Traces a stage failed on: exported unscored, content stripped.")
        m.create_observable_counter(sc.METRIC_P_VALUES_REJECTED, [counter("rejected_values")], unit="{value}",
                                    description="Out-of-range values (tokens, cost) set aside at normalization.")
        m.create_observable_counter(
            sc.METRIC_P_METRIC_OVERFLOW, [lambda _o: [Observation(n, {"metric": name})
                                                      for name, n in list(self.folded.overflowed.items())]],
            unit="{value}", description="Values folded into otel.metric.overflow=true (cardinality limit reached).")
        m.create_observable_gauge(sc.METRIC_P_BYTES_IN_FLIGHT, [self._observe(bytes_in_flight)], unit="By",
                                  description="Encoded telemetry held, received and not yet exported (memory limit).")

    def store_gauges(self, buffered: Callable[[], float], up: Callable[[], float],
                     leader: Callable[[], Iterable[tuple[dict[str, str], float]]]) -> None:
        """The store writer's buffer, whether the store is reachable, and which fleet jobs this replica leads."""
        self.meter.create_observable_gauge(sc.METRIC_P_STORE_BUFFERED, [self._observe(buffered)], unit="{item}",
                                           description="Store writes accepted and not yet in the store.")
        self.meter.create_observable_gauge(sc.METRIC_P_STORE_UP, [self._observe(up)],
                                           description="1 while the store takes writes, 0 while it is unreachable.")

        def lead(_o: CallbackOptions) -> Iterable[Observation]:
            try:
                return [Observation(v, attrs) for attrs, v in leader()]
            except Exception:
                return []
        self.meter.create_observable_gauge(sc.METRIC_P_LEADER, [lead],
                                           description="1 for each fleet-wide job this replica leads.")

    def alerts_gauge(self, firing: Callable[[], Iterable[tuple[dict[str, str], float]]]) -> None:
        """``firing()`` yields (labels, 1) per firing alert; exported as rag.processor.alerts.firing."""
        def cb(_o: CallbackOptions) -> Iterable[Observation]:
            try:
                return [Observation(v, attrs) for attrs, v in firing()]
            except Exception:
                return []
        self.meter.create_observable_gauge(sc.METRIC_P_ALERTS_FIRING, [cb], unit="{alert}",
                                           description="Alerts currently firing, by rule and severity.")

    @staticmethod
    def _observe(fn: Callable[[], float | None]) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def cb(_o: CallbackOptions) -> Iterable[Observation]:
            v = fn()
            return [] if v is None else [Observation(float(v))]
        return cb

    def _observe_latency(self, _o: CallbackOptions) -> Iterable[Observation]:
        return [Observation(v, {"service": service, "quantile": str(q)})
                for service, w in self.windows.items() for q, v in w.quantiles().items()]

    # --- per query -------------------------------------------------------------------------------
    def record_query(self, record: QueryRecord, usage: Sequence[ModelUsage]) -> None:
        self.record_queries([(record, usage)])

    def record_queries(self, batch: Sequence[tuple[QueryRecord, Sequence[ModelUsage]]]) -> None:
        """Record a batch of queries: every counter increment and histogram value is folded in one go."""
        values: list[FoldedValue] = []
        add = values.append
        v1_41, v0_1 = self.v1_41, self.v0_1
        token_in, token_out, window = sc.TOKEN_TYPE_INPUT, sc.TOKEN_TYPE_OUTPUT, self.windows.add
        for record, usage in batch:
            service, model, status = record.service, record.model or "unknown", record.status
            add((QUERIES, (service, model, status, record.latency_category or ""), 1))
            add((QUERY_DURATION, (service, model, status), record.duration_s))
            q = record.quality
            if q is not None and q.status == "scored":
                for axis, s in q.axes.items():
                    add((QUALITY_SCORE, (service, model, axis), s.score))
                if q.overall is not None:
                    add((QUALITY_SCORE, (service, model, "overall"), q.overall))
            for u in usage:
                if n := u.input_tokens:
                    if v1_41:
                        add((TOKENS, (service, u.model, token_in), int(n)))
                    if v0_1:
                        add((INPUT_TOKENS, (service, u.model), int(n)))
                if n := u.output_tokens:
                    if v1_41:
                        add((TOKENS, (service, u.model, token_out), int(n)))
                    if v0_1:
                        add((OUTPUT_TOKENS, (service, u.model), int(n)))
                if u.cost_usd:
                    add((COST, (service, u.model), u.cost_usd))
            window(service, record.end_time, record.duration_s, status == "error", record.user_id)
        self.folded.record(values)

    def record_late_spans(self, n: int) -> None:
        self._late.add(n)

    def record_scoring(self, seconds: float, evaluator: str) -> None:
        self.folded.record(((SCORING_DURATION, (evaluator or "unknown",), seconds),))

    # --- output ----------------------------------------------------------------------------------
    def prometheus_text(self) -> bytes:
        """The /metrics body (Prometheus text format)."""
        return generate_latest(self.registry)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Final collection goes downstream (the exporter must still be running).  Never raises: with no time
        left the SDK raises "deadline already exceeded", and stopping must go on to the exporter."""
        try:
            self.provider.shutdown(timeout_millis=max(timeout, 0.001) * 1000)
        except Exception as e:
            logging.getLogger("rag_otel.processor").warning("rag-otel serve: the final metric collection "
                                                            "did not run: %s", e)
