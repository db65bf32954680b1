"""Performance and quality analytics (raw rows; performance reads rollups for long ranges)."""

from __future__ import annotations

from typing import Any

from rag_otel.analytics._common import (
    HIST_SUMS,
    NO_MODEL,
    bucket_sql,
    bucket_width,
    hist_at_most,
    hist_quantile,
    r,
    rollup_where,
    share,
    use_rollups,
    where,
)
from rag_otel.analytics.period import Period
from rag_otel.records import NO_CONTENT_HINT
from rag_otel.semconv import QUALITY_AXES
from rag_otel.store.store import Store

_GROUP = """count(*) AS count, count(*) FILTER (WHERE status = 'error') AS errors,
    avg(duration_s) AS avg, quantile_cont(duration_s, [0.5, 0.95, 0.99]) AS q, max(duration_s) AS max"""


def _summary(row: tuple) -> dict[str, Any]:
    n, errors, avg, q, mx = row[:5]
    q = q or [None, None, None]
    return {"count": n, "errors": errors, "success_rate": share(n - errors, n), "avg_latency_s": r(avg),
            "p50_latency_s": r(q[0]), "p95_latency_s": r(q[1]), "p99_latency_s": r(q[2]), "max_latency_s": r(mx)}


def performance(store: Store, period: Period, *, service: str | None = None, model: str | None = None,
                source: str = "auto") -> dict[str, Any]:
    """Latency and success over the period.

    Returns ``{period, source ("raw" | "rollup:<level>"), total, errors, success_rate, avg_latency_s,
    p50/p95/p99/max_latency_s, avg_ttfc_s, latency_categories {excellent, good, acceptable, poor} (as the
    processor labelled each query when it came in), over_acceptable (queries slower than this reader's
    ``acceptable`` threshold),
    by_category [{category, count, errors, success_rate, avg/p50/p95/p99/max_latency_s}], by_model [...],
    by_service [...], timeline [{bucket, count, ..., same fields}], bucket_s}``: timeline buckets are
    ``bucket_s`` seconds wide, the finest width that gives at most 120 over the span the data covers
    (see :func:`~rag_otel.analytics._common.bucket_width`).  Percentiles from rollups are
    estimated from latency buckets; ``source`` may force ``raw`` or ``rollup``.
    """
    level = use_rollups(store, period, source)
    if level is not None:
        return _performance_rollup(store, period, level, service=service, model=model)
    w, p = where(period, service=service, model=model)
    t = store.config.performance_monitoring.latency_thresholds
    total = store.sql(f"SELECT {_GROUP}, avg(ttfc_s), count(*) FILTER (WHERE duration_s > {t.acceptable}) "
                      f"FROM queries {w}", p)[0]
    # One source of thresholds: the category the processor gave each query when it came in (with its
    # config), so a report and `rag-otel analytics` with another config read the same; the thresholds
    # here only fill in rows stored without one.
    cats = store.sql(f"""SELECT coalesce(latency_category, CASE WHEN duration_s <= {t.excellent} THEN 'excellent'
        WHEN duration_s <= {t.good} THEN 'good' WHEN duration_s <= {t.acceptable} THEN 'acceptable'
        ELSE 'poor' END), count(*) FROM queries {w} GROUP BY 1""", p)

    def groups(dim: str) -> list[dict[str, Any]]:
        none = NO_MODEL if dim == "model" else "unknown"
        rows = store.sql(f"SELECT coalesce({dim}, '{none}'), {_GROUP} FROM queries {w} GROUP BY 1 ORDER BY 2 DESC, 1",
                         p)
        return [{dim: row[0], **_summary(row[1:])} for row in rows]

    width = bucket_width(store, period, w, p)
    tl = store.sql(f"SELECT {bucket_sql(width)}, {_GROUP} FROM queries {w} GROUP BY 1 ORDER BY 1", p)
    out = {"period": period.to_dict(), "source": "raw", **_totals(_summary(total)), "avg_ttfc_s": r(total[5]),
           "bucket_s": width,
           "latency_categories": {k: 0 for k in ("excellent", "good", "acceptable", "poor")} | dict(cats),
           "over_acceptable": total[6],
           "by_category": groups("category"), "by_model": groups("model"), "by_service": groups("service"),
           "timeline": [{"bucket": _iso(row[0]), **_summary(row[1:])} for row in tl]}
    return out


def _totals(s: dict[str, Any]) -> dict[str, Any]:
    s = dict(s)
    s["total"] = s.pop("count")
    return s


def _iso(d: Any) -> str:
    from rag_otel.store.store import jsonable

    return jsonable(d)


def _hist_summary(row: tuple) -> dict[str, Any]:
    n, errors, lsum, lmax, *hist = row
    n = int(n or 0)
    hist = [int(x or 0) for x in hist]  # sums over no rollup rows are NULL
    return {"count": n, "errors": int(errors or 0), "success_rate": share(n - (errors or 0), n),
            "avg_latency_s": r(lsum / n) if n else None, "p50_latency_s": r(hist_quantile(hist, 0.5, lmax)),
            "p95_latency_s": r(hist_quantile(hist, 0.95, lmax)), "p99_latency_s": r(hist_quantile(hist, 0.99, lmax)),
            "max_latency_s": r(lmax)}


def _performance_rollup(store: Store, period: Period, level: str, **filters: Any) -> dict[str, Any]:
    w, p = rollup_where(period, level, **filters)
    agg = f"sum(n), sum(errors), sum(latency_sum), max(latency_max), {HIST_SUMS}"
    total = store.sql(f"SELECT {agg} FROM rollups {w}", p)[0]
    t = store.config.performance_monitoring.latency_thresholds
    hist = [int(x or 0) for x in total[4:]]
    n_ex, n_good, n_acc = (hist_at_most(hist, x) for x in (t.excellent, t.good, t.acceptable))

    def groups(dim: str) -> list[dict[str, Any]]:
        rows = store.sql(f"SELECT nullif({dim}, ''), {agg} FROM rollups {w} GROUP BY 1 ORDER BY 2 DESC, 1", p)
        return [{dim: row[0] or (NO_MODEL if dim == "model" else "unknown"), **_hist_summary(row[1:])} for row in rows]

    level_s = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400}[level]
    width = bucket_width(store, period, w, p, table="rollups", col="bucket", at_least=level_s)
    tl = store.sql(f"SELECT {bucket_sql(width, 'bucket')}, {agg} FROM rollups {w} GROUP BY 1 ORDER BY 1", p)
    return {"period": period.to_dict(), "source": f"rollup:{level}", **_totals(_hist_summary(total)),
            "avg_ttfc_s": None, "bucket_s": width,
            "latency_categories": {"excellent": n_ex, "good": n_good - n_ex, "acceptable": n_acc - n_good,
                                   "poor": sum(hist) - n_acc},
            "over_acceptable": sum(hist) - n_acc,
            "by_category": groups("category"), "by_model": groups("model"), "by_service": groups("service"),
            "timeline": [{"bucket": _iso(row[0]), **_hist_summary(row[1:])} for row in tl]}


def quality(store: Store, period: Period, *, service: str | None = None, model: str | None = None,
            worst: int = 10) -> dict[str, Any]:
    """Quality scores over the period (raw rows).

    Returns ``{period, queries, scored, overall {avg, p10, p50, p90, n, histogram[10], labels {good, fair,
    poor}}, axes {axis: same without the percentiles}, grades {grade: n}, statuses {status: n},
    worst [{trace_id, query_id, ts, q_overall, model, category, topic, query_text}], trend [{bucket, avg_overall, n}],
    by_model [{model, n, avg_overall, <axis>: avg}]}``.  Histogram bins are tenths of [0, 1]; labels use
    ``quality_assessment.grade_thresholds``.
    """
    w, p = where(period, service=service, model=model)
    good = store.config.quality_assessment.grade_thresholds.get("good", 0.7)
    fair = store.config.quality_assessment.grade_thresholds.get("fair", 0.4)
    cols = ["q_overall", *(f"q_{a}" for a in QUALITY_AXES)]
    # One wide pass: every column's aggregates side by side (an UNPIVOT to rows was 3x slower).
    # Exact percentiles only for the overall score: each one is a sort, 5 of them doubled the cost.
    per_col = ", ".join(
        f"count({c}), avg({c}), count(*) FILTER (WHERE {c} >= {good}), "
        f"count(*) FILTER (WHERE {c} >= {fair} AND {c} < {good}), count(*) FILTER (WHERE {c} < {fair}), "
        f"histogram(CASE WHEN {c} >= 0.9 THEN 9 ELSE floor({c} * 10)::INT END)" for c in cols)  # NULL stays NULL
    wide = store.sql(f"SELECT {per_col}, quantile_cont(q_overall, [0.1, 0.5, 0.9]) FROM queries {w}", p)[0]
    summary: dict[str, dict[str, Any]] = {}
    for i, c in enumerate(cols):
        n, avg, ng, nf, npoor, hist = wide[6 * i: 6 * i + 6]
        summary[c] = {"n": n, "avg": r(avg), "histogram": [int((hist or {}).get(b, 0)) for b in range(10)],
                      "labels": {"good": ng, "fair": nf, "poor": npoor}}
    q = wide[-1] or [None, None, None]
    summary["q_overall"].update(p10=r(q[0]), p50=r(q[1]), p90=r(q[2]))
    counts = store.sql(f"SELECT count(*), count(q_overall) FROM queries {w}", p)[0]
    grades = dict(store.sql(f"SELECT q_grade, count(*) FROM queries {w} AND q_grade IS NOT NULL GROUP BY 1", p))
    statuses = dict(store.sql(f"SELECT coalesce(q_status, 'none'), count(*) FROM queries {w} GROUP BY 1", p))
    worst_rows = store.dicts(f"""SELECT trace_id, query_id, ts, q_overall, model, category, topic, query_text
        FROM queries {w} AND q_overall IS NOT NULL ORDER BY q_overall ASC, ts DESC LIMIT ?""", [*p, worst])
    trend = store.sql(f"""SELECT {bucket_sql(bucket_width(store, period, w, p))}, avg(q_overall), count(q_overall)
        FROM queries {w}
        GROUP BY 1 HAVING count(q_overall) > 0 ORDER BY 1""", p)
    axes_avg = ", ".join(f"avg(q_{a})" for a in QUALITY_AXES)
    by_model = store.sql(f"""SELECT coalesce(model, '{NO_MODEL}'), count(q_overall), avg(q_overall), {axes_avg}
        FROM queries {w} GROUP BY 1 ORDER BY 2 DESC, 1""", p)
    return {
        "period": period.to_dict(), "queries": counts[0], "scored": counts[1], "overall": summary["q_overall"],
        "axes": {a: summary[f"q_{a}"] for a in QUALITY_AXES}, "grades": grades, "statuses": statuses,
        # queries that came without text: how many, and how to turn scoring on (None when all had text)
        "unscored_no_content": statuses.get("no_content", 0),
        "scoring_hint": NO_CONTENT_HINT if statuses.get("no_content") else None,
        "worst": worst_rows,
        "trend": [{"bucket": _iso(b), "avg_overall": r(a), "n": n} for b, a, n in trend],
        "by_model": [{"model": m, "n": n, "avg_overall": r(a),
                      **{ax: r(v) for ax, v in zip(QUALITY_AXES, rest, strict=True)}} for m, n, a, *rest in by_model],
    }
