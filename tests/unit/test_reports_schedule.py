"""The report schedule with a fake clock: occurrences, first start, one catch-up after a restart
(the store closed and reopened, a new scheduler), failures recorded and not retried."""

from __future__ import annotations

import time
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from rag_otel.config import ScheduledReport
from rag_otel.reports import ReportScheduler, last_occurrence
from rag_otel.store import Store
from tests.support.store_data import fill, generate, text_config


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def test_last_occurrence_daily_weekly_and_time_zones():
    daily = ScheduledReport(time="09:00")
    at, first = last_occurrence("daily", daily, "UTC", ts("2026-11-18T08:59"))
    assert (at.isoformat(), first) == ("2026-11-17T09:00:00+00:00", date(2026, 11, 16))
    at, first = last_occurrence("daily", daily, "UTC", ts("2026-11-18T09:00"))
    assert (at.isoformat(), first) == ("2026-11-18T09:00:00+00:00", date(2026, 11, 17))
    # 07:30 UTC is 08:30 in Paris: today's 09:00 has not come yet
    at, first = last_occurrence("daily", daily, "Europe/Paris", ts("2026-11-18T07:30"))
    assert (at.isoformat(), first) == ("2026-11-17T09:00:00+01:00", date(2026, 11, 16))
    weekly = ScheduledReport(time="06:30", day="monday")
    at, first = last_occurrence("weekly", weekly, "UTC", ts("2026-11-19T12:00"))  # a Thursday
    assert (at.isoformat(), first) == ("2026-11-16T06:30:00+00:00", date(2026, 11, 9))
    at, first = last_occurrence("weekly", weekly, "UTC", ts("2026-11-23T06:00"))  # Monday, before 06:30
    assert (at.isoformat(), first) == ("2026-11-16T06:30:00+00:00", date(2026, 11, 9))
    at, first = last_occurrence("weekly", ScheduledReport(time="06:30", day="friday"), "UTC", ts("2026-11-23T06:00"))
    assert (at.isoformat(), first) == ("2026-11-20T06:30:00+00:00", date(2026, 11, 13))


@pytest.fixture(scope="module")
def dataset():
    return generate(seed=3, days=6, per_day=40, end=datetime(2026, 11, 21, tzinfo=timezone.utc))


@pytest.fixture
def data_dir(tmp_path: Path, dataset) -> Path:
    with Store.open(tmp_path / "data", config=text_config()) as store:
        fill(store, dataset)
    return tmp_path / "data"


def config():
    cfg = text_config()
    cfg.reporting.formats = ["json"]
    cfg.reporting.daily_report = ScheduledReport(time="09:00")
    cfg.reporting.weekly_report = ScheduledReport(time="09:00", day="monday")
    return cfg


def scheduled(store: Store) -> list[tuple[str, str, str]]:
    rows = store.sql("""SELECT kind, strftime(period_start, '%Y-%m-%d'), status FROM report_runs
        WHERE json_extract_string(outputs, '$.trigger') = 'schedule' ORDER BY id""")
    return [tuple(r) for r in rows]


def test_first_start_skips_then_runs_on_time_then_catches_up_once_after_a_restart(data_dir: Path, tmp_path: Path):
    out = tmp_path / "reports"
    cfg = config()
    with Store.open(data_dir, config=cfg) as store:
        sched = ReportScheduler(store, cfg, out=out)
        first = sched.tick(ts("2026-11-17T10:00"))  # Tuesday
        assert [(r["name"], r["status"]) for r in first] == [("daily-2026-11-16", "skipped"),
                                                             ("weekly-2026-11-09", "skipped")]
        assert not out.exists()  # nothing is mailed or written for the time before the service ran
        assert sched.tick(ts("2026-11-17T23:00")) == []
        on_time = sched.tick(ts("2026-11-18T09:00:30"))
        assert [(r["name"], r["status"], r["trigger"]) for r in on_time] == [("daily-2026-11-17", "ok", "schedule")]
        assert (out / "daily-2026-11-17.json").exists()
        assert sched.tick(ts("2026-11-18T09:01:30")) == []
    # down from Wednesday 10:00 to Friday 12:00: the 09:00 runs of Thursday and Friday were missed
    with Store.open(data_dir, config=cfg) as store:
        again = ReportScheduler(store, cfg, out=out)
        caught = again.tick(ts("2026-11-20T12:00"))
        assert [(r["name"], r["status"]) for r in caught] == [("daily-2026-11-19", "ok")]  # the latest only
        assert again.tick(ts("2026-11-20T12:00:30")) == [] and again.tick(ts("2026-11-20T18:00")) == []
        # Monday: the daily and the first weekly report (the week of 11-16) both come due
        monday = again.tick(ts("2026-11-23T09:00"))
        assert [(r["name"], r["status"]) for r in monday] == [("daily-2026-11-22", "ok"), ("weekly-2026-11-16", "ok")]
        assert scheduled(store) == [
            ("daily", "2026-11-16", "skipped"), ("weekly", "2026-11-09", "skipped"), ("daily", "2026-11-17", "ok"),
            ("daily", "2026-11-19", "ok"), ("daily", "2026-11-22", "ok"), ("weekly", "2026-11-16", "ok")]
    assert sorted(p.name for p in out.iterdir()) == [
        "daily-2026-11-17.json", "daily-2026-11-19.json", "daily-2026-11-22.json", "weekly-2026-11-16.json"]


def test_a_failed_run_is_recorded_and_not_retried(data_dir: Path, tmp_path: Path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    cfg = config()
    cfg.reporting.weekly_report.enabled = False
    with Store.open(data_dir, config=cfg) as store:
        sched = ReportScheduler(store, cfg, out=blocker / "reports")
        assert [r["status"] for r in sched.tick(ts("2026-11-17T10:00"))] == ["skipped"]
        failed = sched.tick(ts("2026-11-18T09:05"))
        assert [(r["name"], r["status"]) for r in failed] == [("daily-2026-11-17", "failed")]
        assert sched.tick(ts("2026-11-18T09:10")) == []
        row = store.report_runs(1, kind="daily")[0]
        assert row["status"] == "failed" and "NotADirectoryError" in row["error"]
        assert all(k == "daily" for k, _, _ in scheduled(store))  # the disabled weekly never ran


def test_thread_runs_due_reports_and_stops(data_dir: Path, tmp_path: Path):
    cfg = config()
    now = [ts("2026-11-17T10:00")]
    with Store.open(data_dir, config=cfg) as store:
        sched = ReportScheduler(store, cfg, out=tmp_path / "r", clock=lambda: now[0], check_interval=0.05).start()
        try:
            deadline = time.monotonic() + 10
            while len(scheduled(store)) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            now[0] = ts("2026-11-18T09:00")
            while len(scheduled(store)) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            sched.stop()
        assert sched._thread is not None and not sched._thread.is_alive()
        assert [s for _, _, s in scheduled(store)] == ["skipped", "skipped", "ok"]
        assert (tmp_path / "r" / "daily-2026-11-17.json").exists()


def test_recipients_without_smtp_warn_at_start_and_runs_say_why(data_dir: Path, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture):
    """The seed config names recipients but no SMTP server: serve must run it, and say what is missing."""
    cfg = config()
    cfg.reporting.daily_report.recipients = ["team@example.org"]
    cfg.reporting.weekly_report.enabled = False
    with Store.open(data_dir, config=cfg) as store:
        sched = ReportScheduler(store, cfg, out=tmp_path / "r")
        assert "reporting.daily_report.recipients is set but reporting.smtp is not configured" in caplog.text
        sched.tick(ts("2026-11-17T10:00"))
        [run] = sched.tick(ts("2026-11-18T09:00"))
    assert run["status"] == "partial" and (tmp_path / "r" / "daily-2026-11-17.json").exists()
    assert run["deliveries"] == {"email": "error: recipients are set but reporting.smtp is not configured"}
