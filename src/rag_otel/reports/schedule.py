"""Run daily and weekly reports on schedule inside ``rag-otel serve``, catching up once after downtime.

Every tick asks, per enabled kind, for the most recent scheduled time at or before now (in
``reporting.timezone``) and runs that occurrence unless ``report_runs`` already holds a scheduled
run for its period.  So a service that was down at 09:00 runs the report when it comes back, once;
only the most recent missed occurrence is caught up (three days down means one daily report, not
three: older ones are stale news and can be made with ``rag-otel report``).  On the very first
start (no scheduled run recorded for a kind) the most recent occurrence is recorded as ``skipped``:
there was no data before the service ran, and a fresh install should not mail an empty report.
A failed run is recorded and not retried automatically (no mail storms); rerun it by hand.
In a fleet (a shared store) only the replica holding the ``reports`` lease ticks (``leads``); the
runs it records are in the shared store, so a replica that takes over later sees them and does
not repeat them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

from rag_otel.config import ModelObservation, ScheduledReport
from rag_otel.reports.period import KINDS, report_period, zone
from rag_otel.reports.run import run_report
from rag_otel.store.store import Store, utc

logger = logging.getLogger("rag_otel.reports")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def last_occurrence(kind: str, sched: ScheduledReport, tz: str, now: float) -> tuple[datetime, date]:
    """(the latest scheduled local time <= now, the first day of the period that run reports on)."""
    z = zone(tz)
    local = datetime.fromtimestamp(now, tz=z)
    hh, mm = (int(x) for x in sched.time.split(":"))
    day = local.date()
    if kind == "weekly":
        day -= timedelta(days=(day.weekday() - WEEKDAYS.index(sched.day or "monday")) % 7)
    at = datetime.combine(day, dtime(hh, mm), tzinfo=z)
    if at > local:
        day -= timedelta(days=1 if kind == "daily" else 7)
        at = datetime.combine(day, dtime(hh, mm), tzinfo=z)
    return at, day - timedelta(days=1 if kind == "daily" else 7)


class ReportScheduler:
    """Owns one thread; :meth:`tick` is the whole logic, callable with a fake clock in tests."""

    def __init__(self, store: Store, config: ModelObservation, *, out: str | Path | None = None,
                 clock: Callable[[], float] = time.time, env: dict[str, str] | None = None,
                 check_interval: float = 30.0, leads: Callable[[], bool] | None = None) -> None:
        rep = config.reporting
        zone(rep.timezone)  # an unknown zone fails at start, not at 09:00
        for kind in KINDS:
            sched = self._sched(config, kind)
            if sched.enabled and sched.recipients and rep.smtp is None:
                # the seed config has recipients and no SMTP server: it must still run, so say it now
                # (each run is then 'partial', its files written and the email error recorded)
                logger.warning("rag-otel reports: reporting.%s_report.recipients is set but reporting.smtp is not "
                               "configured; %s reports are written to the folder but not emailed", kind, kind)
        self.store, self.config, self.out, self.clock, self.env = store, config, out, clock, env
        self.check_interval = check_interval
        self.leads = leads  # None: this process is the only scheduler (a single-node store)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.last_tick: float | None = None  # clock time the last tick finished (health, tests)

    @staticmethod
    def _sched(config: ModelObservation, kind: str) -> ScheduledReport:
        return config.reporting.daily_report if kind == "daily" else config.reporting.weekly_report

    def _recorded(self, kind: str, period_start: datetime | None = None) -> int:
        sql = ("SELECT count(*) FROM report_runs WHERE kind = ? "
               "AND json_extract_string(outputs, '$.trigger') = 'schedule'")
        params: list[Any] = [kind]
        if period_start is not None:
            sql += " AND period_start = ?"
            params.append(period_start)
        return int(self.store.sql(sql, params)[0][0])

    def tick(self, now: float | None = None) -> list[dict[str, Any]]:
        """Run what is due; returns one dict per run or skip (empty when nothing was due)."""
        now = self.clock() if now is None else now
        done: list[dict[str, Any]] = []
        if self.leads is not None and not self.leads():
            return done
        with self._lock:
            for kind in KINDS:
                sched = self._sched(self.config, kind)
                if not sched.enabled:
                    continue
                at, first_day = last_occurrence(kind, sched, self.config.reporting.timezone, now)
                rp = report_period(kind, first_day, self.config.reporting.timezone)
                if self._recorded(kind, rp.start):
                    continue
                if not self._recorded(kind):
                    self.store.write_report_run(kind, rp.start, rp.end, status="skipped", ran_at=utc(now), outputs={
                        "trigger": "schedule", "name": rp.label, "reason": "first start: before the service ran"})
                    done.append({"kind": kind, "name": rp.label, "status": "skipped"})
                    continue
                late = now - at.timestamp()
                logger.info("rag-otel report %s: running (scheduled %s%s)", rp.label, at.isoformat(),
                            f", {late / 60:.0f} min late" if late > 120 else "")
                try:
                    done.append(run_report(self.store, kind, first_day, self.config, out=self.out, send=True,
                                           trigger="schedule", env=self.env, now=now))
                except Exception as e:  # recorded by run_report; the service keeps running
                    logger.exception("rag-otel report %s failed", rp.label)
                    done.append({"kind": kind, "name": rp.label, "status": "failed", "error": str(e)})
            self.last_tick = now
        return done

    # --- thread ----------------------------------------------------------------------------------
    def start(self) -> ReportScheduler:
        self._thread = threading.Thread(target=self._loop, name="rag-otel-reports", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                logger.exception("rag-otel report scheduler: tick failed; retrying in %.0fs", self.check_interval)
            self._wake.wait(self.check_interval)
            self._wake.clear()

    def wake(self) -> None:
        """Tick now (this replica just became the reports leader) rather than at the next interval."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread; a report being built finishes first (up to ``timeout``)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
