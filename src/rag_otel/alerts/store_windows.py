"""A rule's window read from the store: the same :class:`Summary` the in-memory windows keep, from SQL.

Fleet-wide rules (``scope: fleet``) are judged over every replica's records, which only the store
has.  Each evaluation asks DuckDB for the window's totals (one aggregate query per rule, over the
lake or the file alike), so every metric function of :mod:`rag_otel.alerts.metrics` applies as it
is.  Windows are keyed by a query's end time, as in memory; percentiles are exact over any window
(``quantile_cont``, the linear interpolation the exact in-memory windows use).
"""

from __future__ import annotations

import math
from typing import Any

from rag_otel.alerts.metrics import BOUNDS, QUALITY_FIELDS, SYSTEM_FIELDS, Summary
from rag_otel.alerts.rules import CompiledRule
from rag_otel.config import ConfigError
from rag_otel.store.store import utc

# Rule filter -> the store column it compares with (as text).  ``instrumentation`` is not stored.
QUERY_COLUMNS = {"service": "service", "model": "model", "provider": "provider", "status": "status",
                 "category": "category", "topic": "topic", "user": "user_id", "latency_category": "latency_category"}
SYSTEM_COLUMNS = {"service": "service", "host": "host"}
QUANTILES = (0.5, 0.95, 0.99)
_END = "(ts + to_microseconds(CAST(round(duration_s * 1000000) AS BIGINT)))"  # a query's end time
_LONGEST = 6 * 3600  # seconds a query may run: bounds the scan by its start time (ts) as well


class StoreSummary(Summary):
    """A summary whose percentiles the database computed (no durations are fetched)."""

    __slots__ = ("quantiles",)

    def quantile(self, q: float) -> float | None:
        return self.quantiles.get(q) if self.n > 0 else None


def check(rule: CompiledRule) -> None:
    """Refuse a fleet rule whose filters the store cannot apply (named in the error)."""
    columns = SYSTEM_COLUMNS if rule.metric.kind == "system" else QUERY_COLUMNS
    bad = sorted(k for k, _ in rule.filters if k not in columns)
    if bad:
        raise ConfigError(f"alert rule {rule.name!r}: filter {', '.join(bad)} is not in the store, so a fleet-wide "
                          f"rule cannot use it; use scope: replica or one of: {', '.join(columns)}")


def _where(rule: CompiledRule, columns: dict[str, str]) -> tuple[str, list[Any]]:
    sql, params = "", []
    for key, want in rule.filters:
        sql += f" AND CAST({columns[key]} AS VARCHAR) = ?"
        params.append(want)
    return sql, params


def _hist() -> str:
    parts, lo = [], None
    for b in (*BOUNDS, None):  # bisect_left: a duration equal to a bound is in that bound's bucket
        cond = " AND ".join(c for c in (f"duration_s > {lo}" if lo is not None else "",
                                         f"duration_s <= {b}" if b is not None else "") if c) or "true"
        parts.append(f"count(*) FILTER (WHERE {cond})")
        lo = b
    return ", ".join(parts)


_SCORED = "q_status = 'scored'"
_QUERY_SELECT = ", ".join([
    "count(*)", "count(*) FILTER (WHERE status = 'error')", "coalesce(sum(duration_s), 0)", _hist(),
    "count(cost_usd)", "coalesce(sum(cost_usd), 0)",
    "coalesce(sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)), 0)",
    *[f"count(q_{f}) FILTER (WHERE {_SCORED}), coalesce(sum(q_{f}) FILTER (WHERE {_SCORED}), 0)"
      for f in QUALITY_FIELDS],
    f"count(*) FILTER (WHERE {_SCORED} AND q_grade IS NOT NULL)",
    f"count(*) FILTER (WHERE {_SCORED} AND q_grade = 'poor')",
    "count(DISTINCT user_id)",
    f"quantile_cont(duration_s, [{', '.join(map(str, QUANTILES))}])",
])
_SYSTEM_SELECT = ", ".join(f"count({f}), coalesce(sum({f}), 0)" for f in SYSTEM_FIELDS)


def summary(store: Any, rule: CompiledRule, start: float, end: float) -> StoreSummary:
    """Totals of the rule's records (or system samples) with end time in ``(start, end]``."""
    s = StoreSummary()
    s.quantiles = {}
    if rule.metric.kind == "system":
        where, params = _where(rule, SYSTEM_COLUMNS)
        row = store.sql(f"SELECT {_SYSTEM_SELECT} FROM system_samples WHERE ts > ? AND ts <= ?{where}",
                        [utc(start), utc(end), *params])[0]
        for i in range(len(SYSTEM_FIELDS)):
            s.s_n[i], s.s_sum[i] = int(row[2 * i]), float(row[2 * i + 1])
        return s
    where, params = _where(rule, QUERY_COLUMNS)
    row = store.sql(f"SELECT {_QUERY_SELECT} FROM queries WHERE ts > ? AND ts <= ? AND {_END} > ? AND {_END} <= ?"
                    f"{where}", [utc(start - _LONGEST), utc(end), utc(start), utc(end), *params])[0]
    it = iter(row)
    s.n, s.errors, s.dur_sum = int(next(it)), int(next(it)), float(next(it))
    s.hist = [int(next(it)) for _ in range(len(BOUNDS) + 1)]
    s.cost_n, s.cost_sum, s.tokens = int(next(it)), float(next(it)), int(next(it))
    for i in range(len(QUALITY_FIELDS)):
        s.q_n[i], s.q_sum[i] = int(next(it)), float(next(it))
    s.graded_n, s.poor_n, s.users = int(next(it)), int(next(it)), int(next(it))
    s.quantiles = dict(zip(QUANTILES, next(it) or [], strict=False))
    return s


def users_mean(store: Any, rule: CompiledRule, start: float, end: float) -> tuple[float | None, int]:
    """Mean distinct users per rule-window-sized chunk wholly inside ``[start, end)`` (chunks with users)."""
    width = rule.window
    lo, hi = math.ceil(start / width) * width, math.floor(end / width) * width
    if hi <= lo:
        return None, 0
    where, params = _where(rule, QUERY_COLUMNS)
    rows = store.sql(f"SELECT count(DISTINCT user_id) AS u FROM queries WHERE ts > ? AND ts < ? AND {_END} >= ? "
                     f"AND {_END} < ? AND user_id IS NOT NULL{where} "
                     f"GROUP BY floor(epoch({_END}) / {width})",
                     [utc(lo - _LONGEST), utc(hi), utc(lo), utc(hi), *params])
    counts = [r[0] for r in rows if r[0]]
    return (sum(counts) / len(counts) if counts else None), len(counts)
