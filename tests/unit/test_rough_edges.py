"""The rough edges a new user hit (issue 14), each as the behaviour a user sees: timeline buckets, one
session definition, one latency-category source, one label for queries without a model, health scores that
match their numbers, correlations only from enough points, rounded numbers, clear CLI errors and help."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics

from rag_otel import semconv as sc
from rag_otel.analytics import parse_period
from rag_otel.analytics.cost import model_usage_and_cost
from rag_otel.analytics.performance import performance, quality
from rag_otel.analytics.system import system_usage
from rag_otel.analytics.usage import query_patterns
from rag_otel.cli import main
from rag_otel.config import LatencyThresholds, ModelObservation
from rag_otel.processor.system_samples import system_samples
from rag_otel.records import QueryRecord, SystemSample
from rag_otel.reports.render import _f
from rag_otel.store import Store
from rag_otel.web.snapshot import build_snapshot


def rec(t: float, *, user: str = "u1", latency: float = 0.5, model: str | None = "gpt-4o-mini",
        category: str | None = None, status: str = "ok") -> QueryRecord:
    return QueryRecord(trace_id=f"{int(t * 1000):032x}", root_span_id="1" * 16, start_time=t, end_time=t + latency,
                       user_id=user, models=[model] if model else [], status=status,  # type: ignore[arg-type]
                       latency_category=category, query_text="How do I reset my password?")


@pytest.fixture
def store() -> Store:
    cfg = ModelObservation()
    cfg.content.capture = "full"
    s = Store.open(":memory:", config=cfg)
    yield s
    s.close()


def test_an_hour_is_drawn_per_minute_and_a_week_of_spread_data_is_a_line(store: Store) -> None:
    now = time.time()
    store.write_records([rec(now - 3000 + 60 * i) for i in range(40)])  # one a minute for 40 minutes
    hour = performance(store, parse_period("1h"))
    assert hour["bucket_s"] == 60 and len(hour["timeline"]) == 40
    week = performance(store, parse_period("7d"))  # the same 40 minutes in a 7-day range: still 40 points
    assert week["bucket_s"] == 60 and len(week["timeline"]) == 40
    store.write_records([rec(now - 86400 * d - 5000) for d in range(1, 7)])  # and one a day before
    week = performance(store, parse_period("7d"))
    assert 1 < len(week["timeline"]) <= 120 and week["bucket_s"] >= 3600
    assert sum(p["count"] for p in week["timeline"]) == 46
    trend = quality(store, parse_period("7d"))["trend"]
    assert isinstance(trend, list)


def test_sessions_mean_the_same_in_the_live_view_and_the_analytics(store: Store) -> None:
    now = time.time()
    # alice asks 3 times in 2 minutes (one session) with a new session.id each time, as some apps set it
    records = [rec(now - 300 + 60 * i, user="alice") for i in range(3)] + [rec(now - 200, user="bob")]
    for i, r in enumerate(records):
        r.session_id = f"request-{i}"
    store.write_records(records)

    class Svc:  # the snapshot's view of a service: the store and its config
        config = store.config
        alerts = None

        def __init__(self) -> None:
            self.store = store

        def health(self) -> dict:
            return {"status": "ok"}

    live = build_snapshot(Svc())["usage"]["sessions"]
    patterns = query_patterns(store, parse_period("1h"))["engagement"]["sessions"]
    assert live == patterns == 2


def test_latency_categories_are_those_the_processor_gave_whatever_the_reader_config(store: Store,
                                                                                     tmp_path: Path) -> None:
    now = time.time()
    store.write_records([rec(now - 100, latency=1.5, category="poor"), rec(now - 90, latency=0.2,
                                                                            category="excellent")])
    mine = performance(store, parse_period("1h"))["latency_categories"]
    other = ModelObservation()
    other.performance_monitoring.latency_thresholds = LatencyThresholds(excellent=5, good=6, acceptable=7, poor=8)
    store.config = other  # a reader (`rag-otel analytics`) with another config reads the same store
    assert performance(store, parse_period("1h"))["latency_categories"] == mine == {
        "excellent": 1, "good": 0, "acceptable": 0, "poor": 1}


def test_a_query_without_a_model_reads_the_same_everywhere(store: Store) -> None:
    now = time.time()
    store.write_records([rec(now - 100, model=None, status="error"), rec(now - 50)])
    p = parse_period("1h")
    assert "(no model)" in {m["model"] for m in performance(store, p)["by_model"]}
    assert "(no model)" in {m["model"] for m in model_usage_and_cost(store, p)["models"]}
    assert "(no model)" in {m["model"] for m in quality(store, p)["by_model"]}
    assert "unknown" not in {m["model"] for m in performance(store, p)["by_model"]}


def _gauge(name: str, value: float, state: str | None = None) -> Metric:
    attrs = [KeyValue(key="state", value=AnyValue(string_value=state))] if state else []
    return Metric(name=name, gauge=Gauge(data_points=[NumberDataPoint(as_double=value, attributes=attrs,
                                                                      time_unix_nano=time.time_ns())]))


def test_the_health_score_is_the_formula_over_the_numbers_shown_beside_it() -> None:
    # the app's own gauge was read at another moment (87); CPU 100%, memory 6%, disk 35% give 57.1
    req = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=[
        _gauge(sc.SYS_CPU_UTILIZATION, 0.0, "idle"), _gauge(sc.SYS_MEMORY_UTILIZATION, 0.06, "used"),
        _gauge(sc.SYS_FILESYSTEM_UTILIZATION, 0.35, "used"), _gauge(sc.METRIC_HEALTH_SCORE, 87.0)])])])
    (s,) = system_samples(req)
    assert (s.cpu_percent, round(s.memory_percent, 6), round(s.disk_percent, 6)) == (100.0, 6.0, 35.0)
    assert s.health_score == pytest.approx(100 - (0.3 * 100 + 0.4 * 6 + 0.3 * 35))


def test_bottleneck_correlations_need_enough_buckets(store: Store) -> None:
    now = time.time() // 300 * 300 - 600
    store.write_records([rec(now + 10, latency=0.5), rec(now + 310, latency=2.0)])
    store.write_system([SystemSample(now + 20, "rag-app", cpu_percent=10.0), SystemSample(now + 320, "rag-app",
                                                                                           cpu_percent=90.0)])
    cpu = next(b for b in system_usage(store, parse_period("1h"))["bottlenecks"] if b["resource"] == "cpu_percent")
    assert cpu["buckets"] == 2 and cpu["correlation"] is None and not cpu["bottleneck"]  # not r = 1.00
    assert "12" in cpu["note"]


def test_numbers_for_people_are_rounded() -> None:
    from rag_otel.alerts.engine import AlertEngine
    from rag_otel.alerts.rules import compile_rule
    from rag_otel.config import AlertRule

    r = compile_rule(AlertRule(name="slow", metric="p95_response_time", operator="gt", threshold=2.0,
                               message="p95 {value} over {threshold}; exactly {value:.6f}"))
    assert AlertEngine._message(r, 3.058255410194397, 2.0) == "p95 3.058 over 2; exactly 3.058255"
    assert _f(559.0, 4) == "559" and _f(0.123456) == "0.123"


def test_a_config_that_is_not_utf8_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = tmp_path / "rag-otel.yaml"
    cfg.write_bytes("model_observation:\n  reporting:\n    timezone: Europe/Z\xfcrich\n".encode("latin-1"))
    for argv in (["alerts", "validate", "--config", str(cfg)], ["serve", "--config", str(cfg)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "is not UTF-8 text (byte 0xfc on line 3)" in err and "Traceback" not in err


def test_alert_rule_validation_reports_every_problem_at_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = tmp_path / "rules.yaml"
    cfg.write_text("""model_observation:
  performance_monitoring:
    alert_rules:
      - {name: a, metric: p95_response_time, operator: gt, threshold: 2, window: five minutes}
      - {name: b, metric: no_such_metric, operator: gt, threshold: 1}
      - {name: c, metric: error_rate, operator: gt, threshold: 0.1}
""", encoding="utf-8")
    assert main(["alerts", "validate", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "five minutes" in err and "no_such_metric" in err  # the schema's problem and the compile's, one run


def test_serve_refuses_a_bad_rule_with_the_config_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = tmp_path / "rules.yaml"
    cfg.write_text("model_observation:\n  performance_monitoring:\n    alert_rules:\n"
                   "      - {name: b, metric: no_such_metric, operator: gt, threshold: 1}\n", encoding="utf-8")
    assert main(["serve", "--config", str(cfg), "--http", "127.0.0.1:0", "--otlp-grpc", "127.0.0.1:0",
                 "--otlp-http", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")]) == 2  # as docs/processor.md says
    assert "no_such_metric" in capsys.readouterr().err


def test_version_and_help_are_for_users(capsys: pytest.CaptureFixture) -> None:
    from rag_otel import __version__

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"rag-otel {__version__}"
    for argv in (["--help"], ["analytics", "--help"], ["instrument", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr().out
        assert "``" not in out and "register" not in out and "lives beside" not in out


def test_analytics_tables_fit_80_columns_when_piped(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    now = time.time()
    with Store.open(tmp_path, config=store.config) as s:
        s.write_records([rec(now - 60 * i, latency=0.1 * i + 0.05) for i in range(30)])
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["analytics", "performance", "--period", "1h", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out and max(len(line) for line in out.splitlines()) <= 80
    assert "p95_latency_s" in out and "…" not in out  # whole headers, not cut


def test_report_says_which_days_it_covered_when_empty(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with Store.open(tmp_path, config=ModelObservation()) as s:
        s.write_records([rec(time.time() - 60)])  # today's queries only, as after a demo
    assert main(["report", "weekly", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r"), "--format",
                 "json"]) == 0
    err = capsys.readouterr().err
    today = datetime.now(timezone.utc).date()
    first, last = today - timedelta(days=7), today - timedelta(days=1)
    assert f"weekly report covers {first} to {last} (UTC): 0 queries" in err
    assert "--week-start" in err


def test_popular_topics_say_why_examples_are_missing_without_full_capture() -> None:
    cfg = ModelObservation()
    cfg.content.capture = "scoring_only"
    with Store.open(":memory:", config=cfg) as s:
        s.write_records([rec(time.time() - 60)])
        out = query_patterns(s, parse_period("1h"))
    assert out["topics"] and out["topics"][0]["examples"] == []
    assert "content.capture: full" in out["examples_note"]

