"""``rag-otel alerts export-prometheus`` checked by the real promtool: syntax (check rules) and
behaviour on synthetic series (test rules), plus the metric names against the processor's /metrics."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from rag_otel.alerts.prometheus_rules import to_prometheus
from rag_otel.alerts.rules import compile_rules
from rag_otel.cli import main
from rag_otel.config import load_config

SEED = Path(__file__).parents[1] / "data" / "model_observation_config.yaml"
PROMTOOL = shutil.which("promtool")

EXTRA_RULES = [
    {"name": "quality_drift", "metric": "quality_overall", "operator": "lt", "window": "10m", "for": "2m",
     "baseline": {"window": "1h", "factor": 0.8, "min_samples": 10},
     "filters": {"service": "api", "model": "gpt-4o"}, "labels": {"team": "search"},
     "message": "overall quality {value} is 20% below its hourly value"},
    {"name": "cost_doubled", "metric": "cost_per_query", "operator": "gt", "window": "1h",
     "baseline": {"window": "1d", "offset": "1d", "factor": 2}},
    {"name": "quality_week", "metric": "quality_overall", "operator": "lt", "window": "1h",
     "baseline": {"window": "7d", "factor": 0.8}, "filters": {"service": "api"}},
    {"name": "slow_p95", "metric": "p95_response_time", "operator": "gt", "threshold": 3, "filters": {"model": "x"}},
    {"name": "cpu_hot", "metric": "cpu_percent", "operator": "gt", "threshold": 90, "filters": {"host": "h1"}},
    {"name": "scorer_behind", "metric": "unscored_rate", "operator": "gt", "threshold": 0.5},
]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if PROMTOOL is None:
        pytest.fail("promtool is not installed (apt-get install prometheus)")
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    cfg = yaml.safe_load(SEED.read_text())
    cfg["model_observation"]["performance_monitoring"]["alert_rules"] += EXTRA_RULES
    (tmp_path / "rag-otel.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "rules.yml"
    assert main(["alerts", "export-prometheus", "--config", str(tmp_path / "rag-otel.yaml"), "--out", str(out)]) == 0
    return out


def test_exported_rules_pass_promtool_check(rules_file: Path) -> None:
    r = promtool("check", "rules", str(rules_file))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 8 rules found" in r.stdout
    rules = {x["alert"]: x for x in yaml.safe_load(rules_file.read_text())["groups"][0]["rules"]}
    assert rules["high_error_rate"]["labels"] == {"severity": "critical"}
    drift = rules["quality_drift"]
    assert drift["for"] == "2m" and drift["labels"] == {"severity": "warning", "team": "search"}
    assert 'axis="overall",model="gpt-4o",service="api"' in drift["expr"]
    assert "offset 1d" in rules["cost_doubled"]["expr"]
    assert 'host_name="h1"' in rules["cpu_hot"]["expr"]


def test_exported_rules_fire_on_synthetic_series(rules_file: Path, tmp_path: Path) -> None:
    """promtool evaluates the exported PromQL: the error-rate and the baseline rule fire when they should."""
    api = 'service="api",model="gpt-4o"'
    tests = {
        "rule_files": [str(rules_file)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": f'rag_processor_queries_total{{{api},status="ok",latency_category="good"}}',
                 "values": "0+60x90"},
                {"series": f'rag_processor_queries_total{{{api},status="error",latency_category="good"}}',
                 "values": "0+10x90"},
                # quality 0.9 per query for an hour, then 0.3
                {"series": f'rag_processor_quality_score_sum{{{api},axis="overall"}}',
                 "values": "0+0.9x60 54.3+0.3x29"},
                {"series": f'rag_processor_quality_score_count{{{api},axis="overall"}}', "values": "0+1x90"},
            ],
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": "high_error_rate",
                 "exp_alerts": [{"exp_labels": {"severity": "critical"}, "exp_annotations": {
                     "summary": "high_error_rate: error_rate > 0.05 over 5m",
                     "description": "error_rate > 0.05 over 5m (now 0.1429)"}}]},
                # 70 queries a minute, 1 of them scored: the scorer is behind
                {"eval_time": "10m", "alertname": "scorer_behind",
                 "exp_alerts": [{"exp_labels": {"severity": "warning"}, "exp_annotations": {
                     "summary": "scorer_behind: unscored_rate > 0.5 over 5m",
                     "description": "unscored_rate > 0.5 over 5m (now 0.9857)"}}]},
                {"eval_time": "50m", "alertname": "quality_drift", "exp_alerts": []},
                {"eval_time": "85m", "alertname": "quality_drift",
                 "exp_alerts": [{"exp_labels": {"severity": "warning", "team": "search"}, "exp_annotations": {
                     "summary": "overall quality 0.3 is 20% below its hourly value",
                     "description": "quality_overall < 0.8 x its value over 1h over 10m (now 0.3)"}}]},
            ],
        }],
    }
    path = tmp_path / "tests.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    r = promtool("test", "rules", str(path))
    assert r.returncode == 0, r.stdout + r.stderr


def test_rule_metric_names_are_what_the_processor_serves() -> None:
    """Every processor metric the rules query appears on the processor's own /metrics."""
    from rag_otel.processor import derived_metrics as derived
    from rag_otel.processor.normalize import ModelUsage
    from rag_otel.records import AxisScore, QualityResult, QueryRecord

    dm = derived.DerivedMetrics()
    rec = QueryRecord(trace_id="a" * 32, root_span_id="b" * 16, start_time=1, end_time=2, user_id="u",
                      models=["gpt-4o"], cost_usd=0.01, input_tokens=3, output_tokens=4, service="api",
                      quality=QualityResult(axes={"accuracy": AxisScore(0.5)}, overall=0.5, evaluator="t"))
    dm.record_query(rec, [ModelUsage(model="gpt-4o", operation="chat", input_tokens=3, output_tokens=4,
                                     cost_usd=0.01)])
    served = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", dm.prometheus_text().decode(), re.M))
    cfg = load_config(SEED)
    rules = compile_rules([*cfg.performance_monitoring.alert_rules, *[
        type(cfg.performance_monitoring.alert_rules[0]).model_validate({"name": m, "metric": m, "operator": "gt",
                                                                         "threshold": 1})
        for m in ("p95_response_time", "quality_overall", "poor_quality_rate", "cost_per_query", "tokens_total",
                  "active_users", "success_rate", "queries_per_minute", "unscored_rate")]])
    data, _ = to_prometheus(rules)
    used = {n for x in data["groups"][0]["rules"] for n in re.findall(r"\b(rag_processor_[a-zA-Z0-9_]+)", x["expr"])}
    assert used and used <= served, used - served


SYSTEM_EXPOSITION = """
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry, generate_latest
from rag_otel.sdk import system_metrics

registry = CollectorRegistry(auto_describe=False)
provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
handle = system_metrics.start(provider)
print(generate_latest(registry).decode())
handle.stop()
"""


def test_system_rule_selectors_match_what_apps_send() -> None:
    """The app's real system metrics (our SDK + the OTel instrumentor), as a Prometheus exporter names
    them, carry every name and label the system rules select (a fresh interpreter: the instrumentor
    is a process-wide singleton)."""
    import sys

    from rag_otel.alerts import prometheus_rules as pr

    out = subprocess.run([sys.executable, "-c", SYSTEM_EXPOSITION], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for metric in ("cpu_percent", "memory_percent", "disk_percent", "health_score"):
        r = compile_rules([load_config(SEED).performance_monitoring.alert_rules[0].model_copy(
            update={"name": metric, "metric": metric, "filters": {}})])[0]
        expr, _ = pr.rule_expr(r)
        selectors = re.findall(r'\{__name__=~"([^"]+)",?([^}]*)\}\[', expr)
        assert selectors, expr
        for pattern, matchers in selectors:
            lines = [ln for ln in text.splitlines() if re.fullmatch(pattern, ln.split("{")[0])]
            assert lines, f"{metric}: nothing named {pattern} is exported"
            for m in filter(None, matchers.split(",")):
                assert any(m in ln for ln in lines), f"{metric}: no {pattern} series with {m}"
