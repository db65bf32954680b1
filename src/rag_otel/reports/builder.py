"""Build a daily or weekly report from the store: plain sections (numbers) plus PNG charts.

The sections are the analytics functions' own dicts, trimmed to what a reader scans, so a report
never computes a number differently from the API or the dashboard.  Everything is JSON-ready
except ``charts`` (PNG bytes), which renderers embed, attach or write beside.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from rag_otel.analytics._common import r, share, where
from rag_otel.analytics.cost import model_usage_and_cost
from rag_otel.analytics.performance import performance, quality
from rag_otel.analytics.usage import feature_usage, query_patterns
from rag_otel.config import ModelObservation
from rag_otel.reports.period import Kind, ReportPeriod, report_period
from rag_otel.store.store import Store

Progress = Callable[[str], None]

# Steps reported to a progress callback, in order (the CLI sizes its bar from this).
STEPS: tuple[str, ...] = ("performance", "quality", "usage", "cost", "alerts", "trends", "recommendations", "charts")


@dataclass
class Report:
    """One report: metadata, sections in reading order, and chart images."""

    kind: Kind
    period: ReportPeriod
    generated_at: str
    sections: dict[str, Any]
    charts: dict[str, bytes] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """File stem: ``daily-2026-11-19`` / ``weekly-2026-11-16``."""
        return self.period.label

    @property
    def title(self) -> str:
        p = self.period
        if self.kind == "daily":
            return f"RAG daily report: {p.first_day.isoformat()} ({p.tz})"
        last = date.fromordinal(p.first_day.toordinal() + 6)
        return f"RAG weekly report: {p.first_day.isoformat()} to {last.isoformat()} ({p.tz})"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: everything but the PNG bytes (charts are listed by file name)."""
        return {
            "kind": self.kind, "title": self.title, "name": self.name, "generated_at": self.generated_at,
            "period": {"first_day": self.period.first_day.isoformat(), "timezone": self.period.tz,
                       "start": _iso(self.period.start), "end": _iso(self.period.end)},
            **self.sections,
            "charts": {k: f"{self.name}-{k}.png" for k in self.charts},
        }


def dashboard_url(config: ModelObservation) -> str | None:
    """Where a report's query links point: ``dashboards.public_url``, else the processor's dashboard as
    ``processor.http`` names it (None when that is a random port and no serve has bound it)."""
    if config.dashboards.public_url:
        return config.dashboards.public_url.rstrip("/")
    host, _, port = config.processor.http.rpartition(":")
    if not port or port == "0":
        return None
    host = "127.0.0.1" if host in ("", "0.0.0.0", "[::]", "::") else host
    return f"http://{host}:{port}"


def _iso(d: datetime) -> str:
    return d.replace(tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")


def build_report(store: Store, kind: str, first_day: str | date, config: ModelObservation | None = None, *,
                 charts: bool = True, progress: Progress | None = None, now: float | None = None) -> Report:
    """The ``kind`` report whose period starts on local ``first_day`` (the day, or the week's first day).

    ``config`` (default: the store's) gives the reporting settings (time zone); thresholds that
    label numbers (latency categories, quality grades) are the store's, as in every analytics
    answer, so a report never disagrees with the API about what counts as slow.
    """
    from rag_otel.reports.recommend import recommendations

    config = config or store.config
    rp = report_period(kind, first_day, config.reporting.timezone)
    period = rp.as_period()
    step = progress or (lambda _s: None)
    sections: dict[str, Any] = {}

    step("performance")
    perf = performance(store, period)
    perf.pop("period", None)
    perf["error_types"] = _error_types(store, period)
    step("quality")
    qual = quality(store, period, worst=5)
    qual.pop("period", None)
    base = dashboard_url(config)
    for w in qual["worst"]:  # each opens in the dashboard's query view (waterfall, explanations)
        w["query_url"] = f"{base}/#/query/{w.get('query_id') or w['trace_id']}" if base else None
    step("usage")
    patterns = query_patterns(store, period, top_topics=10)
    features = feature_usage(store, period)
    step("cost")
    cost = _cost(store, period)
    step("alerts")
    alerts = _alerts(store, rp)
    step("trends")
    cur = _headline(store, period)
    prev = _headline(store, rp.previous().as_period())
    trends = {"compared_with": rp.previous().label, "current": cur, "previous": prev, "deltas": _deltas(cur, prev)}

    sections["summary"] = {
        "queries": perf["total"], "unique_users": patterns["unique_users"], "success_rate": perf["success_rate"],
        "avg_latency_s": perf["avg_latency_s"], "p95_latency_s": perf["p95_latency_s"],
        "avg_quality": qual["overall"]["avg"], "scored_queries": qual["scored"], "cost_usd": cost["total_usd"],
        "sessions": patterns["engagement"]["sessions"], "alerts_fired": alerts["fired"],
    }
    sections["performance"] = perf
    sections["quality"] = qual
    sections["usage"] = {k: patterns[k] for k in ("total", "unique_users", "categorized", "categories", "topics",
                                                  "complexity", "temporal", "engagement")}
    sections["usage"]["features"] = features["features"]
    sections["cost"] = cost
    sections["alerts"] = alerts
    sections["trends"] = trends
    step("recommendations")
    sections["recommendations"] = recommendations(sections, store.config)
    generated = datetime.fromtimestamp(time.time() if now is None else now, tz=timezone.utc)
    report = Report(kind=rp.kind, period=rp, generated_at=generated.isoformat().replace("+00:00", "Z"),
                    sections=sections)
    step("charts")
    if charts:
        from rag_otel.reports.charts import render_charts

        report.charts = render_charts(report)
    return report


def _error_types(store: Store, period: Any) -> list[dict[str, Any]]:
    w, p = where(period)
    rows = store.sql(f"SELECT coalesce(error_type, 'unknown'), count(*) FROM queries {w} AND status = 'error' "
                     "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10", p)
    return [{"error_type": e, "count": n} for e, n in rows]


def _cost(store: Store, period: Any) -> dict[str, Any]:
    """The analytics' model usage and cost, with each model's share of spend added."""
    c = model_usage_and_cost(store, period)
    total = c["total_cost_usd"] or 0.0
    models = [{**m, "cost_share": share(m["cost_usd"] or 0.0, total)} for m in c["models"]]
    return {"total_usd": c["total_cost_usd"], "unpriced_queries": c["unpriced_queries"],
            "cost_incomplete_queries": c["cost_incomplete_queries"], "ingestion": c["ingestion"], "by_model": models,
            "cost_per_user": c["cost_per_user"][:10], "opportunities": c["opportunities"], "source": c["source"]}


def _alerts(store: Store, rp: ReportPeriod) -> dict[str, Any]:
    events = store.dicts("SELECT ts, rule, state, severity, value, threshold, message, labels FROM alerts "
                         "WHERE ts >= ? AND ts < ? ORDER BY ts LIMIT 10000", [rp.start, rp.end])
    for e in events:
        e["labels"] = json.loads(e["labels"]) if e["labels"] else {}
    by_rule: dict[str, dict[str, Any]] = {}
    for e in events:
        if e["state"] != "firing":
            continue
        row = by_rule.setdefault(e["rule"], {"rule": e["rule"], "severity": e["severity"], "fired": 0,
                                             "max_value": None, "threshold": e["threshold"]})
        row["fired"] += 1
        if e["value"] is not None and (row["max_value"] is None or e["value"] > row["max_value"]):
            row["max_value"] = e["value"]
    keep = ("ts", "rule", "state", "severity", "value", "threshold", "message", "labels")
    return {"fired": sum(x["fired"] for x in by_rule.values()),
            "by_rule": sorted(by_rule.values(), key=lambda x: (-x["fired"], x["rule"])),
            "events": [{k: e[k] for k in keep} for e in events[-50:]]}


def _headline(store: Store, period: Any) -> dict[str, Any]:
    """The few numbers compared period over period, in one scan."""
    w, p = where(period)
    n, users, errors, avg, p95, q, cost = store.sql(f"""SELECT count(*), count(DISTINCT user_id),
        count(*) FILTER (WHERE status = 'error'), avg(duration_s), quantile_cont(duration_s, 0.95), avg(q_overall),
        sum(cost_usd) FROM queries {w}""", p)[0]
    return {"queries": n, "unique_users": users, "error_rate": share(errors, n), "avg_latency_s": r(avg),
            "p95_latency_s": r(p95), "avg_quality": r(q), "cost_usd": r(cost or 0.0)}


def _deltas(cur: dict[str, Any], prev: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for k, v in cur.items():
        pv = prev.get(k)
        change = None if v is None or pv is None else r(v - pv)
        pct = r((v - pv) / pv * 100, 2) if change is not None and pv else None
        out[k] = {"current": v, "previous": pv, "change": change, "change_pct": pct}
    return out


def previous_day(kind: str, today: date) -> date:
    """The first day of the last complete period before ``today`` (what a scheduled run reports on)."""
    span = 1 if kind == "daily" else 7
    return date.fromordinal(today.toordinal() - span)
