"""The REST API of a real running processor (real HTTP on a free port, a real DuckDB store).

The store is filled with the deterministic generated dataset through the store's own write API;
expectations are computed with plain Python over the same records.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from rag_otel.config import AlertRule, ConfigError, ModelObservation, Notifier
from rag_otel.processor.service import ProcessorService
from rag_otel.records import QueryRecord
from tests.support import store_data

JAEGER = "http://jaeger.example:16686"
DS = store_data.generate(seed=11, days=3, per_day=80)
DAY = ("2026-11-18T00:00:00Z", "2026-11-19T00:00:00Z")


def config(tmp_path: Path, **dashboards: object) -> ModelObservation:
    cfg = store_data.text_config()
    p = cfg.processor
    p.otlp_grpc = p.otlp_http = p.http = "127.0.0.1:0"
    p.data_dir = str(tmp_path / "data")
    p.shutdown_grace = 3.0
    cfg.reporting.out_dir = str(tmp_path / "reports")
    cfg.alerting.notifiers = [Notifier(type="log")]
    cfg.performance_monitoring.alert_rules = [
        AlertRule(name="costly_queries", metric="cost_per_query", operator="gt", threshold=0.0, window="5m"),
    ]
    for k, v in dashboards.items():
        setattr(cfg.dashboards, k, v)
    return cfg


def start(cfg: ModelObservation, env: dict[str, str] | None = None) -> ProcessorService:
    svc = ProcessorService(cfg, env=env).start()
    store_data.fill(svc.store, DS)
    return svc


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessorService]:
    s = start(config(tmp_path_factory.mktemp("web"), jaeger_ui_url=JAEGER))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def api(svc: ProcessorService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{svc.http_address}", timeout=20) as c:
        yield c


def in_day(r: QueryRecord) -> bool:
    lo, hi = (datetime.fromisoformat(x.replace("Z", "+00:00")).timestamp() for x in DAY)
    return lo <= r.start_time < hi


def test_analytics_endpoint_answers_each_analysis_over_the_period(api: httpx.Client) -> None:
    names = api.get("/api/v1/analytics").json()["analytics"]
    assert {"performance", "quality", "query_patterns", "model_usage_and_cost"} <= set(names)
    day = [r for r in DS.records if in_day(r)]
    perf = api.get("/api/v1/analytics/performance", params={"from": DAY[0], "to": DAY[1]}).json()
    assert perf["total"] == len(day)
    assert perf["analysis"] == "performance" and perf["period"]["start"] == DAY[0]
    assert abs(datetime.fromisoformat(perf["generated_at"].replace("Z", "+00:00")).timestamp() - time.time()) < 60
    assert perf["errors"] == sum(r.status == "error" for r in day)
    faq = api.get("/api/v1/analytics/performance", params={"from": DAY[0], "to": DAY[1], "service": "faq"}).json()
    assert faq["total"] == sum(r.service == "faq" for r in day)
    for name in names:  # every analysis answers over a relative period too
        r = api.get(f"/api/v1/analytics/{name}", params={"period": "30d"})
        assert r.status_code == 200, (name, r.text)


def test_bad_input_is_a_json_error_with_a_message(api: httpx.Client) -> None:
    r = api.get("/api/v1/analytics/performance", params={"period": "seven days"})
    assert r.status_code == 400 and "not a duration" in r.json()["message"]
    r = api.get("/api/v1/analytics/performance", params={"from": "2026-11-19", "to": "2026-11-18"})
    assert r.status_code == 400 and "not after its start" in r.json()["message"]
    r = api.get("/api/v1/analytics/nonsense")
    assert r.status_code == 422 and "performance" in r.json()["message"]
    r = api.get("/api/v1/queries/search", params={"min_quality": 3})
    assert r.status_code == 422 and "min_quality" in r.json()["message"]
    r = api.get("/api/v1/no/such/thing")
    assert r.status_code == 404 and r.json()["message"]


def test_recent_queries_link_to_jaeger(api: httpx.Client) -> None:
    rows = api.get("/api/v1/queries", params={"limit": 5}).json()
    newest = sorted(DS.records, key=lambda r: r.start_time, reverse=True)[:5]
    assert [r["trace_id"] for r in rows] == [r.trace_id for r in newest]
    assert all(r["trace_url"] == f"{JAEGER}/trace/{r['trace_id']}" for r in rows)


def test_search_combines_filters(api: httpx.Client) -> None:
    user = "user-00"
    want = {r.trace_id for r in DS.records if r.user_id == user and r.model == "gpt-4o-mini" and r.quality is not None
            and 0.6 <= r.quality.overall <= 0.8 and in_day(r)}
    rows = api.get("/api/v1/queries/search", params={"user": user, "model": "gpt-4o-mini", "min_quality": 0.6,
                                                     "max_quality": 0.8, "from": DAY[0], "to": DAY[1]}).json()
    assert len(want) >= 3 and {r["trace_id"] for r in rows} == want
    text = {r.trace_id for r in DS.records if r.query_text and "password" in r.query_text.lower()
            and r.status == "ok"}
    rows = api.get("/api/v1/queries/search", params={"text": "PASSWORD", "status": "ok", "limit": 1000}).json()
    assert text and {r["trace_id"] for r in rows} == text
    one = DS.records[7].trace_id
    assert [r["trace_id"] for r in api.get("/api/v1/queries/search", params={"text": one.upper()}).json()] == [one]
    session = DS.records[0].session_id
    rows = api.get("/api/v1/queries/search", params={"session": session}).json()
    assert {r["trace_id"] for r in rows} == {r.trace_id for r in DS.records if r.session_id == session}


def test_feedback_is_stored_and_bad_feedback_refused(svc: ProcessorService, api: httpx.Client) -> None:
    trace = DS.records[3].trace_id
    before = svc.store.count("feedback")
    r = api.post("/api/v1/feedback", json={"trace_id": trace.upper(), "score": 0.25, "comment": "meh",
                                           "user_id": "user-03"})
    assert r.status_code == 201, r.text
    row = svc.store.dicts("SELECT * FROM feedback WHERE comment = 'meh'")
    assert row and row[0]["trace_id"] == trace and row[0]["score"] == 0.25
    for bad, why in (({"trace_id": trace}, "score"), ({"trace_id": "xyz", "thumbs": "up"}, "32 hex"),
                     ({"trace_id": trace, "thumbs": "sideways"}, "thumbs"), ({"trace_id": trace, "score": 2}, "score")):
        r = api.post("/api/v1/feedback", json=bad)
        assert r.status_code == 422 and why in r.json()["message"], (bad, r.text)
    assert svc.store.count("feedback") == before + 1


def test_alerts_active_acknowledge_silence_and_history(svc: ProcessorService, api: httpx.Client) -> None:
    now = time.time()
    rec = QueryRecord(trace_id="a" * 32, root_span_id="b" * 16, start_time=now - 1, end_time=now, cost_usd=0.02,
                      models=["gpt-4o"])
    svc.alerts.observe(rec)
    svc.alerts.evaluate(now)
    active = api.get("/api/v1/alerts/active").json()
    firing = [a for a in active if a["rule"] == "costly_queries" and a["state"] == "firing"]
    assert firing, active
    fp = firing[0]["fingerprint"]
    r = api.post(f"/api/v1/alerts/{fp}/acknowledge")
    assert r.status_code == 200 and r.json()["acknowledged"] is True
    r = api.post(f"/api/v1/alerts/{fp}/silence", json={"duration": "2h"})
    assert r.status_code == 200 and r.json()["silenced_until"] == pytest.approx(time.time() + 7200, abs=30)
    assert api.post(f"/api/v1/alerts/{fp}/silence", json={"duration": "0"}).json()["silenced_until"] is None
    r = api.post(f"/api/v1/alerts/{fp}/silence", json={"duration": "forever"})
    assert r.status_code == 400 and "duration" in r.json()["message"]
    assert api.post("/api/v1/alerts/nope/acknowledge").status_code == 404
    svc.store_writer.flush()
    hist = api.get("/api/v1/alerts/history", params={"rule": "costly_queries"}).json()
    assert "firing" in {h["state"] for h in hist}  # pending and firing may share a timestamp
    assert {h["rule"] for h in api.get("/api/v1/alerts/history").json()} >= {"costly_queries", "high_latency"}


def test_report_run_now_then_list_and_fetch(api: httpx.Client) -> None:
    r = api.post("/api/v1/reports/run", json={"kind": "daily", "date": "2026-11-18", "formats": ["html", "markdown"]})
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "ok" and run["summary"]["queries"] == sum(in_day(x) for x in DS.records)
    assert run["period_start"].startswith("2026-11-18") and run["trigger"] == "api"
    assert {Path(f).suffix for f in run["files"]} >= {".html", ".md"}
    listed = api.get("/api/v1/reports", params={"kind": "daily"}).json()
    row = next(x for x in listed if x["id"] == run["id"])
    assert row["status"] == "ok" and row["outputs"]["files"] == run["files"] and row["ran_at"].endswith("Z")
    html = api.get(f"/api/v1/reports/{run['id']}", params={"format": "html"})
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html") and "<html" in html.text
    md = api.get(f"/api/v1/reports/{run['id']}", params={"format": "markdown"})
    assert md.status_code == 200 and md.text.startswith("#")
    missing = api.get(f"/api/v1/reports/{run['id']}", params={"format": "json"})
    assert missing.status_code == 404 and "no json file" in missing.json()["message"]


def test_no_jaeger_link_without_a_jaeger_address(tmp_path: Path) -> None:
    svc = start(config(tmp_path))
    try:
        rows = httpx.get(f"http://{svc.http_address}/api/v1/queries", params={"limit": 3}).json()
        assert len(rows) == 3 and all(r["trace_url"] is None for r in rows)
    finally:
        svc.stop()


def test_bearer_token_guards_the_api_but_not_health_or_metrics(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg.processor.api_token_env = "RAG_OTEL_TEST_API_TOKEN"
    svc = start(cfg, env={"RAG_OTEL_TEST_API_TOKEN": "s3cret"})
    try:
        base = f"http://{svc.http_address}"
        r = httpx.get(f"{base}/api/v1/queries")
        assert r.status_code == 401 and "bearer token" in r.json()["message"]
        assert r.headers["www-authenticate"] == "Bearer"
        assert httpx.get(f"{base}/api/v1/queries", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.post(f"{base}/api/v1/feedback", json={"trace_id": "c" * 32, "thumbs": "up"}).status_code == 401
        ok = httpx.get(f"{base}/api/v1/queries", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and len(ok.json()) == 50
        assert httpx.get(f"{base}/health").status_code == 200
        assert httpx.get(f"{base}/metrics").status_code == 200
        assert httpx.get(f"{base}/").status_code == 200  # the page carries no data; it asks for the token
    finally:
        svc.stop()


def test_a_named_but_unset_token_variable_refuses_to_start(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg.processor.api_token_env = "RAG_OTEL_TEST_UNSET_TOKEN"
    with pytest.raises(ConfigError, match="RAG_OTEL_TEST_UNSET_TOKEN"):
        ProcessorService(cfg, env={}).start()


def test_dates_in_rows_are_utc_iso(api: httpx.Client) -> None:
    row = api.get("/api/v1/queries", params={"limit": 1}).json()[0]
    newest = max(DS.records, key=lambda r: r.start_time)
    ts = datetime.fromisoformat(row["ts"].replace("Z", "+00:00"))
    assert ts.tzinfo is not None and abs(ts.timestamp() - newest.start_time) < 0.001
    assert ts.astimezone(timezone.utc) == ts


def test_an_old_range_without_data_is_an_empty_answer(api: httpx.Client) -> None:
    r = api.get("/api/v1/analytics/performance", params={"from": "2020-01-01", "to": "2020-01-02"})
    assert r.status_code == 200 and r.json()["total"] == 0
