"""Fleet-wide alert rules: judged over every replica's records in the store, by one replica at a time.

With N replicas behind a trace-id load balancer, each sees 1/N of the traffic: its totals (cost,
tokens, queries per minute, users) are 1/N of the fleet's, its rates are estimates from a sample, and
N replicas judging the same rule would notify N times.  So a rule with ``scope: fleet`` (the default
on a shared store) is judged by the replica holding the ``alerts`` lease, over the store, and its
state lives in the store's alert-state table (:mod:`rag_otel.store.alert_state`), written before any
notification goes out.  A new leader reads that state and carries on: a firing alert is not
notified again (until ``repeat_interval``), and its resolve is sent when it clears.  Replicas that do
not lead read the same state each interval, so every replica's API, dashboard and span marks
(``rag.alert.fired``) show the fleet's alerts.

:class:`AlertEngines` puts a replica-scope engine and a fleet engine behind the one interface the
pipeline and the HTTP API use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from rag_otel.alerts import store_windows
from rag_otel.alerts.engine import AlertEngine, AlertStatus
from rag_otel.alerts.metrics import Summary
from rag_otel.alerts.rules import CompiledRule
from rag_otel.config import AlertRule, ModelObservation
from rag_otel.records import AlertEvent, QueryRecord, SystemSample

logger = logging.getLogger("rag_otel.alerts")

JOB = "alerts"  # the lease whose holder judges the fleet-wide rules
# what the leader writes for each alert (silences are people's, written apart and never overwritten)
PERSISTED = ("state", "value", "threshold", "reason", "active_since", "fired_at", "last_notified", "acknowledged",
             "message")


def split_rules(rules: Sequence[AlertRule], *, shared: bool) -> tuple[list[AlertRule], list[AlertRule]]:
    """(replica-scope rules, fleet-scope rules); a rule without ``scope`` is fleet-wide on a shared store."""
    replica, fleet = [], []
    for r in rules:
        (fleet if (r.scope or ("fleet" if shared else "replica")) == "fleet" else replica).append(r)
    return replica, fleet


class FleetAlertEngine(AlertEngine):
    """The engine's states and notifications, over windows read from the store, run by the lease holder."""

    def __init__(self, rules: Sequence[AlertRule | CompiledRule], *, store: Any, state: Any,
                 leads: Callable[[], bool], repeat_interval: float | str = "4h",
                 on_event: Callable[[AlertEvent], None] | None = None,
                 notify: Callable[[list[AlertEvent]], None] | None = None, dispatcher: Any = None) -> None:
        super().__init__(rules, repeat_interval=repeat_interval, on_event=on_event, notify=notify)
        for a in self._alerts:
            store_windows.check(a.rule)
        self.store, self.state, self.leads = store, state, leads
        self.dispatcher = dispatcher  # told when leadership changes (notifiers that re-send what fires)
        self._led = False
        self._measured: dict[int, Any] = {}  # this evaluation's (value, threshold, reason) per alert

    def _keep_windows(self, compiled: list[CompiledRule]) -> None:
        self._query_series = []  # nothing kept in memory: the store has every replica's records

    def observe(self, record: QueryRecord) -> None:
        """Records reach fleet rules through the store."""

    def observe_system(self, sample: SystemSample) -> None:
        """Samples reach fleet rules through the store."""

    def _window(self, r: CompiledRule, now: float) -> Summary:
        return store_windows.summary(self.store, r, now - r.window, now)

    def _range(self, r: CompiledRule, start: float, end: float) -> Summary:
        return store_windows.summary(self.store, r, start, end)

    def _users_mean(self, r: CompiledRule, start: float, end: float) -> tuple[float | None, int]:
        return store_windows.users_mean(self.store, r, start, end)

    def evaluate(self, now: float) -> list[AlertEvent]:
        """Leader: load the shared state, judge, save, then notify.  Others: load the state to show it."""
        if not self._alerts:
            return []
        try:
            saved = self.state.load()
        except Exception as e:  # without the state a judgement could notify twice: wait for the next interval
            logger.warning("alerts: fleet alert state unavailable (%s); not evaluated this time", _first_line(e))
            return []
        leads = self.leads()
        # the store is asked outside the lock: the pipeline's span marks and the API read the states meanwhile
        measured = {id(a): self._measure_safely(a, now) for a in self._alerts} if leads else {}
        with self._lock:
            self._apply(saved)
            if leads != self._led:
                self._led = leads
                self._handed_over(leads)
            if not leads:
                return []
            self._measured = measured
            changes, to_notify = self._judge(now)
            docs = {a.status.fingerprint: _doc(a.status) for a in self._alerts}
        try:
            self.state.save(docs)
        except Exception as e:  # nothing is sent that the next leader would not know was sent
            logger.warning("alerts: saving the fleet alert state failed (%s); notifications wait for the next "
                           "evaluation", _first_line(e))
            return []
        with self._lock:
            self._history.extend(changes)
        self._hand_off(changes, to_notify)
        return changes

    def _measure_safely(self, alert: Any, now: float) -> tuple[float | None, float | None, str] | Exception:
        try:
            return AlertEngine._measure(self, alert, now)
        except Exception as e:  # raised again in _measure, where the engine logs it for this rule alone
            return e

    def _measure(self, alert: Any, now: float) -> tuple[float | None, float | None, str]:
        got = self._measured[id(alert)]
        if isinstance(got, Exception):
            raise got
        return got

    def _handed_over(self, leads: bool) -> None:
        """Leadership moved: the new leader's notifiers take over re-sending what fires, the old one's stop."""
        if self.dispatcher is None:
            return
        firing = [a for a in self._alerts if a.status.state == "firing"]
        try:
            if leads:
                self.dispatcher.adopt([self._event(a, "firing", a.status.last_notified or 0.0) for a in firing])
            else:
                self.dispatcher.forget([a.status.fingerprint for a in self._alerts])
        except Exception:
            logger.exception("alerts: handing fleet alerts over to the notifiers failed")

    def _apply(self, saved: dict[str, dict[str, Any]]) -> None:
        """Make every alert's status the stored one (an alert without a row is inactive)."""
        blank = AlertStatus("", "", "", {})
        for a in self._alerts:
            doc = saved.get(a.status.fingerprint, {})
            for key in PERSISTED:
                setattr(a.status, key, doc.get(key, getattr(blank, key)))
            a.status.silenced_until = doc.get("silenced_until")

    def acknowledge(self, fp: str) -> bool:
        return self._change(fp, "acknowledging", firing_only=True, acknowledged=True)

    def silence(self, fp: str, until: float | None) -> bool:
        return self._change(fp, "silencing", firing_only=False, silenced_until=until)

    def _change(self, fp: str, doing: str, *, firing_only: bool, **change: Any) -> bool:
        """A person's change to an alert, saved in the catalog first so every replica (and the next leader)
        sees it; False when the alert is unknown (or not firing, for ``firing_only``) or the save failed."""
        with self._lock:
            a = self._find(fp)
            if a is None or (firing_only and a.status.state != "firing"):
                return False
        try:
            self.state.update(fp, a.rule.name, **change)
        except Exception as e:
            logger.warning("alerts: %s %s failed (%s)", doing, a.rule.name, _first_line(e))
            return False
        with self._lock:
            for key, value in change.items():
                setattr(a.status, key, value)
        return True


def _doc(st: AlertStatus) -> dict[str, Any]:
    return {"rule": st.rule, **{k: getattr(st, k) for k in PERSISTED}}


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]


class AlertEngines:
    """A replica-scope engine and a fleet engine as one (what the pipeline and the API talk to)."""

    def __init__(self, replica: AlertEngine, fleet: FleetAlertEngine | None) -> None:
        self.replica, self.fleet = replica, fleet
        self._all = [e for e in (replica, fleet) if e is not None]

    @classmethod
    def from_config(cls, cfg: ModelObservation, *, store: Any, leads: Callable[[], bool], holder: str,
                    on_event: Callable[[AlertEvent], None] | None = None,
                    notify: Callable[[list[AlertEvent]], None] | None = None,
                    dispatcher: Any = None) -> AlertEngines:
        """Split the config's rules by scope; fleet rules need the store (without one they run per replica)."""
        rules = cfg.performance_monitoring.alert_rules
        replica_rules, fleet_rules = split_rules(rules, shared=bool(getattr(store, "shared", False)))
        if fleet_rules and store is None:
            logger.warning("alerts: no store, so the fleet-scope rules %s are judged on this replica's traffic",
                           ", ".join(r.name for r in fleet_rules))
            replica_rules, fleet_rules = list(rules), []
        repeat = cfg.alerting.repeat_interval
        replica = AlertEngine(replica_rules, repeat_interval=repeat, on_event=on_event, notify=notify)
        fleet = None
        if fleet_rules:
            fleet = FleetAlertEngine(fleet_rules, store=store, state=store.alert_state(JOB, holder), leads=leads,
                                     repeat_interval=repeat, on_event=on_event, notify=notify,
                                     dispatcher=dispatcher)
        return cls(replica, fleet)

    @property
    def rules(self) -> list[CompiledRule]:
        return [r for e in self._all for r in e.rules]

    def observe(self, record: QueryRecord) -> None:
        self.replica.observe(record)

    def observe_system(self, sample: SystemSample) -> None:
        self.replica.observe_system(sample)

    def evaluate(self, now: float) -> list[AlertEvent]:
        return [ev for e in self._all for ev in e.evaluate(now)]

    def statuses(self) -> list[AlertStatus]:
        return [s for e in self._all for s in e.statuses()]

    def active(self) -> list[AlertStatus]:
        return [s for e in self._all for s in e.active()]

    def history(self, limit: int | None = None) -> list[AlertEvent]:
        items = sorted((ev for e in self._all for ev in e.history()), key=lambda ev: ev.at)
        return items[-limit:] if limit else items

    def firing_names_for(self, record: QueryRecord) -> list[str]:
        return [n for e in self._all for n in e.firing_names_for(record)]

    def acknowledge(self, fp: str) -> bool:
        return any(e.acknowledge(fp) for e in self._all)

    def silence(self, fp: str, until: float | None) -> bool:
        return any(e.silence(fp, until) for e in self._all)
