"""Small shared pieces of the analytics SQL: filters, group summaries, histogram percentiles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rag_otel.analytics.period import Period
from rag_otel.store.schema import HIST_COLUMNS, LATENCY_BOUNDS
from rag_otel.store.store import LEVELS, Store, utc

# The model label of queries that made no model call (e.g. failed before one): one label everywhere.
NO_MODEL = "(no model)"


def where(period: Period, *, col: str = "ts", **filters: Any) -> tuple[str, list[Any]]:
    """``WHERE`` over the period plus equality filters that are set (service, model, user_id...)."""
    parts, params = [f"{col} >= ?", f"{col} < ?"], [period.start, period.end]
    for k, v in filters.items():
        if v is not None:
            parts.append(f"{k} = ?")
            params.append(v)
    return "WHERE " + " AND ".join(parts), params


def r(x: Any, nd: int = 6) -> Any:
    """Round floats for output; None stays None."""
    return None if x is None else round(float(x), nd)


def share(part: float, whole: float) -> float | None:
    return round(part / whole, 6) if whole else None


def use_rollups(store: Store, period: Period, source: str, now: datetime | None = None) -> str | None:
    """The rollup level to read, or None for raw rows.

    ``auto`` reads rollups only when the period starts before the raw-row retention cutoff
    (older raw rows are gone); the finest configured level is used, for the closest fit.
    """
    if source == "raw" or not store.levels:
        return None
    if source == "auto" and period.start >= store.raw_cutoff(now or utc_now()):
        return None
    for level in ("hourly", "daily", "weekly"):
        if level in store.levels:
            return level
    return None


def utc_now() -> datetime:
    import time

    return utc(time.time())


def rollup_where(period: Period, level: str, **filters: Any) -> tuple[str, list[Any]]:
    """Buckets whose start lies in the period (the first partial bucket is included whole)."""
    parts = ["level = ?", f"bucket >= date_trunc('{LEVELS[level]}', ?::TIMESTAMP)", "bucket < ?"]
    params: list[Any] = [level, period.start, period.end]
    for k, v in filters.items():
        if v is not None:
            parts.append(f"{k} = ?")
            params.append(v)
    return "WHERE " + " AND ".join(parts), params


HIST_SUMS = ", ".join(f"sum({h})" for h in HIST_COLUMNS)


def hist_quantile(counts: Sequence[int], q: float, max_value: float | None) -> float | None:
    """Percentile estimated from latency bucket counts, linear within the bucket."""
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    seen, lo = 0, 0.0
    for i, c in enumerate(counts):
        hi = LATENCY_BOUNDS[i] if i < len(LATENCY_BOUNDS) else (max_value or lo)
        if c and seen + c >= rank:
            return min(lo + (hi - lo) * (rank - seen) / c, max_value if max_value is not None else hi)
        seen += c
        lo = hi
    return max_value


def hist_at_most(counts: Sequence[int], threshold: float) -> int:
    """Rows in buckets whose upper bound is <= threshold (exact when the threshold is a bound)."""
    return sum(c for c, b in zip(counts, LATENCY_BOUNDS, strict=False) if b <= threshold)


def timeline_unit(period: Period) -> str:
    return "hour" if period.days <= 2 else "day"


# Timeline bucket widths (seconds), finest first; the finest that keeps the chart readable is used.
BUCKET_WIDTHS: tuple[int, ...] = (60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400)
MAX_BUCKETS = 120


def bucket_width(store: Store, period: Period, w: str, p: list[Any], *, table: str = "queries", col: str = "ts",
                 at_least: int = 60) -> int:
    """Seconds per timeline bucket: the finest width giving at most ``MAX_BUCKETS`` over the span the
    data covers in the period (minutes for an hour; never one bucket for data spread over time:
    a 7-day range whose queries all came in the last ten minutes is drawn per minute)."""
    lo, hi = store.sql(f"SELECT min({col}), max({col}) FROM {table} {w}", p)[0]
    span = (hi - lo).total_seconds() if lo is not None and hi is not None else 0.0
    span = min(span, (period.end - period.start).total_seconds())
    for width in BUCKET_WIDTHS:
        if width >= at_least and span / width <= MAX_BUCKETS:
            return width
    return BUCKET_WIDTHS[-1]


def bucket_sql(width: int, col: str = "ts") -> str:
    """The bucket start of ``col`` (UTC; day and longer buckets start at midnight, weeks on Monday)."""
    return f"time_bucket(INTERVAL '{int(width)} seconds', {col}, TIMESTAMP '2000-01-03')"
