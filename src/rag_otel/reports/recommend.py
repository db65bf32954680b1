"""Rule-based recommendations: each rule reads the report's numbers and cites them in its message.

Pure functions over the sections dict, so each rule is testable with plain data.  A rule that
does not apply returns nothing; the thresholds come from the config (latency categories, quality
grades), never from constants the user cannot see.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rag_otel.config import ModelObservation

Rec = dict[str, Any]
MIN_QUERIES = 20  # below this, percentages say more about chance than about the system
ERROR_RATE = 0.02


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def latency(s: dict[str, Any], cfg: ModelObservation) -> list[Rec]:
    perf = s["performance"]
    n, p95 = perf["total"], perf["p95_latency_s"]
    acc = cfg.performance_monitoring.latency_thresholds.acceptable
    if n < MIN_QUERIES or p95 is None or p95 <= acc:
        return []
    slow = perf.get("over_acceptable", perf["latency_categories"].get("poor", 0))  # against the threshold it names
    slowest = max(perf["by_model"], key=lambda m: m["p95_latency_s"] or 0, default=None)
    msg = (f"p95 latency {p95:.2f} s exceeds the {acc:g} s 'acceptable' threshold; {_pct(slow / n)} of queries "
           f"({slow} of {n}) took longer than {acc:g} s.")
    if slowest is not None and slowest["p95_latency_s"] is not None:
        msg += (f" Slowest model: {slowest['model']} (p95 {slowest['p95_latency_s']:.2f} s over "
                f"{slowest['count']} queries): consider streaming, a smaller context or a faster model.")
    return [{"rule": "latency_p95", "severity": "warning", "message": msg,
             "evidence": {"p95_latency_s": p95, "acceptable_s": acc, "slow_queries": slow, "queries": n}}]


def errors(s: dict[str, Any], _cfg: ModelObservation) -> list[Rec]:
    perf = s["performance"]
    n, e = perf["total"], perf["errors"]
    if n < MIN_QUERIES or e / n <= ERROR_RATE:
        return []
    top = perf["error_types"][0] if perf["error_types"] else None
    msg = f"error rate {_pct(e / n)} ({e} of {n} queries) is above {_pct(ERROR_RATE)}."
    if top:
        msg += f" Most frequent: {top['error_type']} ({top['count']} queries)."
    return [{"rule": "error_rate", "severity": "critical" if e / n > 5 * ERROR_RATE else "warning", "message": msg,
             "evidence": {"errors": e, "queries": n, "error_rate": round(e / n, 6), "top_error": top}}]


def quality(s: dict[str, Any], cfg: ModelObservation) -> list[Rec]:
    q = s["quality"]
    avg, n = q["overall"]["avg"], q["overall"]["n"]
    good = cfg.quality_assessment.grade_thresholds.get("good", 0.7)
    if avg is None or n < MIN_QUERIES or avg >= good:
        return []
    axes = [(a, v["avg"]) for a, v in q["axes"].items() if v["avg"] is not None]
    weakest = min(axes, key=lambda x: x[1]) if axes else None
    poor = q["overall"]["labels"]["poor"]
    msg = (f"average quality {avg:.3f} over {n} scored queries is below the 'good' threshold {good:g}; "
           f"{poor} ({_pct(poor / n)}) scored poor.")
    if weakest:
        msg += f" Weakest axis: {weakest[0]} ({weakest[1]:.3f})."
    return [{"rule": "quality_below_good", "severity": "warning", "message": msg,
             "evidence": {"avg_quality": avg, "scored": n, "good_threshold": good, "poor": poor,
                          "weakest_axis": weakest[0] if weakest else None}}]


def opportunities(s: dict[str, Any], _cfg: ModelObservation) -> list[Rec]:
    """The cost analytics' savings opportunities (cheaper model at equal quality, cacheable repeats)."""
    out: list[Rec] = []
    total = s["cost"]["total_usd"] or 0.0
    for o in s["cost"]["opportunities"]:
        saving = o.get("estimated_savings_usd") or 0.0
        of_total = f" ({_pct(saving / total)} of ${total:.2f} spent)" if total else ""
        if o["type"] == "cheaper_model":
            msg = (f"{o['category']} queries on {o['model']} cost ${o['avg_cost_usd']:.5f} each at quality "
                   f"{o['avg_quality']:.3f} ({o['queries']} queries) while {o['cheaper_model']} cost "
                   f"${o['cheaper_avg_cost_usd']:.5f} at quality {o['cheaper_avg_quality']:.3f}: routing them to "
                   f"{o['cheaper_model']} would have saved ${saving:.2f}{of_total}.")
        elif o["type"] == "cache":
            msg = (f"{o['repeated_questions']} questions were asked more than once: {o['cacheable_queries']} "
                   f"repeats ({_pct(o['share_of_text_queries'] or 0)} of queries with text) could be served from a "
                   f"cache, saving ${saving:.2f}{of_total} and {o['estimated_latency_saved_s']:.0f} s of waiting.")
        else:
            continue
        out.append({"rule": o["type"], "severity": "info", "message": msg, "evidence": o})
    return out


def unpriced(s: dict[str, Any], _cfg: ModelObservation) -> list[Rec]:
    n = s["cost"]["unpriced_queries"]
    if not n:
        return []
    return [{"rule": "unpriced_models", "severity": "info", "evidence": {"unpriced_queries": n},
             "message": (f"{n} queries have no cost (a model without a price): add it under pricing.models so "
                         "cost totals are complete.")}]


def alerts(s: dict[str, Any], _cfg: ModelObservation) -> list[Rec]:
    return [{"rule": "recurring_alert", "severity": a["severity"], "evidence": a,
             "message": (f"alert {a['rule']} fired {a['fired']} times (worst value {a['max_value']}, threshold "
                         f"{a['threshold']}): look at its cause rather than its symptom.")}
            for a in s["alerts"]["by_rule"] if a["fired"] >= 3]


def trend(s: dict[str, Any], _cfg: ModelObservation) -> list[Rec]:
    d = s["trends"]["deltas"]
    out: list[Rec] = []
    p95 = d["p95_latency_s"]
    if p95["change_pct"] is not None and p95["change_pct"] >= 25 and d["queries"]["current"] >= MIN_QUERIES:
        out.append({"rule": "latency_regression", "severity": "warning", "evidence": p95,
                    "message": (f"p95 latency rose {p95['change_pct']:.1f}% ({p95['previous']:.2f} s -> "
                                f"{p95['current']:.2f} s) against {s['trends']['compared_with']}.")})
    q = d["avg_quality"]
    if q["change"] is not None and q["change"] <= -0.05:
        out.append({"rule": "quality_regression", "severity": "warning", "evidence": q,
                    "message": (f"average quality fell {-q['change']:.3f} ({q['previous']:.3f} -> {q['current']:.3f})"
                                f" against {s['trends']['compared_with']}.")})
    return out


RULES: tuple[Callable[[dict[str, Any], ModelObservation], list[Rec]], ...] = (
    errors, latency, quality, trend, alerts, opportunities, unpriced,
)


def recommendations(sections: dict[str, Any], cfg: ModelObservation) -> list[Rec]:
    """Every rule's findings, most severe first (stable within a severity)."""
    order = {"critical": 0, "warning": 1, "info": 2}
    out = [rec for rule in RULES for rec in rule(sections, cfg)]
    return sorted(out, key=lambda x: order.get(x["severity"], 3))
