"""The metrics an alert rule can name, as pure functions over what happened in a window.

A rule's metric is computed from a :class:`Summary`: additive totals (counts, sums, a latency
histogram) of the query records and system samples in a window.  ``summarize`` builds one from
plain lists, so every metric is a pure function of records; :mod:`rag_otel.alerts.windows`
keeps the same summaries incrementally so evaluation never rescans a window.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from sortedcontainers import SortedList

from rag_otel import semconv
from rag_otel.records import QueryRecord, SystemSample

QUALITY_FIELDS = (*semconv.QUALITY_AXES, "overall")
SYSTEM_FIELDS = ("cpu_percent", "memory_percent", "disk_percent", "health_score")
BOUNDS = semconv.DURATION_BUCKETS  # the same buckets the processor's latency histogram uses
_AXES = tuple(semconv.QUALITY_AXES)


@dataclass(slots=True)
class QueryPoint:
    """The few fields of a QueryRecord that rules need: what a window keeps instead of the record."""

    t: float
    duration: float
    error: bool
    cost: float | None
    tokens: int
    user: str | None
    quality: tuple[float | None, ...] | None  # QUALITY_FIELDS order; None when not scored
    poor: bool | None  # None when ungraded
    bucket: int = 0  # index of the latency histogram bucket, found once rather than per window

    @classmethod
    def of(cls, r: QueryRecord) -> QueryPoint:
        q = r.quality
        quality: tuple[float | None, ...] | None = None
        poor: bool | None = None
        if q is not None and q.status == "scored":
            axes = q.axes
            quality = (*[s.score if (s := axes.get(a)) is not None else None for a in _AXES], q.overall)
            poor = None if q.grade is None else q.grade == "poor"
        duration = r.duration_s
        # positional: once per query record, and keywords cost a third of the call
        return cls(r.end_time, duration, r.status == "error", r.cost_usd, r.input_tokens + r.output_tokens,
                   r.user_id, quality, poor, bisect.bisect_left(BOUNDS, duration))


@dataclass(slots=True)
class SystemPoint:
    t: float
    values: tuple[float | None, ...]  # SYSTEM_FIELDS order

    @classmethod
    def of(cls, s: SystemSample) -> SystemPoint:
        return cls(t=s.time, values=tuple(getattr(s, f) for f in SYSTEM_FIELDS))


Point = QueryPoint | SystemPoint


class Summary:
    """Additive totals of a window.  ``add(p, -1)`` removes a point, so sliding windows stay O(1).

    ``exact`` keeps the window's durations sorted for exact percentiles; summaries merged from
    minute buckets answer percentiles from the histogram instead (as Prometheus does).
    """

    __slots__ = (
        "cost_n", "cost_sum", "dur_sum", "durations", "errors", "graded_n", "hist", "n", "poor_n",
        "q_n", "q_sum", "s_n", "s_sum", "tokens", "users",
    )

    def __init__(self, exact: bool = False) -> None:
        self.n = 0
        self.errors = 0
        self.dur_sum = 0.0
        self.hist = [0] * (len(BOUNDS) + 1)
        self.durations: SortedList | None = SortedList() if exact else None
        self.cost_n = 0
        self.cost_sum = 0.0
        self.tokens = 0
        self.q_n = [0] * len(QUALITY_FIELDS)
        self.q_sum = [0.0] * len(QUALITY_FIELDS)
        self.graded_n = 0
        self.poor_n = 0
        self.s_n = [0] * len(SYSTEM_FIELDS)
        self.s_sum = [0.0] * len(SYSTEM_FIELDS)
        self.users: int | None = None  # distinct users, set by whoever can count them

    def add(self, p: Point, sign: int = 1) -> None:
        if type(p) is SystemPoint:
            s_n, s_sum = self.s_n, self.s_sum
            for i, v in enumerate(p.values):
                if v is not None:
                    s_n[i] += sign
                    s_sum[i] += sign * v
            return
        self.n += sign
        if p.error:
            self.errors += sign
        self.dur_sum += sign * p.duration
        self.hist[p.bucket] += sign
        if self.durations is not None:
            if sign > 0:
                self.durations.add(p.duration)
            else:
                self.durations.remove(p.duration)
        if p.cost is not None:
            self.cost_n += sign
            self.cost_sum += sign * p.cost
        self.tokens += sign * p.tokens
        if p.quality is not None:
            q_n, q_sum = self.q_n, self.q_sum
            for i, v in enumerate(p.quality):
                if v is not None:
                    q_n[i] += sign
                    q_sum[i] += sign * v
        if p.poor is not None:
            self.graded_n += sign
            if p.poor:
                self.poor_n += sign
        if self.n == 0:  # an empty window has exact zeros, whatever float drift add/remove left
            self.dur_sum = self.cost_sum = 0.0
            self.q_sum = [0.0] * len(QUALITY_FIELDS)

    def merge(self, o: Summary) -> None:
        """Add another (bucket) summary's totals; exact durations and users do not merge."""
        self.n += o.n
        self.errors += o.errors
        self.dur_sum += o.dur_sum
        self.cost_n += o.cost_n
        self.cost_sum += o.cost_sum
        self.tokens += o.tokens
        self.graded_n += o.graded_n
        self.poor_n += o.poor_n
        for mine, theirs in ((self.hist, o.hist), (self.q_n, o.q_n), (self.q_sum, o.q_sum),
                             (self.s_n, o.s_n), (self.s_sum, o.s_sum)):
            for i, v in enumerate(theirs):
                if v:
                    mine[i] += v

    def quantile(self, q: float) -> float | None:
        """Exact (linear interpolation) when durations are kept, else Prometheus' histogram_quantile."""
        if self.n <= 0:
            return None
        if self.durations is not None:
            pos = q * (len(self.durations) - 1)
            lo = math.floor(pos)
            a = self.durations[lo]
            b = self.durations[min(lo + 1, len(self.durations) - 1)]
            return a + (b - a) * (pos - lo)
        return histogram_quantile(q, self.hist)


def histogram_quantile(q: float, counts: list[int]) -> float | None:
    """Prometheus' interpolation within the bucket holding rank ``q * total`` (buckets over BOUNDS)."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    cum = 0
    for i, c in enumerate(counts):
        if cum + c >= rank and c > 0:
            if i == len(BOUNDS):  # +Inf bucket: the highest finite bound, like Prometheus
                return BOUNDS[-1]
            lower = 0.0 if i == 0 else BOUNDS[i - 1]
            return lower + (BOUNDS[i] - lower) * ((rank - cum) / c)
        cum += c
    return BOUNDS[-1]


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


Kind = Literal["query", "system"]
# How a baseline range (often days) is made comparable with a rule's window (often minutes):
# "mean" values compare as they are, "total" ones are scaled to the rule's window length,
# "users" are the mean distinct users per rule-window-sized chunk of the baseline range.
Scale = Literal["mean", "total", "users"]


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    kind: Kind
    unit: str
    description: str
    value: Callable[[Summary, float], float | None]  # (summary, window seconds) -> value or no data
    samples: Callable[[Summary], int]  # how many observations the value rests on (for min_samples)
    scale: Scale = "mean"
    # A record's own contribution, so the pipeline marks only the queries that push an alert.
    per_record: Callable[[QueryPoint], float | None] | None = None
    quantile: bool = False  # needs the window's durations kept sorted (exact percentiles)


def _quality(i: int, name: str) -> Metric:
    field = QUALITY_FIELDS[i]
    return Metric(
        name, "query", "1", f"mean {field} quality score of scored queries",
        lambda s, _w: _ratio(s.q_sum[i], s.q_n[i]), lambda s: s.q_n[i],
        per_record=lambda p: None if p.quality is None else p.quality[i],
    )


def _system(i: int, name: str, unit: str) -> Metric:
    return Metric(
        name, "system", unit, f"mean {SYSTEM_FIELDS[i].replace('_', ' ')} of the system samples apps sent",
        lambda s, _w: _ratio(s.s_sum[i], s.s_n[i]), lambda s: s.s_n[i],
    )


def _percentile(q: float) -> Metric:
    return Metric(
        f"p{round(q * 100)}_response_time", "query", "s", f"{round(q * 100)}th percentile query duration",
        lambda s, _w: s.quantile(q), lambda s: s.n, per_record=lambda p: p.duration, quantile=True,
    )


_ALL: list[Metric] = [
    Metric("average_response_time", "query", "s", "mean query duration",
           lambda s, _w: _ratio(s.dur_sum, s.n), lambda s: s.n, per_record=lambda p: p.duration),
    _percentile(0.5), _percentile(0.95), _percentile(0.99),
    Metric("error_rate", "query", "1", "share of queries that ended in error",
           lambda s, _w: _ratio(s.errors, s.n), lambda s: s.n, per_record=lambda p: float(p.error)),
    Metric("success_rate", "query", "1", "share of queries that succeeded",
           lambda s, _w: None if s.n <= 0 else 1 - s.errors / s.n, lambda s: s.n,
           per_record=lambda p: float(not p.error)),
    Metric("queries_per_minute", "query", "1/min", "queries per minute over the window (0 with no traffic)",
           lambda s, w: s.n * 60.0 / w, lambda s: s.n),
    _quality(4, "quality_overall"),
    _quality(0, "quality_accuracy"),
    _quality(1, "quality_completeness"),
    _quality(2, "quality_relevance"),
    _quality(3, "quality_consistency"),
    Metric("poor_quality_rate", "query", "1", "share of graded queries graded poor",
           lambda s, _w: _ratio(s.poor_n, s.graded_n), lambda s: s.graded_n,
           per_record=lambda p: None if p.poor is None else float(p.poor)),
    Metric("unscored_rate", "query", "1", "share of queries without a quality score (scorer failed, timed out, "
           "skipped or no content captured)",
           lambda s, _w: None if s.n <= 0 else 1 - s.q_n[4] / s.n, lambda s: s.n,
           per_record=lambda p: float(p.quality is None or p.quality[4] is None)),
    Metric("cost_total", "query", "USD", "model cost of the window's queries",
           lambda s, _w: s.cost_sum, lambda s: s.cost_n, scale="total"),
    Metric("cost_per_query", "query", "USD", "mean cost of queries with a known cost",
           lambda s, _w: _ratio(s.cost_sum, s.cost_n), lambda s: s.cost_n, per_record=lambda p: p.cost),
    Metric("tokens_total", "query", "{token}", "input + output tokens of the window's queries",
           lambda s, _w: float(s.tokens), lambda s: s.n, scale="total"),
    Metric("active_users", "query", "{user}", "distinct users with a query in the window",
           lambda s, _w: None if s.users is None else float(s.users), lambda s: s.n, scale="users"),
    _system(0, "cpu_percent", "%"),
    _system(1, "memory_percent", "%"),
    _system(2, "disk_percent", "%"),
    _system(3, "health_score", "0-100"),
]
METRICS: dict[str, Metric] = {m.name: m for m in _ALL}

# Labels a rule may filter on, and where each lives on a record / a system sample.
QUERY_FILTERS: dict[str, Callable[[QueryRecord], object]] = {
    "service": lambda r: r.service,
    "model": lambda r: r.model,
    "provider": lambda r: r.provider,
    "status": lambda r: r.status,
    "category": lambda r: r.category,
    "topic": lambda r: r.topic,
    "user": lambda r: r.user_id,
    "instrumentation": lambda r: r.instrumentation,
    "latency_category": lambda r: r.latency_category,
}
SYSTEM_FILTERS: dict[str, Callable[[SystemSample], object]] = {
    "service": lambda s: s.service,
    "host": lambda s: s.host,
}


def matches(filters: Iterable[tuple[str, str]], item: QueryRecord | SystemSample) -> bool:
    """All filters equal (as strings) the item's labels; an item without the label never matches."""
    table = SYSTEM_FILTERS if isinstance(item, SystemSample) else QUERY_FILTERS
    for key, want in filters:
        got = table[key](item)
        if got is None or str(got) != want:
            return False
    return True


def summarize(records: Iterable[QueryRecord] = (), samples: Iterable[SystemSample] = ()) -> Summary:
    """The summary of plain records and samples: what every metric is a function of."""
    s = Summary(exact=True)
    users: set[str] = set()
    for r in records:
        s.add(QueryPoint.of(r))
        if r.user_id is not None:
            users.add(r.user_id)
    for x in samples:
        s.add(SystemPoint.of(x))
    s.users = len(users)
    return s


def compute(
    metric: str, window_s: float, records: Iterable[QueryRecord] = (), samples: Iterable[SystemSample] = ()
) -> float | None:
    """A metric's value over the records and samples of one window (None: no data)."""
    return METRICS[metric].value(summarize(records, samples), window_s)
