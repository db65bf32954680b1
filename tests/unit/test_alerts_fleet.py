"""Fleet-scope alert rules over a real store (a DuckDB file; the lake runs the same SQL, see
tests/integration/test_fleet_alerts.py): every metric read from the store equals the in-memory
engine's over the same records, and the shared state carries an alert across a change of leader."""

from __future__ import annotations

import pytest

from rag_otel.alerts.fleet import AlertEngines, FleetAlertEngine, split_rules
from rag_otel.alerts.metrics import METRICS, compute, matches
from rag_otel.alerts.rules import compile_rule
from rag_otel.config import AlertRule, ConfigError, ModelObservation
from rag_otel.records import AlertEvent, QueryRecord, SystemSample
from rag_otel.store import Store
from rag_otel.store.alert_state import MemoryAlertState
from tests.support.store_data import fill, generate, text_config

DS = generate(seed=11, days=2, per_day=400)


@pytest.fixture(scope="module")
def store() -> Store:
    s = Store.open(":memory:", config=text_config())
    fill(s, DS)
    yield s
    s.close()


def rule(metric: str, window: str = "6h", **kw: object) -> AlertRule:
    return AlertRule.model_validate({"name": f"r-{metric}", "metric": metric, "operator": "gt", "threshold": 0,
                                     "window": window, **kw})


@pytest.mark.parametrize("metric", sorted(METRICS))
@pytest.mark.parametrize(("window", "filters"), [("6h", {}), ("13h", {"service": "faq", "model": "gpt-4o"}),
                                                 ("2d", {"status": "error"})])
def test_every_metric_from_the_store_equals_the_in_memory_value(store: Store, metric: str, window: str,
                                                                filters: dict[str, str]) -> None:
    if METRICS[metric].kind == "system":
        filters = {"host": "host-1"} if filters else {}
    def selected(x: QueryRecord | SystemSample) -> bool:
        return matches(filters.items(), x)

    now = DS.start + 86400 * 1.37 if window != "2d" else DS.end
    if metric == "active_users":  # exact distinct users: windows up to 15m, as in memory
        window, now = "15m", max(x.end_time for x in DS.records if x.end_time <= now and selected(x)) + 1
    r = compile_rule(rule(metric, window, filters=filters))
    eng = FleetAlertEngine([r], store=store, state=MemoryAlertState(), leads=lambda: True)
    start = now - r.window
    if r.metric.kind == "system":
        recs, samples = [], [x for x in DS.system if start < x.time <= now and selected(x)]
    else:
        recs, samples = [x for x in DS.records if start < x.end_time <= now and selected(x)], []
    assert len(recs) + len(samples) > (0 if metric == "active_users" else 5)
    expected = compute(metric, r.window, recs, samples)
    got = r.metric.value(eng._window(r, now), r.window)
    if expected is None:  # (health_score: the dataset's apps send none)
        assert got is None
    else:
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-9), (metric, got, expected)


def test_a_baseline_rule_reads_its_baseline_from_the_store(store: Store) -> None:
    r = AlertRule.model_validate({"name": "cost_up", "metric": "cost_total", "operator": "gt", "window": "1h",
                                  "baseline": {"window": "1d", "factor": 1.0, "min_samples": 50}})
    eng = FleetAlertEngine([r], store=store, state=MemoryAlertState(), leads=lambda: True)
    eng.evaluate(DS.end)
    st = eng.statuses()[0]
    day = [x.cost_usd for x in DS.records if DS.end - 86400 < x.end_time <= DS.end and x.cost_usd is not None]
    assert st.threshold == pytest.approx(sum(day) / 24, rel=1e-9)  # the day's cost scaled to the 1h window


def test_a_filter_the_store_does_not_keep_is_refused_by_name(store: Store) -> None:
    with pytest.raises(ConfigError, match=r"r-error_rate.*instrumentation.*scope: replica"):
        FleetAlertEngine([rule("error_rate", filters={"instrumentation": "openai"})], store=store,
                         state=MemoryAlertState(), leads=lambda: True)


def test_scope_defaults_to_fleet_on_a_shared_store_only() -> None:
    rules = [rule("error_rate"), rule("cost_total", scope="replica"), rule("tokens_total", scope="fleet")]
    replica, fleet = split_rules(rules, shared=True)
    assert [r.metric for r in replica] == ["cost_total"] and [r.metric for r in fleet] == ["error_rate", "tokens_total"]
    replica, fleet = split_rules(rules, shared=False)
    assert [r.metric for r in replica] == ["error_rate", "cost_total"] and [r.metric for r in fleet] == ["tokens_total"]


def test_a_new_leader_keeps_a_firing_alert_and_sends_its_resolve_once(store: Store) -> None:
    """Two replicas share one state; the leader fires and notifies, dies; the other neither notifies
    again nor stays firing: it sends the resolve when the window clears."""
    state = MemoryAlertState()
    leader = {"a": True, "b": False}
    sent: list[tuple[str, AlertEvent]] = []
    # ~0.28 queries a minute while the data lasts: above the threshold, and none after it ends
    r = rule("queries_per_minute", window="2h", threshold=0.1)
    a = FleetAlertEngine([r], store=store, state=state, leads=lambda: leader["a"],
                         notify=lambda evs: sent.extend(("a", e) for e in evs))
    b = FleetAlertEngine([r], store=store, state=state, leads=lambda: leader["b"],
                         notify=lambda evs: sent.extend(("b", e) for e in evs))
    t = DS.end - 600
    assert [e.state for e in a.evaluate(t)] == ["firing"]
    assert b.evaluate(t + 5) == [] and b.active()[0].state == "firing"  # the follower shows the fleet's alert
    assert a.evaluate(t + 10) == []  # still firing: no second notification
    leader.update(a=False, b=True)  # a dies; b takes the lease
    assert b.evaluate(t + 20) == [] and b.active()[0].state == "firing"
    assert b.evaluate(DS.end + 3 * 3600)[0].state == "resolved"  # no traffic after the data ends
    assert [(who, e.state) for who, e in sent] == [("a", "firing"), ("b", "resolved")]


def test_people_act_on_fleet_alerts_through_any_replica(store: Store) -> None:
    state = MemoryAlertState()
    sent: list[AlertEvent] = []
    r = rule("queries_per_minute", window="2h", threshold=0.1)
    leader = FleetAlertEngine([r], store=store, state=state, leads=lambda: True, repeat_interval="10s",
                              notify=sent.extend)
    other = FleetAlertEngine([r], store=store, state=state, leads=lambda: False)
    t = DS.end - 600
    leader.evaluate(t)
    other.evaluate(t)
    fp = other.active()[0].fingerprint
    assert other.acknowledge(fp)  # through a replica that does not lead
    leader.evaluate(t + 60)  # past repeat_interval: an acknowledged alert is not repeated
    assert len(sent) == 1
    assert other.silence(fp, t + 100_000)
    assert leader.evaluate(DS.end + 3 * 3600)[0].state == "resolved" and len(sent) == 1  # silenced: not sent


def test_the_pipeline_interface_puts_both_scopes_together(store: Store) -> None:
    cfg = ModelObservation.model_validate({"performance_monitoring": {"alert_rules": [
        {"name": "mine", "metric": "error_rate", "operator": "gt", "threshold": 0.5},
        {"name": "fleet", "metric": "cost_total", "operator": "gt", "threshold": 0, "window": "2h", "scope": "fleet"},
    ]}})
    engines = AlertEngines.from_config(cfg, store=store, leads=lambda: True, holder="me")
    assert [r.name for r in engines.rules] == ["mine", "fleet"]
    assert [e.rule for e in engines.evaluate(DS.end - 600)] == ["fleet"]
    assert [s.rule for s in engines.active()] == ["fleet"]


def test_reading_the_store_does_not_hold_up_span_marks_or_the_api(store: Store) -> None:
    """The pipeline asks the engine for firing alerts on every query: a slow store (a lake under load)
    must not make it wait for the leader's evaluation."""
    import threading
    import time

    class SlowStore:  # the real store, each query 0.5 s slower
        def sql(self, *a: object) -> list[tuple]:
            time.sleep(0.5)
            return store.sql(*a)

    rules = [rule("queries_per_minute", window="2h"), rule("cost_total", window="2h")]
    eng = FleetAlertEngine(rules, store=SlowStore(), state=MemoryAlertState(), leads=lambda: True)
    worker = threading.Thread(target=eng.evaluate, args=(DS.end - 600,))
    worker.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    eng.firing_names_for(DS.records[-1])
    eng.statuses()
    assert time.monotonic() - t0 < 0.2
    worker.join()
    assert {s.state for s in eng.statuses()} == {"firing"}


def test_on_a_leader_change_alertmanager_re_posting_moves_with_the_alert(store: Store) -> None:
    """Alertmanager lets a firing alert run out unless it is re-posted: the new leader's notifier takes
    the fleet's firing alerts over (without notifying anyone again), the old leader's drops them."""
    import time

    from rag_otel.alerts.notifiers import AlertmanagerNotifier

    class Notifiers:  # the Dispatcher's adopt/forget over one real Alertmanager notifier (not sending here)
        def __init__(self) -> None:
            self.am = AlertmanagerNotifier("http://127.0.0.1:9")

        def adopt(self, events: list[AlertEvent]) -> None:
            self.am.adopt(events)

        def forget(self, fps: list[str]) -> None:
            self.am.forget(fps)

    state, leader = MemoryAlertState(), {"a": True, "b": False}
    na, nb = Notifiers(), Notifiers()
    r = rule("queries_per_minute", window="2h", threshold=0.1)
    a = FleetAlertEngine([r], store=store, state=state, leads=lambda: leader["a"], dispatcher=na)
    b = FleetAlertEngine([r], store=store, state=state, leads=lambda: leader["b"], dispatcher=nb)
    t = DS.end - 600
    a.evaluate(t)
    na.am.adopt([e for e in a.history() if e.state == "firing"])  # (a's dispatcher sent it when it fired)
    assert [e.rule for e in na.am.due(time.time() + 120)] == [r.name]
    b.evaluate(t + 5)
    assert nb.am.due(time.time() + 120) == []  # a follower re-posts nothing
    leader.update(a=False, b=True)
    b.evaluate(t + 10)
    assert [(e.rule, e.state) for e in nb.am.due(time.time())] == [(r.name, "firing")]
    a.evaluate(t + 15)
    assert na.am.due(time.time() + 120) == []
