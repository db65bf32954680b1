"""Alert evaluation: rules over windows, states pending -> firing -> resolved, notification hand-off.

The engine never reads a clock: ``evaluate(now)`` gets the time, so tests drive it with plain
records and a fake clock.  It never raises into the pipeline: hook failures are logged.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from rag_otel.alerts.metrics import QueryPoint, Summary, SystemPoint, matches
from rag_otel.alerts.rules import SYMBOLS, CompiledRule, compile_rules
from rag_otel.alerts.windows import BUCKET, Series
from rag_otel.config import AlertRule, ModelObservation, parse_duration
from rag_otel.records import AlertEvent, QueryRecord, SystemSample

logger = logging.getLogger("rag_otel.alerts")

State = Literal["inactive", "pending", "firing"]
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]  # (metric kind, filters)


@dataclass
class AlertStatus:
    """Where one alert stands now; ``reason`` says why it is inactive when it cannot be judged."""

    rule: str
    fingerprint: str
    severity: str
    labels: dict[str, str]
    state: State = "inactive"
    value: float | None = None
    threshold: float | None = None
    reason: str = ""
    active_since: float | None = None
    fired_at: float | None = None
    last_notified: float | None = None
    acknowledged: bool = False
    silenced_until: float | None = None
    message: str = ""


@dataclass
class _Alert:
    rule: CompiledRule
    status: AlertStatus
    baseline_cache: tuple[int, float | None, int] | None = field(default=None, repr=False)


class AlertEngine:
    """Evaluates compiled rules over incrementally kept windows and tracks each alert's state."""

    def __init__(
        self,
        rules: Sequence[AlertRule | CompiledRule],
        *,
        repeat_interval: float | str = "4h",
        history_size: int = 1000,
        on_event: Callable[[AlertEvent], None] | None = None,
        notify: Callable[[list[AlertEvent]], None] | None = None,
    ) -> None:
        compiled = compile_rules(r for r in rules if isinstance(r, AlertRule))
        compiled += [r for r in rules if isinstance(r, CompiledRule)]
        self.repeat = parse_duration(repeat_interval)
        self._on_event = on_event
        self._notify = notify
        self._lock = threading.RLock()
        self._history: deque[AlertEvent] = deque(maxlen=history_size)
        self._alerts = [
            _Alert(r, AlertStatus(r.name, r.fingerprint, r.severity, dict(r.labels))) for r in compiled
        ]
        self._series: dict[SeriesKey, Series] = {}
        self._keep_windows(compiled)

    def _keep_windows(self, compiled: list[CompiledRule]) -> None:
        """Declare the in-memory windows and histories the rules read (the fleet engine reads the store)."""
        for r in compiled:
            s = self._series.setdefault((r.metric.kind, r.filters), Series())
            s.need_window(r.window, exact=r.metric.quantile, users=r.metric.scale == "users")
            if r.baseline is not None:
                s.need_history(r.baseline.window + r.baseline.offset + BUCKET)
                if r.metric.scale == "users":
                    s.need_user_chunks(r.window, r.baseline.window + r.baseline.offset + r.window)
        # per query record (the hot path): only the query series, and no filter check when there are none
        self._query_series = [(filters, s) for (kind, filters), s in self._series.items() if kind == "query"]

    @classmethod
    def from_config(
        cls,
        cfg: ModelObservation,
        *,
        on_event: Callable[[AlertEvent], None] | None = None,
        notify: Callable[[list[AlertEvent]], None] | None = None,
    ) -> AlertEngine:
        return cls(
            cfg.performance_monitoring.alert_rules, repeat_interval=cfg.alerting.repeat_interval,
            on_event=on_event, notify=notify,
        )

    @property
    def rules(self) -> list[CompiledRule]:
        return [a.rule for a in self._alerts]

    # --- input ---------------------------------------------------------------------------
    def observe(self, record: QueryRecord) -> None:
        """Count one query into every window whose filters it matches."""
        try:
            point = QueryPoint.of(record)
            with self._lock:
                for filters, s in self._query_series:
                    if not filters or matches(filters, record):
                        s.add(point)
        except Exception:  # a malformed record must not stop the pipeline
            logger.exception("alerts: could not observe query record %s", getattr(record, "trace_id", "?"))

    def observe_system(self, sample: SystemSample) -> None:
        try:
            point = SystemPoint.of(sample)
            with self._lock:
                for (kind, filters), s in self._series.items():
                    if kind == "system" and matches(filters, sample):
                        s.add(point)
        except Exception:
            logger.exception("alerts: could not observe system sample")

    # --- evaluation ----------------------------------------------------------------------
    def evaluate(self, now: float) -> list[AlertEvent]:
        """Judge every rule at ``now``; return the state changes (also kept in history and sent on)."""
        with self._lock:
            changes, to_notify = self._judge(now)
            self._history.extend(changes)
        self._hand_off(changes, to_notify)
        return changes

    def _judge(self, now: float) -> tuple[list[AlertEvent], list[AlertEvent]]:
        """Step every alert at ``now`` (under the lock): its state changes, and what to notify."""
        changes: list[AlertEvent] = []
        to_notify: list[AlertEvent] = []
        for s in self._series.values():
            s.advance(now)
        for alert in self._alerts:
            try:
                self._step(alert, now, changes, to_notify)
            except Exception:  # one broken rule must not stop the others
                logger.exception("alerts: evaluating rule %s failed", alert.rule.name)
        return changes, to_notify

    def _hand_off(self, changes: list[AlertEvent], to_notify: list[AlertEvent]) -> None:
        for e in changes:
            self._call(self._on_event, e)
        if to_notify:
            self._call(self._notify, to_notify)

    def _measure(self, alert: _Alert, now: float) -> tuple[float | None, float | None, str]:
        r = alert.rule
        value = r.metric.value(self._window(r, now), r.window)
        if r.baseline is None:
            threshold = r.rule.threshold
            reason = "" if value is not None else "no data in the window"
            return value, threshold, reason
        base, samples = self._baseline(alert, now)
        b = r.baseline
        if samples < b.min_samples or base is None:
            return value, None, f"baseline has {samples} of {b.min_samples} samples needed"
        return value, base * b.factor, "" if value is not None else "no data in the window"

    def _window(self, r: CompiledRule, now: float) -> Summary:
        """What happened in the rule's window ending ``now`` (kept in memory here; the fleet engine asks the store)."""
        return self._series[(r.metric.kind, r.filters)].current(r.window, now)

    def _baseline(self, alert: _Alert, now: float) -> tuple[float | None, int]:
        """The metric over the baseline range, comparable with the rule's window; cached per minute."""
        minute = int(now // BUCKET)
        if alert.baseline_cache is not None and alert.baseline_cache[0] == minute:
            return alert.baseline_cache[1], alert.baseline_cache[2]
        r = alert.rule
        b = r.baseline
        assert b is not None
        end = now - b.offset
        start = end - b.window
        if r.metric.scale == "users":
            base, samples = self._users_mean(r, start, end)
        else:
            summary = self._range(r, start, end)
            base, samples = r.metric.value(summary, b.window), r.metric.samples(summary)
            if base is not None and r.metric.scale == "total":
                base *= r.window / b.window
        alert.baseline_cache = (minute, base, samples)
        return base, samples

    def _range(self, r: CompiledRule, start: float, end: float) -> Summary:
        """The rule's records in a past range (minute buckets here)."""
        return self._series[(r.metric.kind, r.filters)].past(start, end)

    def _users_mean(self, r: CompiledRule, start: float, end: float) -> tuple[float | None, int]:
        """Mean distinct users per window-sized chunk of a past range, and how many chunks."""
        return self._series[(r.metric.kind, r.filters)].chunks[r.window].mean(start, end)

    def _step(self, alert: _Alert, now: float, changes: list[AlertEvent], to_notify: list[AlertEvent]) -> None:
        r, st = alert.rule, alert.status
        value, threshold, reason = self._measure(alert, now)
        st.value, st.threshold, st.reason = value, threshold, reason
        holds = value is not None and threshold is not None and r.holds(value, threshold)
        silenced = st.silenced_until is not None and now < st.silenced_until
        if holds:
            st.message = self._message(r, value, threshold)
            if st.state == "inactive":
                st.state, st.active_since = "pending", now
                if r.hold > 0:
                    changes.append(self._event(alert, "pending", now))
            if st.state == "pending" and now - (st.active_since or now) >= r.hold:
                st.state, st.fired_at, st.last_notified = "firing", now, now
                e = self._event(alert, "firing", now)
                changes.append(e)
                if not silenced:
                    to_notify.append(e)
            elif st.state == "firing" and not st.acknowledged and now - (st.last_notified or now) >= self.repeat:
                st.last_notified = now
                if not silenced:
                    to_notify.append(self._event(alert, "firing", now))
            return
        if st.state == "inactive":
            return
        was_firing = st.state == "firing"
        if reason:
            st.message = f"resolved: {reason}"
        elif value is not None and threshold is not None:
            sym = SYMBOLS[r.rule.operator]
            st.message = f"resolved: {r.metric.name} is {value:.4g} (no longer {sym} {threshold:.4g})"
        e = self._event(alert, "resolved", now)
        changes.append(e)
        if was_firing and not silenced:
            to_notify.append(e)
        st.state, st.active_since, st.fired_at, st.last_notified, st.acknowledged = "inactive", None, None, None, False

    @staticmethod
    def _message(r: CompiledRule, value: float, threshold: float) -> str:
        default = f"{r.metric.name} is {value:.4g} ({SYMBOLS[r.rule.operator]} {threshold:.4g})"
        if not r.rule.message:
            return default
        try:
            return r.rule.message.format(value=_Rounded(value), threshold=_Rounded(threshold), metric=r.metric.name,
                                         rule=r.name)
        except (KeyError, IndexError, ValueError):
            return r.rule.message

    @staticmethod
    def _event(alert: _Alert, state: Literal["pending", "firing", "resolved"], now: float) -> AlertEvent:
        st = alert.status
        return AlertEvent(
            rule=st.rule, state=state, severity=st.severity, value=st.value, threshold=st.threshold,
            labels=dict(st.labels), started_at=st.active_since if st.active_since is not None else now, at=now,
            message=st.message or st.reason, fingerprint=st.fingerprint,
        )

    @staticmethod
    def _call(hook: Callable | None, arg: object) -> None:
        if hook is None:
            return
        try:
            hook(arg)
        except Exception:
            logger.exception("alerts: hook %r failed", hook)

    # --- reading -------------------------------------------------------------------------
    def statuses(self) -> list[AlertStatus]:
        """Every rule's alert, inactive ones included (with the reason when they cannot be judged)."""
        with self._lock:
            return [replace(a.status, labels=dict(a.status.labels)) for a in self._alerts]

    def active(self) -> list[AlertStatus]:
        """Pending and firing alerts."""
        return [s for s in self.statuses() if s.state != "inactive"]

    def history(self, limit: int | None = None) -> list[AlertEvent]:
        """State changes, oldest first, bounded by ``history_size``."""
        with self._lock:
            items = list(self._history)
        return items[-limit:] if limit else items

    def firing_names_for(self, record: QueryRecord) -> list[str]:
        """Firing rules this query falls under and (where a query has its own value) pushes toward."""
        try:
            point: QueryPoint | None = None
            names: list[str] = []
            with self._lock:
                for a in self._alerts:
                    r, st = a.rule, a.status
                    if st.state != "firing" or r.metric.kind != "query" or not matches(r.filters, record):
                        continue
                    if r.metric.per_record is not None and st.threshold is not None:
                        point = point or QueryPoint.of(record)
                        own = r.metric.per_record(point)
                        if own is None or not r.holds(own, st.threshold):
                            continue
                    names.append(r.name)
            return names
        except Exception:
            logger.exception("alerts: firing_names_for failed")
            return []

    # --- people --------------------------------------------------------------------------
    def _find(self, fp: str) -> _Alert | None:
        return next((a for a in self._alerts if a.status.fingerprint == fp), None)

    def acknowledge(self, fp: str) -> bool:
        """Stop repeat notifications of a firing alert until it resolves; False if unknown or not firing."""
        with self._lock:
            a = self._find(fp)
            if a is None or a.status.state != "firing":
                return False
            a.status.acknowledged = True
            return True

    def silence(self, fp: str, until: float | None) -> bool:
        """Send nothing for this alert until ``until`` (None lifts the silence); states still change."""
        with self._lock:
            a = self._find(fp)
            if a is None:
                return False
            a.status.silenced_until = until
            return True


class _Rounded(float):
    """A number that a bare ``{value}`` in a rule message prints as 4 significant digits (3.058, not
    3.058255410194397); an explicit format (``{value:.2f}``) is used as written."""

    def __format__(self, spec: str) -> str:
        return format(float(self), spec or ".4g")
