"""Who asks what, when and how often: query patterns, feature usage, per-user behaviour (raw rows)."""

from __future__ import annotations

from typing import Any

from rag_otel.analytics._common import r, share, where
from rag_otel.analytics.period import Period
from rag_otel.config import parse_duration
from rag_otel.store.store import Store

COMPLEXITY = "CASE WHEN query_words IS NULL THEN 'unknown' WHEN query_words <= 8 THEN 'simple' " \
             "WHEN query_words <= 20 THEN 'moderate' ELSE 'complex' END"


def gaps_cte(w: str) -> str:
    """Each query's time since the same user's previous one: one window pass (sessions need no more).

    The one definition of a session, used by the analytics, the reports and the live view: one
    user's queries with no gap longer than ``analytics.session_gap`` (an app's ``session.id`` is kept
    on each query for search, but apps set it so differently that it is not what is counted).

    A query opens a session when it has no predecessor or its gap exceeds the session gap; a
    session's duration is the sum of the gaps inside it.
    """
    return f"""gaps AS (SELECT user_id, ts - lag(ts) OVER (PARTITION BY user_id ORDER BY ts) AS gap
                       FROM queries {w} AND user_id IS NOT NULL)"""


def session_aggs(gap_s: float) -> str:
    g = f"INTERVAL '{gap_s} seconds'"
    return (f"count(*) FILTER (WHERE gap IS NULL OR gap > {g}) AS sessions, "
            f"coalesce(sum(epoch(gap)) FILTER (WHERE gap <= {g}), 0) AS within_s, count(*) AS n")


def session_gap_s(store: Store, session_gap: str | float | None) -> float:
    return parse_duration(session_gap if session_gap is not None else store.config.analytics.session_gap)


def query_patterns(store: Store, period: Period, *, service: str | None = None, model: str | None = None,
                   session_gap: str | float | None = None, top_topics: int = 15) -> dict[str, Any]:
    """What is asked and when.

    Returns ``{period, total, unique_users, categorized, categories [{category, count, share}] (share of
    categorized queries), topics [{topic, count, examples[<=3]}], examples_note (why examples are empty, when
    query text is not kept), complexity {simple (<= 8 words),
    moderate (<= 20), complex, unknown (no text)}, temporal {heatmap[7][24] (Monday first, UTC),
    by_hour[24], by_weekday[7], peak {weekday, hour, count}}, engagement {sessions,
    avg_queries_per_session, avg_session_duration_s, returning_users (also
    active before the period), multi_day_users, dau [{day, users}], avg_dau, wau [{week, users}]}}``.
    Categories and topics exist only for queries whose text was captured or that the app tagged.
    """
    w, p = where(period, service=service, model=model)
    total, users, categorized = store.sql(
        f"SELECT count(*), count(DISTINCT user_id), count(category) FROM queries {w}", p)[0]
    cats = store.sql(f"SELECT category, count(*) FROM queries {w} AND category IS NOT NULL GROUP BY 1 "
                     "ORDER BY 2 DESC, 1", p)
    topics = store.sql(f"""SELECT topic, count(*), list(DISTINCT query_text ORDER BY query_text)
        FILTER (WHERE query_text IS NOT NULL)[1:3]
        FROM queries {w} AND topic IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?""", [*p, top_topics])
    complexity = dict(store.sql(f"SELECT {COMPLEXITY}, count(*) FROM queries {w} GROUP BY 1", p))
    heat = store.sql(f"SELECT isodow(ts) - 1, hour(ts), count(*) FROM queries {w} GROUP BY 1, 2", p)
    grid = [[0] * 24 for _ in range(7)]
    for d, h, n in heat:
        grid[d][h] = n
    peak = max(((d, h, grid[d][h]) for d in range(7) for h in range(24)), key=lambda x: x[2])
    sessions, within_s, n_user = store.sql(
        f"WITH {gaps_cte(w)} SELECT {session_aggs(session_gap_s(store, session_gap))} FROM gaps", p)[0]
    returning, multi_day = store.sql(f"""WITH u AS (SELECT user_id, count(DISTINCT ts::DATE) AS days
            FROM queries {w} AND user_id IS NOT NULL GROUP BY 1)
        SELECT count(*) FILTER (WHERE user_id IN (SELECT user_id FROM queries WHERE ts < ? AND user_id IS NOT NULL)),
               count(*) FILTER (WHERE days >= 2) FROM u""", [*p, period.start])[0]
    dau = store.sql(f"SELECT ts::DATE, count(DISTINCT user_id) FROM queries {w} GROUP BY 1 ORDER BY 1", p)
    wau = store.sql(f"SELECT date_trunc('week', ts)::DATE, count(DISTINCT user_id) FROM queries {w} "
                    "GROUP BY 1 ORDER BY 1", p)
    return {
        "period": period.to_dict(), "total": total, "unique_users": users, "categorized": categorized,
        "categories": [{"category": c, "count": n, "share": share(n, categorized)} for c, n in cats],
        "topics": [{"topic": t, "count": n, "examples": ex or []} for t, n, ex in topics],
        "examples_note": None if store.keep_text else (
            "no examples: query text is kept only with content.capture: full (or processor.keep_content); "
            "topics are labelled from the text as it arrives, then the text is dropped"),
        "complexity": {k: complexity.get(k, 0) for k in ("simple", "moderate", "complex", "unknown")},
        "temporal": {"heatmap": grid, "by_hour": [sum(grid[d][h] for d in range(7)) for h in range(24)],
                     "by_weekday": [sum(row) for row in grid],
                     "peak": {"weekday": peak[0], "hour": peak[1], "count": peak[2]}},
        "engagement": {
            "sessions": sessions, "avg_queries_per_session": r(n_user / sessions) if sessions else None,
            "avg_session_duration_s": r(within_s / sessions) if sessions else None,
            "returning_users": returning, "multi_day_users": multi_day,
            "dau": [{"day": d.isoformat(), "users": n} for d, n in dau],
            "avg_dau": r(sum(n for _, n in dau) / len(dau)) if dau else None,
            "wau": [{"week": d.isoformat(), "users": n} for d, n in wau],
        },
    }


def feature_usage(store: Store, period: Period, *, service: str | None = None,
                  model: str | None = None) -> dict[str, Any]:
    """Use and effect of each ``rag.features`` value.

    Returns ``{period, total_queries, total_users, features [{feature, queries, query_share, users,
    user_share, avg_latency_s, p95_latency_s, success_rate, avg_quality}], without_features {queries,
    avg_latency_s, p95_latency_s, success_rate, avg_quality}}``.
    """
    w, p = where(period, service=service, model=model)
    total, users = store.sql(f"SELECT count(*), count(DISTINCT user_id) FROM queries {w}", p)[0]
    agg = """count(DISTINCT user_id), avg(duration_s), quantile_cont(duration_s, 0.95),
             avg(CASE WHEN status = 'error' THEN 0 ELSE 1 END), avg(q_overall)"""
    rows = store.sql(f"""SELECT feature, count(*), {agg} FROM
        (SELECT unnest(features) AS feature, * FROM queries {w}) GROUP BY 1 ORDER BY 2 DESC, 1""", p)
    none = store.sql(f"SELECT count(*), {agg} FROM queries {w} AND len(features) = 0", p)[0]
    return {
        "period": period.to_dict(), "total_queries": total, "total_users": users,
        "features": [{"feature": f, "queries": n, "query_share": share(n, total), "users": u,
                      "user_share": share(u, users), "avg_latency_s": r(lat), "p95_latency_s": r(p95),
                      "success_rate": r(ok), "avg_quality": r(q)} for f, n, u, lat, p95, ok, q in rows],
        "without_features": {"queries": none[0], "avg_latency_s": r(none[2]), "p95_latency_s": r(none[3]),
                             "success_rate": r(none[4]), "avg_quality": r(none[5])},
    }


def user_behavior(store: Store, period: Period, user_id: str | None = None, *, service: str | None = None,
                  model: str | None = None, session_gap: str | float | None = None,
                  limit: int = 50) -> dict[str, Any]:
    """Per-user frequency, sessions, preferences, satisfaction and trend (top ``limit`` users by queries).

    Returns ``{period, total_users, users [{user_id, queries, active_days, queries_per_active_day,
    sessions, avg_session_duration_s, avg_queries_per_session, preferred_category, preferred_topic,
    feedback_count, satisfaction (mean of feedback scores, thumbs up = 1 / down = 0), first_seen, last_seen,
    trend_per_day (slope of daily queries), engagement ("rising" | "falling" | "steady")}]}``; with
    ``user_id`` also ``daily [{day, queries}]`` and ``categories [{category, count}]`` for that user.
    """
    w, p = where(period, service=service, model=model, user_id=user_id)
    fw, fp = where(period, col="f.ts")
    rows = store.dicts(f"""WITH {gaps_cte(w)},
        s AS (SELECT user_id, {session_aggs(session_gap_s(store, session_gap))} FROM gaps GROUP BY 1),
        daily AS (SELECT user_id, ts::DATE AS day, count(*) AS n FROM queries {w} AND user_id IS NOT NULL
                  GROUP BY 1, 2),
        trend AS (SELECT user_id, regr_slope(n, day - ?::DATE) AS slope FROM daily GROUP BY 1),
        fb AS (SELECT coalesce(f.user_id, q.user_id) AS user_id, count(*) AS fn,
                      avg(coalesce(f.score, CASE f.thumbs WHEN 'up' THEN 1.0 WHEN 'down' THEN 0.0 END)) AS sat
               FROM feedback f LEFT JOIN queries q USING (query_id) {fw} GROUP BY 1),
        pc AS (SELECT user_id, category, count(*) AS n FROM queries {w} AND category IS NOT NULL GROUP BY 1, 2),
        pt AS (SELECT user_id, topic, count(*) AS n FROM queries {w} AND topic IS NOT NULL GROUP BY 1, 2),
        pref AS (SELECT user_id, first(category ORDER BY n DESC, category) AS preferred_category FROM pc GROUP BY 1),
        preft AS (SELECT user_id, first(topic ORDER BY n DESC, topic) AS preferred_topic FROM pt GROUP BY 1),
        u AS (SELECT user_id, count(*) AS queries, count(DISTINCT ts::DATE) AS active_days,
                     min(ts) AS first_seen, max(ts) AS last_seen
              FROM queries {w} AND user_id IS NOT NULL GROUP BY 1)
        SELECT u.user_id, u.queries, u.active_days, pref.preferred_category, preft.preferred_topic, u.first_seen,
               u.last_seen, round(u.queries / u.active_days, 6) AS queries_per_active_day, s.sessions,
               round(s.within_s / s.sessions, 6) AS avg_session_duration_s,
               round(s.n / s.sessions, 6) AS avg_queries_per_session,
               coalesce(fb.fn, 0) AS feedback_count, round(fb.sat, 6) AS satisfaction,
               round(trend.slope, 6) AS trend_per_day
        FROM u LEFT JOIN s USING (user_id) LEFT JOIN fb USING (user_id) LEFT JOIN trend USING (user_id)
            LEFT JOIN pref USING (user_id) LEFT JOIN preft USING (user_id)
        ORDER BY u.queries DESC, u.user_id LIMIT ?""", [*p, *p, period.start, *fp, *p, *p, *p, limit])
    for row in rows:
        slope = row["trend_per_day"]
        row["engagement"] = ("steady" if slope is None or abs(slope) < 0.1 * row["queries_per_active_day"]
                             else "rising" if slope > 0 else "falling")
    total = store.sql(f"SELECT count(DISTINCT user_id) FROM queries {w}", p)[0][0]
    out: dict[str, Any] = {"period": period.to_dict(), "total_users": total, "users": rows}
    if user_id is not None:
        out["daily"] = [{"day": d.isoformat(), "queries": n} for d, n in store.sql(
            f"SELECT ts::DATE, count(*) FROM queries {w} GROUP BY 1 ORDER BY 1", p)]
        out["categories"] = [{"category": c, "count": n} for c, n in store.sql(
            f"SELECT category, count(*) FROM queries {w} AND category IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1",
            p)]
    return out
