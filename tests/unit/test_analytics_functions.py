"""Analytics over a generated store, checked against expectations computed here in plain Python
over the same records (numpy's linear percentile = DuckDB's quantile_cont)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from rag_otel.analytics import ANALYTICS, parse_period, run
from rag_otel.config import ModelObservation
from rag_otel.records import QueryRecord
from rag_otel.semconv import QUALITY_AXES
from rag_otel.store import Store
from rag_otel.store.classify import extract_topic, normalize
from tests.support.store_data import QUESTIONS, Dataset, fill, generate, text_config

# each text's topic as the write-time heuristic names it (its quality is measured in test_store_classify.py)
TEXT_LABELS = {t: (cat, extract_topic(t)) for cat, _topic, texts in QUESTIONS for t in texts}
APPROX = {"abs": 2e-6, "rel": 1e-6}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Dataset]:
    ds = generate(seed=11)
    store = Store.open(tmp_path_factory.mktemp("store"), config=text_config())
    fill(store, ds)
    yield store, ds
    store.close()


def everything(ds: Dataset):
    return parse_period(start=ds.start, end=ds.end + 3600)


def in_period(ds: Dataset, period) -> list[QueryRecord]:
    lo = period.start.replace(tzinfo=timezone.utc).timestamp()
    hi = period.end.replace(tzinfo=timezone.utc).timestamp()
    return [r for r in ds.records if lo <= r.start_time < hi]


def day(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).date().isoformat()


def test_every_analysis_returns_json_and_registry_runs_by_name(data):
    store, ds = data
    for name in ANALYTICS:
        out = run(name, store, everything(ds))
        assert json.loads(json.dumps(out))["period"]["start"].startswith("2026-11-")
    with pytest.raises(KeyError, match="choose one of"):
        run("nope", store, everything(ds))


def test_performance_matches_plain_python(data):
    store, ds = data
    out = run("performance", store, everything(ds))
    lat = np.array([r.duration_s for r in ds.records])
    errors = sum(r.status == "error" for r in ds.records)
    assert out["source"] == "raw"
    assert out["total"] == len(ds.records) and out["errors"] == errors
    assert out["success_rate"] == pytest.approx(1 - errors / len(lat), **APPROX)
    assert out["avg_latency_s"] == pytest.approx(lat.mean(), **APPROX)
    for q in (50, 95, 99):
        assert out[f"p{q}_latency_s"] == pytest.approx(np.percentile(lat, q), **APPROX)
    t = ModelObservation().performance_monitoring.latency_thresholds
    assert out["latency_categories"] == dict(Counter(t.category(x) for x in lat))
    for row in out["by_model"]:
        ml = np.array([r.duration_s for r in ds.records if r.model == row["model"]])
        assert row["count"] == len(ml)
        assert row["p95_latency_s"] == pytest.approx(np.percentile(ml, 95), **APPROX)
    assert sum(row["count"] for row in out["timeline"]) == len(ds.records)


def test_filters_and_sub_periods_narrow_the_rows(data):
    store, ds = data
    period = parse_period("2d", end=ds.end)
    rows = [r for r in in_period(ds, period) if r.service == "faq" and r.model == "gpt-4o"]
    out = run("performance", store, period, service="faq", model="gpt-4o")
    assert out["total"] == len(rows) > 0
    assert out["avg_latency_s"] == pytest.approx(np.mean([r.duration_s for r in rows]), **APPROX)
    assert out["timeline"][0]["bucket"].endswith(":00:00Z")  # hourly buckets for a 2-day range


def test_quality_axes_histograms_worst_and_per_model(data):
    store, ds = data
    out = run("quality", store, everything(ds))
    scored = [r for r in ds.records if r.quality is not None]
    assert out["scored"] == len(scored) and out["queries"] == len(ds.records)
    for axis in QUALITY_AXES:
        scores = np.array([r.quality.axes[axis].score for r in scored])
        a = out["axes"][axis]
        assert a["avg"] == pytest.approx(scores.mean(), **APPROX)
        assert a["histogram"] == [int(((np.minimum(np.floor(scores * 10), 9)) == b).sum()) for b in range(10)]
        assert a["labels"]["good"] == int((scores >= 0.7).sum())
        assert a["labels"]["poor"] == int((scores < 0.4).sum())
    overall = np.array([r.quality.overall for r in scored])
    assert out["overall"]["p10"] == pytest.approx(np.percentile(overall, 10), **APPROX)
    assert out["overall"]["p90"] == pytest.approx(np.percentile(overall, 90), **APPROX)
    assert out["overall"]["avg"] == pytest.approx(overall.mean(), **APPROX)
    worst = sorted(scored, key=lambda r: r.quality.overall)[:10]
    assert [w["q_overall"] for w in out["worst"]] == pytest.approx([r.quality.overall for r in worst])
    assert out["grades"] == dict(Counter(r.quality.grade for r in scored))
    for row in out["by_model"]:
        ov = [r.quality.overall for r in scored if r.model == row["model"]]
        assert row["n"] == len(ov) and row["avg_overall"] == pytest.approx(np.mean(ov), **APPROX)


def expected_category(r: QueryRecord) -> str | None:
    return TEXT_LABELS[r.query_text][0] if r.query_text else r.category


def sessions(times: list[float], gap: float = 1800) -> list[list[float]]:
    out: list[list[float]] = []
    for t in sorted(times):
        if out and t - out[-1][-1] <= gap:
            out[-1].append(t)
        else:
            out.append([t])
    return out


def test_query_patterns_categories_topics_time_and_engagement(data):
    store, ds = data
    out = run("query_patterns", store, everything(ds))
    recs = ds.records
    assert out["total"] == len(recs) and out["unique_users"] == len({r.user_id for r in recs})
    cats = Counter(c for r in recs if (c := expected_category(r)))
    assert {c["category"]: c["count"] for c in out["categories"]} == dict(cats)
    topics = Counter(TEXT_LABELS[r.query_text][1] for r in recs if r.query_text)
    assert {t["topic"]: t["count"] for t in out["topics"]} == dict(topics)
    for t in out["topics"]:
        assert t["examples"] and all(TEXT_LABELS[e][1] == t["topic"] for e in t["examples"])
    assert out["complexity"]["unknown"] == sum(r.query_text is None for r in recs)
    grid = [[0] * 24 for _ in range(7)]
    for r in recs:
        d = datetime.fromtimestamp(r.start_time, timezone.utc)
        grid[d.weekday()][d.hour] += 1
    assert out["temporal"]["heatmap"] == grid
    by_user = defaultdict(list)
    for r in recs:
        by_user[r.user_id].append(r.start_time)
    all_sessions = [s for times in by_user.values() for s in sessions(times)]
    eng = out["engagement"]
    assert eng["sessions"] == len(all_sessions)
    assert eng["avg_queries_per_session"] == pytest.approx(len(recs) / len(all_sessions), **APPROX)
    assert eng["avg_session_duration_s"] == pytest.approx(np.mean([s[-1] - s[0] for s in all_sessions]), abs=1e-3)
    daily = defaultdict(set)
    for r in recs:
        daily[day(r.start_time)].add(r.user_id)
    assert {d["day"]: d["users"] for d in eng["dau"]} == {k: len(v) for k, v in daily.items()}
    assert eng["returning_users"] == 0  # nothing before the first record


def test_session_gap_is_configurable_and_returning_users_look_before_the_period(data):
    store, ds = data
    period = parse_period("2d", end=ds.end)
    recs = in_period(ds, period)
    before = {r.user_id for r in ds.records if r.start_time < ds.end - 2 * 86400}
    out = run("query_patterns", store, period, session_gap="2h")
    by_user = defaultdict(list)
    for r in recs:
        by_user[r.user_id].append(r.start_time)
    assert out["engagement"]["sessions"] == sum(len(sessions(t, 7200)) for t in by_user.values())
    assert out["engagement"]["returning_users"] == len(set(by_user) & before)


def test_categories_are_never_invented_without_text(data):
    store, ds = data
    blind = [r for r in ds.records if r.query_text is None and r.category is None]
    assert blind
    rows = store.sql("SELECT count(*) FROM queries WHERE query_text IS NULL AND category IS NULL AND topic IS NULL")
    assert rows[0][0] == len(blind)


def test_feature_usage_shares_latency_and_quality(data):
    store, ds = data
    out = run("feature_usage", store, everything(ds))
    users = {r.user_id for r in ds.records}
    for f in out["features"]:
        rows = [r for r in ds.records if f["feature"] in r.features]
        assert f["queries"] == len(rows)
        assert f["query_share"] == pytest.approx(len(rows) / len(ds.records), **APPROX)
        assert f["user_share"] == pytest.approx(len({r.user_id for r in rows}) / len(users), **APPROX)
        assert f["avg_latency_s"] == pytest.approx(np.mean([r.duration_s for r in rows]), **APPROX)
        q = [r.quality.overall for r in rows if r.quality]
        assert f["avg_quality"] == pytest.approx(np.mean(q), **APPROX)
    assert out["without_features"]["queries"] == sum(not r.features for r in ds.records)


def test_user_behavior_for_one_user(data):
    store, ds = data
    uid = "user-00"
    out = run("user_behavior", store, everything(ds), user_id=uid)
    mine = [r for r in ds.records if r.user_id == uid]
    u = out["users"][0]
    assert u["user_id"] == uid and u["queries"] == len(mine)
    assert u["active_days"] == len({day(r.start_time) for r in mine})
    assert u["sessions"] == len(sessions([r.start_time for r in mine]))
    fb = [f for f in ds.feedback if f.user_id == uid]
    assert u["feedback_count"] == len(fb)
    assert u["satisfaction"] == pytest.approx(np.mean([f.score for f in fb]), **APPROX)
    cats = Counter(c for r in mine if (c := expected_category(r)))
    assert cats[u["preferred_category"]] == max(cats.values())  # the most asked kind (any of a tie)
    assert {d["day"]: d["queries"] for d in out["daily"]} == dict(Counter(day(r.start_time) for r in mine))
    assert u["engagement"] in ("rising", "falling", "steady")


def test_user_list_is_ordered_by_activity(data):
    store, ds = data
    out = run("user_behavior", store, everything(ds))
    counts = Counter(r.user_id for r in ds.records)
    assert out["total_users"] == len(counts)
    assert [(u["user_id"], u["queries"]) for u in out["users"]] == sorted(counts.items(), key=lambda x: (-x[1], x[0]))


def test_system_usage_percentiles_and_peak_hours(data):
    store, ds = data
    out = run("system_usage", store, everything(ds))
    cpu = np.array([s.cpu_percent for s in ds.system])
    assert out["samples"] == len(ds.system) and out["hosts"] == ["host-1"]
    assert out["metrics"]["cpu_percent"]["p95"] == pytest.approx(np.percentile(cpu, 95), **APPROX)
    assert out["metrics"]["memory_percent"]["avg"] == pytest.approx(np.mean([s.memory_percent for s in ds.system]),
                                                                    **APPROX)
    assert all(9 <= p["hour"] <= 17 for p in out["peak_hours"])  # the generator's busy hours
    assert not any(b["bottleneck"] for b in out["bottlenecks"])  # latency there does not follow resources


def test_a_resource_latency_follows_is_named_a_bottleneck(tmp_path):
    from rag_otel.records import SystemSample

    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp()
    recs, samples = [], []
    for k in range(48):  # 4 hours of 5-minute buckets; CPU swings and latency follows it
        cpu = 20 + 60 * ((k * 7) % 10) / 10
        samples.append(SystemSample(time=t0 + k * 300, service="a", cpu_percent=cpu, memory_percent=50.0))
        for j in range(3):
            t = t0 + k * 300 + j * 60
            recs.append(QueryRecord(f"{k:016x}{j:016x}", "0" * 16, t, t + 0.5 + cpu / 40, service="a", models=["m"]))
    with Store.open(tmp_path) as store:
        store.write_records(recs)
        store.write_system(samples)
        out = run("system_usage", store, parse_period("1d", end=t0 + 86400 / 2))
    cpu = next(b for b in out["bottlenecks"] if b["resource"] == "cpu_percent")
    assert cpu["bottleneck"] and cpu["correlation"] == pytest.approx(1.0, abs=1e-3) and cpu["buckets"] == 48
    assert cpu["slope_s_per_unit"] == pytest.approx(1 / 40, rel=1e-3)


def test_model_usage_cost_and_opportunities(data):
    store, ds = data
    out = run("model_usage_and_cost", store, everything(ds))
    priced = [r for r in ds.records if r.cost_usd is not None]
    assert out["total_cost_usd"] == pytest.approx(sum(r.cost_usd for r in priced), abs=1e-7)
    assert out["unpriced_queries"] == len(ds.records) - len(priced)
    for m in out["models"]:
        rows = [r for r in priced if r.model == m["model"]]
        assert m["cost_usd"] == pytest.approx(sum(r.cost_usd for r in rows), abs=1e-7)
        assert m["avg_cost_per_query"] == pytest.approx(np.mean([r.cost_usd for r in rows]), abs=1e-8)
    per_day = defaultdict(float)
    for r in priced:
        per_day[(day(r.start_time), r.model)] += r.cost_usd
    assert {(d["day"], d["model"]): d["cost_usd"] for d in out["cost_per_day"]} == pytest.approx(dict(per_day))
    # cache: every repeat of a normalized question after its first could have been served from a cache
    norm = Counter(normalize(r.query_text) for r in ds.records if r.query_text)
    cache = next(o for o in out["opportunities"] if o["type"] == "cache")
    assert cache["cacheable_queries"] == sum(n - 1 for n in norm.values() if n > 1)
    assert cache["repeated_questions"] == sum(1 for n in norm.values() if n > 1)
    # cheaper model: same category, quality within 0.02, enough scored queries, savings = n * cost gap
    cheaper = [o for o in out["opportunities"] if o["type"] == "cheaper_model"]
    expected = {}
    for cat in {c for c, _, _ in QUESTIONS}:
        stats = {}
        for m in ("gpt-4o", "gpt-4o-mini"):
            rows = [r for r in priced if expected_category(r) == cat and r.model == m]
            scored = [r.quality.overall for r in rows if r.quality]
            if len(scored) >= 20:
                stats[m] = (len(rows), np.mean([r.cost_usd for r in rows]), np.mean(scored))
        if len(stats) == 2 and stats["gpt-4o-mini"][2] >= stats["gpt-4o"][2] - 0.02:
            n, c, _ = stats["gpt-4o"]
            expected[cat] = n * (c - stats["gpt-4o-mini"][1])
    assert {o["category"]: o["estimated_savings_usd"] for o in cheaper} == pytest.approx(expected, abs=1e-7)
    assert all(o["model"] == "gpt-4o" and o["cheaper_model"] == "gpt-4o-mini" for o in cheaper)


def test_period_parsing():
    now = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
    p = parse_period("7d", now=now)
    assert (p.start, p.end) == (datetime(2026, 11, 13, 12), datetime(2026, 11, 20, 12))
    assert parse_period(None, now=now).seconds == 86400
    p = parse_period(start="2026-11-01", end="2026-11-08T00:00:00Z")
    assert p.days == 7 and p.to_dict()["start"] == "2026-11-01T00:00:00Z"
    assert parse_period("1h", end=now + timedelta(hours=1)).start == datetime(2026, 11, 20, 12)
    with pytest.raises(ValueError, match="not a duration"):
        parse_period("lots")
    with pytest.raises(ValueError, match="not after its start"):
        parse_period(start="2026-11-08", end="2026-11-01")
    with pytest.raises(ValueError, match="not a date"):
        parse_period(start="yesterday-ish")


def test_a_range_without_data_is_an_empty_answer(data):
    store, _ = data
    period = parse_period(start="2020-01-01", end="2020-02-01")
    for name in ANALYTICS:
        assert json.dumps(run(name, store, period))
    for source in ("raw", "rollup"):
        perf = run("performance", store, period, source=source)
        assert perf["total"] == 0 and perf["p95_latency_s"] is None and perf["by_model"] == []
        cost = run("model_usage_and_cost", store, period, source=source)
        assert cost["queries"] == 0 and cost["models"] == [] and cost["opportunities"] == []


def test_cost_trend_of_a_period_shorter_than_a_day_compares_its_halves(data):
    """A 1 h period lies in one day: per-day buckets put all its cost in the first half (-100%)."""
    store, ds = data
    t0 = ds.records[len(ds.records) // 2].start_time
    period = parse_period(start=datetime.fromtimestamp(t0, timezone.utc).isoformat(),
                          end=datetime.fromtimestamp(t0 + 3600, timezone.utc).isoformat())
    rows = [r for r in in_period(ds, period) if r.cost_usd is not None]
    mid = t0 + 1800
    first = sum(r.cost_usd for r in rows if r.start_time < mid)
    second = sum(r.cost_usd for r in rows if r.start_time >= mid)
    assert first and second, "the generated data must have traffic in both halves of the hour"
    trend = run("model_usage_and_cost", store, period, source="raw")["trend"]
    assert trend["first_half_cost_usd"] == pytest.approx(first, abs=1e-7)
    assert trend["second_half_cost_usd"] == pytest.approx(second, abs=1e-7)
    assert trend["change_pct"] == pytest.approx((second - first) / first * 100, abs=0.01)


def test_quality_counts_queries_without_content_and_says_how_to_score_them(tmp_path):
    from rag_otel.records import NO_CONTENT_HINT, QualityResult

    def quality_of(ds: Dataset, name: str) -> dict:
        store = Store.open(tmp_path / name, config=text_config())
        try:
            fill(store, ds)
            return run("quality", store, everything(ds))
        finally:
            store.close()

    ds = generate(seed=3, days=1, per_day=20)
    expected = sum(1 for r in ds.records if r.quality is not None and r.quality.status == "no_content")
    before = quality_of(ds, "before")
    assert before["unscored_no_content"] == expected
    assert (before["scoring_hint"] is None) == (expected == 0)
    for r in ds.records[:4]:
        if r.quality is None or r.quality.status != "no_content":
            expected += 1
        r.quality = QualityResult(axes={}, overall=None, evaluator="", status="no_content")
    after = quality_of(ds, "after")
    assert after["unscored_no_content"] == expected >= 4
    assert after["scoring_hint"] == NO_CONTENT_HINT and "content.capture: scoring_only" in NO_CONTENT_HINT
