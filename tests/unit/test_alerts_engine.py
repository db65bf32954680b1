"""Alert metrics, windows, baselines and the state machine, with plain records and a fake clock."""

from __future__ import annotations

import random

import pytest

from rag_otel.alerts.engine import AlertEngine
from rag_otel.alerts.metrics import METRICS, compute
from rag_otel.alerts.rules import compile_rules
from rag_otel.config import AlertRule, ConfigError, parse_config
from rag_otel.records import AlertEvent, AxisScore, QualityResult, QueryRecord, SystemSample

T0 = 1_700_000_000.0


def rec(t: float, dur: float = 1.0, *, error: bool = False, service: str = "api", model: str = "gpt-4o",
        user: str | None = "u1", cost: float | None = 0.01, overall: float | None = None,
        grade: str | None = None) -> QueryRecord:
    quality = None
    if overall is not None:
        quality = QualityResult(axes={"accuracy": AxisScore(overall)}, overall=overall, evaluator="test/1",
                                grade=grade)
    return QueryRecord(trace_id="0" * 32, root_span_id="0" * 16, start_time=t - dur, end_time=t, service=service,
                       models=[model], user_id=user, cost_usd=cost, input_tokens=10, output_tokens=5,
                       status="error" if error else "ok", quality=quality)


def rule(name: str = "r", metric: str = "average_response_time", op: str = "gt", **kw: object) -> AlertRule:
    if "threshold" not in kw and "baseline" not in kw:
        kw["threshold"] = 2.0
    return AlertRule.model_validate({"name": name, "metric": metric, "operator": op, **kw})


def values(engine: AlertEngine) -> dict[str, float | None]:
    return {s.rule: s.value for s in engine.statuses()}


# --- the catalogue -------------------------------------------------------------------------
def test_catalogue_values_over_plain_records() -> None:
    rs = [rec(T0 + i, dur=float(i + 1), error=i == 0, user=f"u{i % 2}", cost=0.02, overall=0.5 + i / 10,
              grade="poor" if i == 0 else "good") for i in range(4)]
    assert compute("average_response_time", 300, rs) == pytest.approx(2.5)
    assert compute("p50_response_time", 300, rs) == pytest.approx(2.5)
    assert compute("error_rate", 300, rs) == pytest.approx(0.25)
    assert compute("success_rate", 300, rs) == pytest.approx(0.75)
    assert compute("queries_per_minute", 300, rs) == pytest.approx(4 / 5)
    assert compute("quality_overall", 300, rs) == pytest.approx(0.65)
    assert compute("poor_quality_rate", 300, rs) == pytest.approx(0.25)
    assert compute("cost_total", 300, rs) == pytest.approx(0.08)
    assert compute("cost_per_query", 300, rs) == pytest.approx(0.02)
    assert compute("tokens_total", 300, rs) == 60
    assert compute("active_users", 300, rs) == 2
    assert compute("quality_relevance", 300, rs) is None  # never scored: no data, not zero
    assert compute("error_rate", 300, []) is None
    s = [SystemSample(T0, "api", cpu_percent=50), SystemSample(T0 + 1, "api", cpu_percent=70, health_score=0.9)]
    assert compute("cpu_percent", 300, samples=s) == pytest.approx(60)
    assert compute("health_score", 300, samples=s) == pytest.approx(0.9)
    assert compute("disk_percent", 300, samples=s) is None


def test_unknown_metric_or_filter_is_a_clear_config_error() -> None:
    with pytest.raises(ConfigError, match=r"'slow'.*unknown metric 'latency_avg'"):
        compile_rules([rule("slow", "latency_avg")])
    with pytest.raises(ConfigError, match=r"'cpu'.*filter model does not apply to system metric"):
        compile_rules([rule("cpu", "cpu_percent", filters={"model": "x"})])
    cfg = {"model_observation": {"performance_monitoring": {"alert_rules": [
        {"name": "a", "metric": "nope", "operator": "gt", "threshold": 1}]}}}
    with pytest.raises(ConfigError, match="unknown metric 'nope'"):
        AlertEngine.from_config(parse_config(cfg))


def test_incremental_windows_equal_the_pure_functions_over_the_same_records() -> None:
    """What the engine keeps incrementally is what the metric means over the records in the window."""
    rnd = random.Random(7)
    rs = [rec(T0 + i * 0.7, dur=rnd.uniform(0.05, 9), error=rnd.random() < 0.1, user=f"u{rnd.randint(0, 30)}",
              service=rnd.choice(["api", "batch"]), overall=rnd.random(), grade=rnd.choice(["good", "poor"]),
              cost=None if rnd.random() < 0.1 else rnd.uniform(0, 0.1)) for i in range(3000)]
    names = [m for m, d in METRICS.items() if d.kind == "query"]
    engine = AlertEngine([rule(n, n, window="5m", filters={"service": "api"}) for n in names])
    for r in rs:
        engine.observe(r)
    now = T0 + 2100  # after the last record: a window never ends before what it has seen
    engine.evaluate(now)
    inside = [r for r in rs if now - 300 < r.end_time <= now and r.service == "api"]
    assert len(inside) > 100
    got = values(engine)
    for n in names:
        want = compute(n, 300, inside)
        assert (got[n] is None) if want is None else got[n] == pytest.approx(want, rel=1e-9), n
    assert got["quality_overall"] is not None and got["quality_completeness"] is None


def test_filters_select_records() -> None:
    engine = AlertEngine([rule("gpt", "error_rate", threshold=0.5, filters={"model": "gpt-4o"}),
                          rule("all", "error_rate", threshold=0.5)])
    for i in range(4):
        engine.observe(rec(T0 + i, model="gpt-4o", error=True))
        engine.observe(rec(T0 + i, model="small", error=False))
    events = engine.evaluate(T0 + 10)
    assert values(engine) == {"gpt": 1.0, "all": 0.5}
    assert [(e.rule, e.state, e.labels["model"]) for e in events] == [("gpt", "firing", "gpt-4o")]


# --- states --------------------------------------------------------------------------------
def test_pending_firing_resolved_with_for_and_no_duplicates() -> None:
    sent: list[list[AlertEvent]] = []
    stored: list[AlertEvent] = []
    engine = AlertEngine([rule("slow", threshold=2.0, **{"for": "60s"}, window="5m")],
                         notify=sent.append, on_event=stored.append)
    engine.observe(rec(T0, dur=5))
    assert [e.state for e in engine.evaluate(T0 + 1)] == ["pending"]
    assert engine.evaluate(T0 + 30) == []  # still pending, held 29 s of 60
    assert sent == []  # pending is not notified
    assert [e.state for e in engine.evaluate(T0 + 61)] == ["firing"]
    assert engine.evaluate(T0 + 90) == []  # firing again is no new state: de-duplicated
    assert [[e.state for e in b] for b in sent] == [["firing"]]
    [st] = engine.active()
    assert (st.state, st.value, st.threshold) == ("firing", 5.0, 2.0)
    resolved = engine.evaluate(T0 + 400)  # the slow query left the 5m window
    assert [(e.state, e.started_at) for e in resolved] == [("resolved", T0 + 1)]
    assert "no data" in resolved[0].message
    assert [[e.state for e in b] for b in sent] == [["firing"], ["resolved"]]
    assert [e.state for e in engine.history()] == ["pending", "firing", "resolved"]
    assert stored == engine.history()
    assert engine.active() == []


def test_pending_that_clears_before_for_never_notifies() -> None:
    sent: list[list[AlertEvent]] = []
    engine = AlertEngine([rule("slow", **{"for": "5m"}, window="1m")], notify=sent.append)
    engine.observe(rec(T0, dur=5))
    engine.evaluate(T0)
    assert [e.state for e in engine.evaluate(T0 + 120)] == ["resolved"]
    assert sent == []


def test_repeat_interval_renotifies_unless_acknowledged_or_silenced() -> None:
    sent: list[list[AlertEvent]] = []
    engine = AlertEngine([rule("errors", "error_rate", threshold=0.1, window="15m")],
                         repeat_interval="10m", notify=sent.append)

    def at(t: float) -> list[AlertEvent]:
        engine.observe(rec(t, error=True))  # errors keep coming
        return engine.evaluate(t)

    at(T0)
    assert at(T0 + 599) == []
    at(T0 + 600)
    assert len(sent) == 2 and sent[1][0].state == "firing" and sent[1][0].started_at == T0
    assert len(engine.history()) == 1  # a repeat is a notification, not a state change
    fp = engine.active()[0].fingerprint
    assert engine.acknowledge(fp)
    at(T0 + 1300)
    assert len(sent) == 2  # acknowledged: no repeat
    assert engine.silence(fp, until=T0 + 5000)
    engine.evaluate(T0 + 3000)  # the errors left the window: resolved, but silenced
    assert engine.history()[-1].state == "resolved" and len(sent) == 2
    at(T0 + 6000)  # the silence is over and the alert is back: notified again
    assert [b[0].state for b in sent] == ["firing", "firing", "firing"]
    assert not engine.acknowledge("unknown") and not engine.silence("unknown", None)


def test_fingerprint_is_rule_plus_labels_and_stable() -> None:
    a = compile_rules([rule("x", labels={"team": "a"})])[0]
    b = compile_rules([rule("x", labels={"team": "a"})])[0]
    c = compile_rules([rule("x", labels={"team": "b"})])[0]
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_history_is_bounded() -> None:
    engine = AlertEngine([rule("slow", window="1m")], history_size=5)
    for i in range(10):
        engine.observe(rec(T0 + i * 200, dur=5))
        engine.evaluate(T0 + i * 200)
        engine.evaluate(T0 + i * 200 + 100)
    assert len(engine.history()) == 5
    assert engine.history(2)[-1].at == T0 + 9 * 200 + 100


def test_hooks_that_raise_never_reach_the_caller() -> None:
    def boom(_x: object) -> None:
        raise RuntimeError("store down")

    engine = AlertEngine([rule("slow")], notify=boom, on_event=boom)
    engine.observe(rec(T0, dur=5))
    assert [e.state for e in engine.evaluate(T0 + 1)] == ["firing"]
    engine.observe("not a record")  # type: ignore[arg-type]
    assert engine.active()[0].state == "firing"


def test_firing_names_for_marks_only_queries_that_push_the_alert() -> None:
    engine = AlertEngine([rule("slow", threshold=2.0), rule("errors", "error_rate", threshold=0.2),
                          rule("busy", "queries_per_minute", threshold=0.1, filters={"service": "api"})])
    for i in range(10):
        engine.observe(rec(T0 + i, dur=5, error=i < 5))
    engine.evaluate(T0 + 10)
    assert sorted(engine.firing_names_for(rec(T0 + 11, dur=6, error=True))) == ["busy", "errors", "slow"]
    assert engine.firing_names_for(rec(T0 + 11, dur=0.5, service="other")) == []
    assert engine.firing_names_for(rec(T0 + 11, dur=0.5)) == ["busy"]


def test_system_metrics_and_host_filter() -> None:
    engine = AlertEngine([rule("cpu", "cpu_percent", threshold=80, filters={"host": "h1"}, **{"for": "30s"})])
    for i in range(10):
        engine.observe_system(SystemSample(T0 + i * 5, "api", host="h1", cpu_percent=95))
        engine.observe_system(SystemSample(T0 + i * 5, "api", host="h2", cpu_percent=10))
    engine.evaluate(T0 + 20)
    assert [e.state for e in engine.evaluate(T0 + 50)] == ["firing"]
    assert engine.statuses()[0].value == pytest.approx(95)


# --- baselines -----------------------------------------------------------------------------
def _quality_traffic(engine: AlertEngine, start: float, end: float, overall: float, step: float = 60.0) -> None:
    t = start
    while t < end:
        engine.observe(rec(t, overall=overall))
        t += step


def test_quality_drift_against_its_7_day_value() -> None:
    drift = rule("quality_drift", "quality_overall", "lt", window="1h",
                 baseline={"window": "7d", "factor": 0.8, "min_samples": 100})
    engine = AlertEngine([drift])
    day = 86400.0
    _quality_traffic(engine, T0, T0 + 7 * day, overall=0.9, step=600)
    engine.evaluate(T0 + 7 * day)
    st = engine.statuses()[0]
    assert st.state == "inactive" and st.threshold == pytest.approx(0.72)
    _quality_traffic(engine, T0 + 7 * day, T0 + 7 * day + 3600, overall=0.5, step=30)
    events = engine.evaluate(T0 + 7 * day + 3600)
    assert [e.state for e in events] == ["firing"]
    assert events[0].value == pytest.approx(0.5)
    assert events[0].threshold == pytest.approx(0.8 * engine.statuses()[0].threshold / 0.8)


def test_baseline_without_min_samples_stays_inactive_and_says_why() -> None:
    engine = AlertEngine([rule("drift", "quality_overall", "lt", baseline={"window": "1d", "min_samples": 50})])
    _quality_traffic(engine, T0, T0 + 3600, overall=0.9, step=300)  # 12 samples
    engine.observe(rec(T0 + 3650, overall=0.1))
    assert engine.evaluate(T0 + 3660) == []
    st = engine.statuses()[0]
    assert st.state == "inactive" and st.threshold is None
    assert "baseline has 12 of 50 samples" in st.reason


def test_cost_per_query_doubled_against_the_previous_day() -> None:
    doubled = rule("cost_doubled", "cost_per_query", "gt", window="1h",
                   baseline={"window": "1d", "offset": "1d", "factor": 2.0})
    engine = AlertEngine([doubled])
    day = 86400.0
    t = T0
    while t < T0 + day:  # yesterday: 1 cent per query
        engine.observe(rec(t, cost=0.01))
        t += 300
    while t < T0 + 2 * day - 3600:  # today, until the last hour: 1.5 cents (not doubled)
        engine.observe(rec(t, cost=0.015))
        t += 300
    assert engine.evaluate(t) == []
    while t < T0 + 2 * day:  # the last hour: 3 cents
        engine.observe(rec(t, cost=0.03))
        t += 300
    events = engine.evaluate(T0 + 2 * day)
    assert [e.state for e in events] == ["firing"]
    assert events[0].threshold == pytest.approx(0.02)


def test_total_baselines_scale_to_the_rule_window() -> None:
    """tokens_total over 5m compares with the 1d total scaled to 5m, not with the whole day's total."""
    engine = AlertEngine([rule("tokens", "tokens_total", "gt", window="5m",
                               baseline={"window": "1d", "factor": 3, "min_samples": 10})])
    t = T0
    while t < T0 + 86400:
        engine.observe(rec(t))  # 15 tokens every 5 minutes
        t += 300
    engine.evaluate(t)
    assert engine.statuses()[0].threshold == pytest.approx(3 * 15, rel=0.02)


def test_long_baselines_stay_small() -> None:
    """7 days of history is per-minute buckets: memory bounded by time span, not by traffic."""
    engine = AlertEngine([rule("drift", "quality_overall", "lt", baseline={"window": "7d"})])
    series = next(iter(engine._series.values()))
    t = T0
    while t < T0 + 9 * 86400:
        engine.observe(rec(t, overall=0.8))
        t += 30
        if int(t) % 3600 == 0:
            engine.evaluate(t)
    engine.evaluate(t)
    assert series.buckets is not None
    assert len(series.buckets.buckets) <= 7 * 24 * 60 + 5
    assert all(len(w.points) <= 11 for w in series.windows.values())  # the 5m window: 10 records


def test_minute_and_hour_buckets_merge_to_the_exact_totals() -> None:
    """A bucketed range (hours where whole, minutes at the edges) is the summary of its records."""
    from rag_otel.alerts.metrics import QueryPoint, summarize
    from rag_otel.alerts.windows import MinuteBuckets

    rnd = random.Random(3)
    rs = [rec(T0 + rnd.uniform(0, 3 * 86400), dur=rnd.uniform(0.01, 30), overall=rnd.random(),
              error=rnd.random() < 0.2) for _ in range(5000)]
    b = MinuteBuckets(span=4 * 86400)
    for r in rs:
        b.add(QueryPoint.of(r))
    start, end = T0 + 3333.3, T0 + 2 * 86400 + 77.7
    lo, hi = (start // 60 + 1) * 60, (end // 60) * 60  # whole minutes only
    got, want = b.range(start, end), summarize([r for r in rs if lo <= r.end_time < hi])
    assert (got.n, got.errors, got.hist) == (want.n, want.errors, want.hist)
    assert got.dur_sum == pytest.approx(want.dur_sum) and got.q_sum == pytest.approx(want.q_sum)


def test_late_records_count_in_their_own_time_and_expire_on_time() -> None:
    engine = AlertEngine([rule("slow", threshold=2.0, window="1m")])
    engine.observe(rec(T0 + 50, dur=1))
    engine.observe(rec(T0 + 10, dur=9))  # arrives late (its trace completed later)
    engine.evaluate(T0 + 55)
    assert engine.statuses()[0].value == pytest.approx(5.0)
    engine.evaluate(T0 + 75)  # the late one is past the 1m window, the other is not
    assert engine.statuses()[0].value == pytest.approx(1.0)
    engine.observe(rec(T0 + 5, dur=9))  # older than the window already: ignored
    engine.evaluate(T0 + 76)
    assert engine.statuses()[0].value == pytest.approx(1.0)
