"""The live dashboard's compact snapshot: one dict, computed once per tick for every subscriber.

Windows are short and fixed (the last hour for the panels, the last 30 minutes per minute for the
sparkline) so each tick is a few indexed scans of recent rows, whatever the store's size.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from rag_otel.analytics.usage import gaps_cte, session_aggs, session_gap_s
from rag_otel.semconv import QUALITY_AXES
from rag_otel.store.store import utc
from rag_otel.web.deps import trace_url

WINDOW_S = 3600
TIMELINE_MINUTES = 30
RECENT = 10
TEXT_CHARS = 140

_AXES = ", ".join(f"avg(q_{a})" for a in QUALITY_AXES)
_PANELS_SQL = f"""
    SELECT count(*), count(*) FILTER (WHERE status = 'error'), avg(duration_s),
           quantile_cont(duration_s, 0.5), quantile_cont(duration_s, 0.95), avg(ttfc_s),
           avg(q_overall), count(q_overall), {_AXES},
           count(DISTINCT user_id), sum(input_tokens), sum(output_tokens), sum(cost_usd)
    FROM queries WHERE ts >= ?"""


def _r(x: Any, nd: int = 4) -> float | None:
    return None if x is None else round(float(x), nd)


# Sessions over an hour move slowly and their window pass is the tick's costliest scan: recomputed
# when the hour's query count changed (at most every 2 s) and at least every 10 s.
SESSIONS_MIN_S, SESSIONS_MAX_S = 2.0, 10.0
_sessions_cache: weakref.WeakKeyDictionary[Any, tuple[float, int, int]] = weakref.WeakKeyDictionary()


def _sessions(store: Any, since: Any, now: float, queries: int) -> int:
    """Sessions in the last hour by the analytics' definition (see ``SESSIONS_MIN_S``)."""
    hit = _sessions_cache.get(store)
    if hit is not None:
        age = now - hit[0]
        if 0 <= age < SESSIONS_MIN_S or (0 <= age < SESSIONS_MAX_S and hit[1] == queries):
            return hit[2]
    n = int(store.sql(f"WITH {gaps_cte('WHERE ts >= ?')} SELECT {session_aggs(session_gap_s(store, None))} "
                      "FROM gaps", [since])[0][0])
    _sessions_cache[store] = (now, queries, n)
    return n


def build_snapshot(service: Any, now: float | None = None) -> dict[str, Any]:
    """Health, performance, quality, usage, alerts and recent queries as plain JSON-ready data."""
    now = time.time() if now is None else now
    snap: dict[str, Any] = {"time": now, "window_s": WINDOW_S, "health": _health(service)}
    store = getattr(service, "store", None)
    alerts = getattr(service, "alerts", None)
    snap["scope"] = scope(store, fleet_alerts=getattr(alerts, "fleet", None) is not None)
    if store is not None:
        snap.update(_from_store(store, service.config.dashboards.jaeger_ui_url, now))
    snap["alerts"] = [] if alerts is None else [
        {k: v for k, v in asdict(s).items() if k in ("rule", "fingerprint", "severity", "state", "value", "threshold",
                                                       "message", "acknowledged", "silenced_until", "active_since")}
        for s in alerts.active()]
    if store is not None and snap["alerts"]:  # each alert links the newest query that ran while it fired
        for a in snap["alerts"]:
            row = store.sql("SELECT query_id FROM queries WHERE list_contains(alerts, ?) ORDER BY ts DESC LIMIT 1",
                            [a["rule"]])
            a["last_trace_id"] = row[0][0] if row else None
    return snap


def scope(store: Any, *, fleet_alerts: bool = False) -> dict[str, str]:
    """Whose numbers the panels show: the store-backed ones (performance, quality, usage, recent, system)
    are the whole fleet's on a shared store; health is always this replica's own; alerts are the
    fleet's where fleet-scope rules run (judged by the leader over the store), else this replica's."""
    shared = bool(getattr(store, "shared", False))
    alerts = "fleet" if shared and fleet_alerts else "replica"
    return {"store": "fleet" if shared else "replica", "health": "replica", "alerts": alerts,
            "label": (f"fleet-wide (shared store); health{'' if alerts == 'fleet' else ' and alerts'}: this replica"
                      if shared else "this processor")}


def _health(service: Any) -> dict[str, Any]:
    h = service.health()
    p = h.get("pipeline", {})
    store = h.get("store") or {}
    return {"status": h.get("status"), "uptime_s": h.get("uptime_s"), "queue_depth": p.get("queue_depth"),
            "traces_in_flight": p.get("traces_in_flight"), "records": p.get("records"),
            "stage_errors": p.get("stage_errors"), "stored": store.get("written"),
            "store_dropped": store.get("dropped")}


def _from_store(store: Any, jaeger: str | None, now: float) -> dict[str, Any]:
    end = utc(now)
    since = end - timedelta(seconds=WINDOW_S)
    row = store.sql(_PANELS_SQL, [since])[0]
    n, errors = int(row[0]), int(row[1])
    axes = dict(zip(QUALITY_AXES, (_r(v, 3) for v in row[8:8 + len(QUALITY_AXES)]), strict=True))
    k = 8 + len(QUALITY_AXES)
    users, tin, tout, cost = row[k:k + 4]
    sessions = _sessions(store, since, now, n)
    models = store.sql("SELECT model, count(*) FROM queries WHERE ts >= ? GROUP BY 1 "
                       "ORDER BY 2 DESC, 1 LIMIT 5", [since])
    start = end - timedelta(minutes=TIMELINE_MINUTES)
    per_min = dict(store.sql("SELECT date_diff('minute', ?::TIMESTAMP, date_trunc('minute', ts)), count(*) "
                             "FROM queries WHERE ts >= ? GROUP BY 1",
                             [start.replace(second=0, microsecond=0), start]))
    recent = store.dicts(
        "SELECT ts, trace_id, query_id, user_id, model, duration_s, status, q_overall, category, "
        f"left(query_text, {TEXT_CHARS}) AS query_text FROM queries ORDER BY ts DESC LIMIT {RECENT}")
    for r in recent:
        r["trace_url"] = trace_url(jaeger, r["trace_id"])
    system = store.dicts("SELECT ts, host, cpu_percent, memory_percent, disk_percent, health_score "
                         "FROM system_samples WHERE ts >= ? ORDER BY ts DESC LIMIT 1", [end - timedelta(minutes=5)])
    return {
        "performance": {"queries": n, "errors": errors, "success_rate": _r((n - errors) / n) if n else None,
                        "avg_latency_s": _r(row[2]), "p50_latency_s": _r(row[3]), "p95_latency_s": _r(row[4]),
                        "avg_ttfc_s": _r(row[5])},
        "quality": {"avg_overall": _r(row[6], 3), "scored": int(row[7]), "axes": axes},
        "usage": {"queries": n, "users": int(users), "sessions": int(sessions), "input_tokens": int(tin or 0),
                  "output_tokens": int(tout or 0), "cost_usd": _r(cost, 6),
                  "models": [{"model": m, "queries": int(c)} for m, c in models]},
        "timeline": [int(per_min.get(i, 0)) for i in range(TIMELINE_MINUTES + 1)],
        "system": system[0] if system else None,
        "recent": recent,
    }
