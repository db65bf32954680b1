"""Each recommendation rule on plain section dicts: it fires on its condition, cites the numbers it
read, and stays silent below the evidence floor."""

from __future__ import annotations

import copy

from rag_otel.config import ModelObservation
from rag_otel.reports.recommend import recommendations

AXIS = {"avg": 0.7, "n": 100, "labels": {"good": 50, "fair": 40, "poor": 10}, "histogram": [0] * 10}


def sections(**over) -> dict:
    s = {
        "performance": {"total": 100, "errors": 1, "p95_latency_s": 1.5, "latency_categories": {"poor": 0},
                        "by_model": [{"model": "m", "p95_latency_s": 1.5, "count": 100}], "error_types": []},
        "quality": {"overall": {**AXIS, "avg": 0.8}, "axes": {"accuracy": {**AXIS, "avg": 0.8}}},
        "cost": {"total_usd": 10.0, "unpriced_queries": 0, "opportunities": []},
        "alerts": {"by_rule": []},
        "trends": {"compared_with": "daily-2026-11-17", "deltas": {
            "queries": {"current": 100, "previous": 100, "change": 0, "change_pct": 0.0},
            "p95_latency_s": {"current": 1.5, "previous": 1.5, "change": 0.0, "change_pct": 0.0},
            "avg_quality": {"current": 0.8, "previous": 0.8, "change": 0.0, "change_pct": 0.0}}},
    }
    for path, value in over.items():
        node = s
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return s


def rules(s: dict) -> dict[str, dict]:
    return {r["rule"]: r for r in recommendations(s, ModelObservation())}


def test_a_healthy_period_has_nothing_to_say():
    assert recommendations(sections(), ModelObservation()) == []


def test_quality_below_good_names_the_weakest_axis():
    s = sections(quality__overall={**AXIS, "avg": 0.61, "n": 80, "labels": {"good": 20, "fair": 48, "poor": 12}},
                 quality__axes={"accuracy": {**AXIS, "avg": 0.66}, "completeness": {**AXIS, "avg": 0.52}})
    r = rules(s)["quality_below_good"]
    assert r["message"] == ("average quality 0.610 over 80 scored queries is below the 'good' threshold 0.7; "
                            "12 (15.0%) scored poor. Weakest axis: completeness (0.520).")


def test_regressions_against_the_previous_period():
    s = sections(trends__deltas__p95_latency_s={"current": 3.0, "previous": 2.0, "change": 1.0, "change_pct": 50.0},
                 trends__deltas__avg_quality={"current": 0.7, "previous": 0.78, "change": -0.08, "change_pct": -10.3})
    r = rules(s)
    assert r["latency_regression"]["message"] == ("p95 latency rose 50.0% (2.00 s -> 3.00 s) against "
                                                  "daily-2026-11-17.")
    assert r["quality_regression"]["message"] == ("average quality fell 0.080 (0.780 -> 0.700) against "
                                                  "daily-2026-11-17.")


def test_recurring_alert_and_unpriced_queries():
    s = sections(alerts__by_rule=[{"rule": "slow", "severity": "critical", "fired": 4, "max_value": 9.1,
                                   "threshold": 5.0}, {"rule": "once", "severity": "warning", "fired": 1,
                                                       "max_value": 1, "threshold": 0}],
                 cost__unpriced_queries=7)
    r = rules(s)
    assert set(r) == {"recurring_alert", "unpriced_models"}
    assert r["recurring_alert"]["message"].startswith("alert slow fired 4 times (worst value 9.1, threshold 5.0)")
    assert r["recurring_alert"]["severity"] == "critical"
    assert r["unpriced_models"]["message"].startswith("7 queries have no cost")
    assert [x["rule"] for x in recommendations(s, ModelObservation())] == ["recurring_alert", "unpriced_models"]


def test_cost_opportunities_cite_savings():
    opp = [{"type": "cheaper_model", "category": "how-to", "model": "big", "cheaper_model": "small", "queries": 300,
            "avg_cost_usd": 0.004, "cheaper_avg_cost_usd": 0.0004, "avg_quality": 0.71, "cheaper_avg_quality": 0.72,
            "estimated_savings_usd": 1.08},
           {"type": "cache", "repeated_questions": 12, "cacheable_queries": 40, "share_of_text_queries": 0.25,
            "estimated_savings_usd": 0.5, "estimated_latency_saved_s": 61.0, "examples": []}]
    r = rules(sections(cost__opportunities=opp))
    assert r["cheaper_model"]["message"] == (
        "how-to queries on big cost $0.00400 each at quality 0.710 (300 queries) while small cost $0.00040 at "
        "quality 0.720: routing them to small would have saved $1.08 (10.8% of $10.00 spent).")
    assert r["cache"]["message"].startswith("12 questions were asked more than once: 40 repeats (25.0% of queries "
                                            "with text) could be served from a cache, saving $0.50 (5.0% of $10.00")


def test_too_few_queries_say_nothing():
    s = sections(performance__total=10, performance__errors=5, performance__p95_latency_s=30.0)
    s["performance"]["latency_categories"] = {"poor": 9}
    assert recommendations(s, ModelObservation()) == []
    loud = copy.deepcopy(s)
    loud["performance"]["total"] = 100
    assert {"error_rate", "latency_p95"} <= set(rules(loud))
