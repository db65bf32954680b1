"""Model usage and cost, with optimization opportunities that cite their numbers."""

from __future__ import annotations

from typing import Any

from rag_otel.analytics._common import NO_MODEL, r, rollup_where, share, timeline_unit, use_rollups, where
from rag_otel.analytics.period import Period
from rag_otel.store.store import Store, jsonable

CHEAPER_QUALITY_TOLERANCE = 0.02  # a cheaper model counts as "same quality" within this overall score
CHEAPER_MIN_QUERIES = 20  # per model and category, scored, before comparing


def model_usage_and_cost(store: Store, period: Period, *, service: str | None = None, model: str | None = None,
                         source: str = "auto") -> dict[str, Any]:
    """Which models run, what they cost, and where money could be saved.

    Returns ``{period, source, queries, total_cost_usd, unpriced_queries, cost_incomplete_queries,
    ingestion {traces, input_tokens, output_tokens, cost_usd, cost_incomplete, models}, models [{model, queries, share,
    input_tokens, output_tokens, cost_usd, avg_cost_per_query, avg_latency_s, success_rate,
    avg_quality}], cost_per_day [{day, model, queries, cost_usd}], cost_per_user [{user_id, queries,
    cost_usd}] (top 20), trend {first_half_cost_usd, second_half_cost_usd, change_pct},
    opportunities [{type: "cheaper_model", category, model, cheaper_model, queries, avg_cost_usd,
    cheaper_avg_cost_usd, avg_quality, cheaper_avg_quality, estimated_savings_usd} | {type: "cache",
    repeated_questions, cacheable_queries, share_of_text_queries, estimated_savings_usd,
    estimated_latency_saved_s, examples [{query, count}]}]}``.  Per-model figures, daily cost and the
    trend read rollups for long ranges; per-user cost and opportunities always come from raw rows.
    """
    level = use_rollups(store, period, source)
    w, p = where(period, service=service, model=model)
    if level is None:
        models = store.sql(f"""SELECT coalesce(model, '{NO_MODEL}'), count(*), sum(input_tokens), sum(output_tokens),
            sum(cost_usd), avg(cost_usd), avg(duration_s), avg(CASE WHEN status = 'error' THEN 0 ELSE 1 END),
            avg(q_overall), count(*) - count(cost_usd) FROM queries {w}
            GROUP BY 1 ORDER BY 5 DESC NULLS LAST, 2 DESC, 1""", p)
        per_day = store.sql(f"""SELECT ts::DATE, coalesce(model, '{NO_MODEL}'), count(*), sum(cost_usd) FROM queries {w}
            GROUP BY 1, 2 ORDER BY 1, 2""", p)
        halves = store.sql(f"""SELECT sum(cost_usd) FILTER (WHERE ts < ?), sum(cost_usd) FILTER (WHERE ts >= ?)
            FROM queries {w}""", [_mid(period), _mid(period), *p])[0]
        src = "raw"
    else:
        rw, rp = rollup_where(period, level, service=service, model=model)
        models = store.sql(f"""SELECT coalesce(nullif(model, ''), '{NO_MODEL}'), sum(n), sum(input_tokens),
            sum(output_tokens), sum(cost_usd), sum(cost_usd) / nullif(sum(cost_n), 0), sum(latency_sum) / sum(n),
            1 - sum(errors) / sum(n), sum(q_overall_sum) / nullif(sum(q_overall_n), 0), sum(n) - sum(cost_n)
            FROM rollups {rw} GROUP BY 1 ORDER BY 5 DESC NULLS LAST, 2 DESC, 1""", rp)
        per_day = store.sql(f"""SELECT bucket::DATE, coalesce(nullif(model, ''), '{NO_MODEL}'), sum(n), sum(cost_usd)
            FROM rollups {rw} GROUP BY 1, 2 ORDER BY 1, 2""", rp)
        halves = store.sql(f"""SELECT sum(cost_usd) FILTER (WHERE bucket < ?), sum(cost_usd) FILTER (WHERE bucket >= ?)
            FROM rollups {rw}""", [_mid(period), _mid(period), *rp])[0]
        src = f"rollup:{level}"
    total_q = sum(m[1] for m in models)
    total_cost = sum(m[4] or 0 for m in models)
    first, second = (h or 0 for h in halves)
    users = store.sql(f"""SELECT user_id, count(*), sum(cost_usd) FROM queries {w} AND user_id IS NOT NULL
        GROUP BY 1 ORDER BY 3 DESC NULLS LAST, 1 LIMIT 20""", p)
    incomplete = store.sql(f"SELECT count(*) FROM queries {w} AND cost_complete = false", p)[0][0]
    return {
        "period": period.to_dict(), "source": src, "queries": total_q, "total_cost_usd": r(total_cost, 8),
        "unpriced_queries": sum(m[9] for m in models),
        # a model call without usage (or price) left out of the query's cost: the total is a lower bound
        "cost_incomplete_queries": int(incomplete),
        "ingestion": ingestion_cost(store, period, service=service),
        "models": [{"model": m, "queries": n, "share": share(n, total_q), "input_tokens": it, "output_tokens": ot,
                    "cost_usd": r(c, 8), "avg_cost_per_query": r(ac, 8), "avg_latency_s": r(lat),
                    "success_rate": r(ok), "avg_quality": r(q)} for m, n, it, ot, c, ac, lat, ok, q, _ in models],
        "cost_per_day": [{"day": jsonable(d), "model": m, "queries": n, "cost_usd": r(c, 8)}
                         for d, m, n, c in per_day],
        "cost_per_user": [{"user_id": u, "queries": n, "cost_usd": r(c, 8)} for u, n, c in users],
        "trend": {"first_half_cost_usd": r(first, 8), "second_half_cost_usd": r(second, 8),
                  "change_pct": r((second - first) / first * 100, 2) if first else None,
                  "unit": timeline_unit(period)},
        "opportunities": _cheaper_models(store, w, p) + _cache(store, w, p),
    }


def ingestion_cost(store: Store, period: Period, *, service: str | None = None) -> dict[str, Any]:
    """Traces that were not questions (index builds, document uploads): counted apart from the queries,
    with their tokens and cost.  ``{traces, input_tokens, output_tokens, cost_usd, cost_incomplete, models}``."""
    w, p = where(period, service=service)
    n, it, ot, c, inc = store.sql(f"""SELECT count(*), sum(input_tokens), sum(output_tokens), sum(cost_usd),
        count(*) FILTER (WHERE cost_complete = false OR cost_usd IS NULL) FROM ingestion {w}""", p)[0]
    models = store.sql(f"""SELECT m, count(*) FROM (SELECT unnest(models) AS m FROM ingestion {w})
        GROUP BY 1 ORDER BY 2 DESC, 1""", p)
    return {"traces": n, "input_tokens": int(it or 0), "output_tokens": int(ot or 0), "cost_usd": r(c or 0, 8),
            "cost_incomplete": inc, "models": [m for m, _ in models]}


def _mid(period: Period) -> Any:
    """The trend's split point: halves of the period itself, compared from the rows' (or buckets') own
    times, never from per-day sums (a period shorter than a day would fall wholly in one day bucket)."""
    return period.start + (period.end - period.start) / 2


def _cheaper_models(store: Store, w: str, p: list[Any]) -> list[dict[str, Any]]:
    """Per category: a model that costs less per query at the same quality (within the tolerance)."""
    rows = store.sql(f"""WITH m AS (
            SELECT category, model, count(*) AS n, avg(cost_usd) AS cost, avg(q_overall) AS q, count(q_overall) AS qn
            FROM queries {w} AND category IS NOT NULL AND model IS NOT NULL AND cost_usd IS NOT NULL
            GROUP BY 1, 2 HAVING count(q_overall) >= {CHEAPER_MIN_QUERIES})
        SELECT e.category, e.model, c.model, e.n, e.cost, c.cost, e.q, c.q, e.n * (e.cost - c.cost) AS savings
        FROM m e JOIN m c ON e.category = c.category AND c.cost < e.cost AND c.q >= e.q - {CHEAPER_QUALITY_TOLERANCE}
        QUALIFY row_number() OVER (PARTITION BY e.category, e.model ORDER BY savings DESC, c.model) = 1
        ORDER BY savings DESC, 1, 2""", p)
    return [{"type": "cheaper_model", "category": cat, "model": em, "cheaper_model": cm, "queries": n,
             "avg_cost_usd": r(ec, 8), "cheaper_avg_cost_usd": r(cc, 8), "avg_quality": r(eq, 4),
             "cheaper_avg_quality": r(cq, 4), "estimated_savings_usd": r(s, 8)}
            for cat, em, cm, n, ec, cc, eq, cq, s in rows]


def _cache(store: Store, w: str, p: list[Any]) -> list[dict[str, Any]]:
    """Repeated questions (same normalized text): every repeat after the first could be a cache hit."""
    text_q = store.sql(f"SELECT count(*) FROM queries {w} AND query_norm IS NOT NULL", p)[0][0]
    row = store.sql(f"""WITH g AS (SELECT query_norm, count(*) AS n, avg(cost_usd) AS c, avg(duration_s) AS lat,
            min(query_text) AS example FROM queries {w} AND query_norm IS NOT NULL GROUP BY 1 HAVING count(*) > 1)
        SELECT count(*), sum(n - 1), sum((n - 1) * coalesce(c, 0)), sum((n - 1) * lat),
               (SELECT list({{'query': example, 'count': n}} ORDER BY n DESC, example)[1:5] FROM g) FROM g""", p)[0]
    groups, repeats, savings, lat, examples = row
    if not groups:
        return []
    return [{"type": "cache", "repeated_questions": groups, "cacheable_queries": int(repeats),
             "share_of_text_queries": share(repeats, text_q), "estimated_savings_usd": r(savings, 8),
             "estimated_latency_saved_s": r(lat, 3), "examples": examples}]
