"""Reports over a generated store: every section's numbers against expectations computed here in
plain Python from the same records (numpy's linear percentile = DuckDB's quantile_cont)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from rag_otel.config import LatencyThresholds, ModelObservation
from rag_otel.records import QueryRecord
from rag_otel.reports import build_report, get_report, list_reports, parse_formats, render, run_report, write_report
from rag_otel.reports.charts import render_charts
from rag_otel.store import Store
from tests.support.store_data import Dataset, fill, generate, text_config

APPROX = {"abs": 2e-6, "rel": 1e-6}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Dataset]:
    ds = generate(seed=7)  # 2026-11-15 .. 2026-11-20 UTC
    store = Store.open(tmp_path_factory.mktemp("store"), config=text_config())
    fill(store, ds)
    yield store, ds
    store.close()


@pytest.fixture(scope="module")
def daily(data):
    return build_report(data[0], "daily", "2026-11-18")


@pytest.fixture(scope="module")
def weekly(data):
    return build_report(data[0], "weekly", "2026-11-16")


def between(ds: Dataset, start: str, end: str) -> list[QueryRecord]:
    lo, hi = (datetime.fromisoformat(x).replace(tzinfo=timezone.utc).timestamp() for x in (start, end))
    return [r for r in ds.records if lo <= r.start_time < hi]


def expected(recs: list[QueryRecord]) -> dict:
    lat = np.array([r.duration_s for r in recs])
    scored = [r.quality.overall for r in recs if r.quality is not None and r.quality.overall is not None]
    errors = sum(r.status == "error" for r in recs)
    return {"queries": len(recs), "errors": errors, "success_rate": (len(recs) - errors) / len(recs),
            "users": len({r.user_id for r in recs}), "avg": lat.mean(), "p95": float(np.percentile(lat, 95)),
            "quality": float(np.mean(scored)), "scored": len(scored), "lat": lat,
            "cost": sum(r.cost_usd for r in recs if r.cost_usd is not None)}


def test_daily_sections_match_the_records(data, daily):
    _, ds = data
    recs = between(ds, "2026-11-18", "2026-11-19")
    e = expected(recs)
    s = daily.sections
    assert s["summary"]["queries"] == e["queries"] > 50
    assert s["summary"]["unique_users"] == e["users"]
    assert s["summary"]["success_rate"] == pytest.approx(e["success_rate"], **APPROX)
    assert s["summary"]["avg_latency_s"] == pytest.approx(e["avg"], **APPROX)
    assert s["summary"]["p95_latency_s"] == pytest.approx(e["p95"], **APPROX)
    assert s["summary"]["avg_quality"] == pytest.approx(e["quality"], **APPROX)
    assert s["summary"]["scored_queries"] == e["scored"]
    assert s["summary"]["cost_usd"] == pytest.approx(e["cost"], abs=1e-6)
    assert s["summary"]["alerts_fired"] == 0
    perf = s["performance"]
    t = LatencyThresholds()
    assert perf["latency_categories"] == {
        "excellent": int((e["lat"] <= t.excellent).sum()),
        "good": int(((e["lat"] > t.excellent) & (e["lat"] <= t.good)).sum()),
        "acceptable": int(((e["lat"] > t.good) & (e["lat"] <= t.acceptable)).sum()),
        "poor": int((e["lat"] > t.acceptable).sum())}
    assert sum(tl["count"] for tl in perf["timeline"]) == e["queries"]
    assert {x["error_type"]: x["count"] for x in perf["error_types"]} == (
        {"TimeoutError": e["errors"]} if e["errors"] else {})
    # quality histogram: every scored query in exactly one tenth
    assert sum(s["quality"]["overall"]["histogram"]) == e["scored"]
    # usage heatmap: weekday x hour counts
    grid = np.zeros((7, 24), dtype=int)
    for r in recs:
        d = datetime.fromtimestamp(r.start_time, timezone.utc)
        grid[d.weekday(), d.hour] += 1
    assert s["usage"]["temporal"]["heatmap"] == grid.tolist()
    # cost per model
    for m in s["cost"]["by_model"]:
        mine = [r for r in recs if r.model == m["model"]]
        assert m["queries"] == len(mine)
        assert m["cost_usd"] == pytest.approx(sum(r.cost_usd or 0 for r in mine), abs=1e-6)
    assert sum(m["cost_share"] for m in s["cost"]["by_model"]) == pytest.approx(1.0, abs=1e-5)


def test_day_over_day_and_week_over_week_trends(data, daily, weekly):
    _, ds = data
    prev = expected(between(ds, "2026-11-17", "2026-11-18"))
    d = daily.sections["trends"]["deltas"]
    assert daily.sections["trends"]["compared_with"] == "daily-2026-11-17"
    assert d["queries"]["previous"] == prev["queries"]
    assert d["queries"]["change"] == daily.sections["summary"]["queries"] - prev["queries"]
    assert d["p95_latency_s"]["previous"] == pytest.approx(prev["p95"], **APPROX)
    assert d["error_rate"]["previous"] == pytest.approx(prev["errors"] / prev["queries"], **APPROX)
    # the week of Mon 11-16 holds 11-16..11-19; the week before holds only 11-15 (the data starts then)
    this, before = (expected(between(ds, a, b)) for a, b in (("2026-11-16", "2026-11-23"),
                                                             ("2026-11-09", "2026-11-16")))
    w = weekly.sections["trends"]["deltas"]
    assert (w["queries"]["current"], w["queries"]["previous"]) == (this["queries"], before["queries"])
    assert w["queries"]["change_pct"] == pytest.approx((this["queries"] - before["queries"]) / before["queries"] * 100,
                                                       abs=0.01)
    assert w["cost_usd"]["change"] == pytest.approx(this["cost"] - before["cost"], abs=2e-6)
    assert weekly.sections["summary"]["queries"] == this["queries"]


def test_alerts_section_counts_firings_in_the_period(data, weekly):
    store, _ = data
    week15 = build_report(store, "weekly", "2026-11-14", charts=False)  # holds the generated alert (11-15 01:01)
    assert week15.sections["alerts"]["fired"] == 1
    assert week15.sections["alerts"]["by_rule"] == [
        {"rule": "high_latency", "severity": "warning", "fired": 1, "max_value": 6.2, "threshold": 5.0}]
    assert [e["state"] for e in week15.sections["alerts"]["events"]] == ["firing", "resolved"]
    assert weekly.sections["alerts"]["fired"] == 0


def test_timezone_shifts_the_day(data):
    store, ds = data
    cfg = text_config()
    cfg.reporting.timezone = "America/New_York"  # UTC-5 in November
    rep = build_report(store, "daily", "2026-11-18", cfg, charts=False)
    assert rep.to_dict()["period"] == {"first_day": "2026-11-18", "timezone": "America/New_York",
                                       "start": "2026-11-18T05:00:00Z", "end": "2026-11-19T05:00:00Z"}
    assert rep.sections["summary"]["queries"] == len(between(ds, "2026-11-18T05:00", "2026-11-19T05:00"))


def test_recommendations_cite_their_numbers(data):
    store, ds = data
    cfg = text_config()
    cfg.performance_monitoring.latency_thresholds = LatencyThresholds(excellent=0.5, good=1.0, acceptable=2.0, poor=9)
    strict = Store.open(":memory:", config=cfg)  # thresholds label rows as the store reads them
    fill(strict, ds)
    rep = build_report(strict, "daily", "2026-11-18", charts=False)
    strict.close()
    e = expected(between(ds, "2026-11-18", "2026-11-19"))
    recs = {r["rule"]: r for r in rep.sections["recommendations"]}
    slow = int((e["lat"] > 2.0).sum())
    assert f"p95 latency {e['p95']:.2f} s exceeds the 2 s 'acceptable' threshold" in recs["latency_p95"]["message"]
    assert f"{slow / e['queries'] * 100:.1f}% of queries ({slow} of {e['queries']})" in recs["latency_p95"]["message"]
    assert recs["error_rate"]["message"].startswith(
        f"error rate {e['errors'] / e['queries'] * 100:.1f}% ({e['errors']} of {e['queries']} queries)")
    assert "cache" in recs  # the generator repeats questions
    assert f"{recs['cache']['evidence']['cacheable_queries']} repeats" in recs["cache"]["message"]
    # default thresholds: p95 (~3.5 s) is under the 5 s 'acceptable' one, so no latency finding
    default = build_report(store, "daily", "2026-11-18", text_config(), charts=False)
    assert "latency_p95" not in {r["rule"] for r in default.sections["recommendations"]}
    assert [r["severity"] for r in rep.sections["recommendations"]] == sorted(
        (r["severity"] for r in rep.sections["recommendations"]), key=["critical", "warning", "info"].index)


def test_empty_period_builds_a_report_that_says_so(data):
    rep = build_report(data[0], "daily", "2026-11-22")  # after the data, within raw retention
    s = rep.sections
    assert s["summary"]["queries"] == 0 and s["summary"]["p95_latency_s"] is None
    assert s["recommendations"] == []
    assert set(rep.charts) == {"performance", "quality", "usage", "cost"}
    assert "Nothing stands out" in render(rep, "markdown")
    json.loads(render(rep, "json"))


def test_charts_are_pngs_and_deterministic(daily):
    assert set(daily.charts) == {"performance", "quality", "usage", "cost"}
    for png in daily.charts.values():
        assert png.startswith(PNG) and len(png) > 5_000
    again = render_charts(daily)
    assert again == daily.charts


def test_renderers(daily):
    d = json.loads(render(daily, "json"))
    assert d["summary"] == daily.sections["summary"]
    assert d["charts"]["usage"] == "daily-2026-11-18-usage.png"
    assert list(d)[:5] == ["kind", "title", "name", "generated_at", "period"]
    md = render(daily, "markdown")
    assert md.startswith("# RAG daily report: 2026-11-18 (UTC)")
    for heading in ("Summary", "Recommendations", "Performance", "Quality", "Usage", "Cost", "Alerts", "Trends"):
        assert f"\n## {heading}" in md
    assert f"| queries | {daily.sections['summary']['queries']} |" in md
    assert "](daily-2026-11-18-performance.png)" in md
    page = render(daily, "html")
    assert page.count('src="data:image/png;base64,') == 4
    # nothing loads from the network; the one kind of link is an anchor into the dashboard's query view
    anchors_out = re.sub(r'<a href="[^"]*#/query/[0-9a-f]{32}"', "", page)
    assert anchors_out != page  # the worst queries link into the dashboard
    assert not re.search(r"https?://|<script|<link|@import|url\(", anchors_out)
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        render(daily, "pdf")


def test_write_report_to_a_folder_or_a_file(daily, tmp_path: Path):
    files = write_report(daily, tmp_path / "out", ["json,html", "png"])
    assert sorted(p.name for p in files) == sorted([
        "daily-2026-11-18.json", "daily-2026-11-18.html", *(f"daily-2026-11-18-{c}.png" for c in daily.charts)])
    assert all(p.stat().st_size > 0 for p in files)
    one = write_report(daily, tmp_path / "single" / "today.md", "markdown")
    assert one[-1] == tmp_path / "single" / "today.md"
    assert (tmp_path / "single" / "daily-2026-11-18-cost.png").exists()  # the Markdown's images, beside it
    with pytest.raises(ValueError, match="is a file but 2 formats"):
        write_report(daily, tmp_path / "x.html", ["html", "json"])
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        parse_formats(["html,pdf"])
    assert parse_formats(["md", "png,md"]) == ["markdown", "png"]


def test_run_report_records_the_run_and_finds_its_files(data, tmp_path: Path):
    store, _ = data
    before = len(list_reports(store, kind="daily"))
    run = run_report(store, "daily", "2026-11-17", out=tmp_path, formats=["json", "html"])
    assert run["status"] == "ok" and run["trigger"] == "manual" and run["id"] is not None
    rows = list_reports(store, kind="daily")
    assert len(rows) == before + 1 and rows[0]["id"] == run["id"]
    assert rows[0]["period_start"] == "2026-11-17T00:00:00Z"
    html = get_report(store, run["id"], "html")
    assert html == tmp_path / "daily-2026-11-17.html" and html.read_text().startswith("<!DOCTYPE html>")
    assert get_report(store, run["id"], "markdown") is None  # not written
    assert json.loads(get_report(store, run["id"]).read_text())["summary"] == run["summary"]


def test_bad_arguments_fail_clearly(data):
    store, _ = data
    with pytest.raises(ValueError, match="not a date like"):
        build_report(store, "daily", "18/11/2026")
    with pytest.raises(ValueError, match="must be daily or weekly"):
        build_report(store, "monthly", "2026-11-18")
    cfg = ModelObservation()
    with pytest.raises(ValueError, match="unknown time zone"):
        cfg.reporting = type(cfg.reporting).model_validate({"timezone": "Mars/Olympus"})


def test_report_query_links_use_the_public_url_else_a_fixed_processor_port() -> None:
    from rag_otel.config import ModelObservation
    from rag_otel.reports.builder import dashboard_url

    cfg = ModelObservation()
    cfg.processor.http = "0.0.0.0:0"
    assert dashboard_url(cfg) is None  # a random port nobody bound: no link rather than a wrong one
    cfg.processor.http = "0.0.0.0:8686"
    assert dashboard_url(cfg) == "http://127.0.0.1:8686"
    cfg.dashboards.public_url = "https://rag.example.com/otel/"
    assert dashboard_url(cfg) == "https://rag.example.com/otel"
