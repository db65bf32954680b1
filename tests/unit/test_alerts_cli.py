"""``rag-otel alerts`` subcommands and the Prometheus translation, without servers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rag_otel.alerts.prometheus_rules import promql_duration, rule_expr, to_prometheus
from rag_otel.alerts.rules import compile_rules
from rag_otel.cli import main
from rag_otel.config import AlertRule


def write_config(tmp_path: Path, rules: list[dict]) -> str:
    p = tmp_path / "rag-otel.yaml"
    p.write_text(yaml.safe_dump({"model_observation": {"performance_monitoring": {"alert_rules": rules}}}))
    return str(p)


def test_validate_describes_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, [
        {"name": "drift", "metric": "quality_overall", "operator": "lt", "for": "10m", "window": "1h",
         "baseline": {"window": "7d", "factor": 0.8}, "filters": {"service": "api"}},
        {"name": "off", "metric": "error_rate", "operator": "gt", "threshold": 0.1, "enabled": False},
    ])
    assert main(["alerts", "validate", "--config", cfg]) == 0
    out = capsys.readouterr().out
    assert ("drift [warning]: quality_overall over 1h where service=api < 0.8 x baseline (7d, >= 10 samples) "
            "for 10m") in out
    assert "1 rule(s) OK" in out  # the disabled rule is not evaluated
    assert "for 10m (per replica)" in out  # the embedded store: judged by the one processor in memory


def test_validate_says_which_rules_are_fleet_wide_and_refuses_what_the_store_lacks(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = [{"name": "cost", "metric": "cost_total", "operator": "gt", "threshold": 5, "window": "1h"},
             {"name": "mine", "metric": "error_rate", "operator": "gt", "threshold": 0.2, "scope": "replica",
              "filters": {"instrumentation": "openai"}}]
    p = tmp_path / "fleet.yaml"
    p.write_text(yaml.safe_dump({"model_observation": {
        "processor": {"store": "ducklake:postgres:dbname=lake host=db"},
        "performance_monitoring": {"alert_rules": rules}}}))
    assert main(["alerts", "validate", "--config", str(p)]) == 0
    out = capsys.readouterr().out
    assert "cost [warning]: cost_total over 1h > 5 (fleet-wide, over the store)" in out
    assert "where instrumentation=openai > 0.2 (per replica)" in out
    rules[1].pop("scope")  # now fleet-wide by default: the store has no instrumentation column
    p.write_text(yaml.safe_dump({"model_observation": {
        "processor": {"store": "ducklake:postgres:dbname=lake host=db"},
        "performance_monitoring": {"alert_rules": rules}}}))
    assert main(["alerts", "validate", "--config", str(p)]) == 2
    assert "'mine': filter instrumentation is not in the store" in capsys.readouterr().err


def test_bad_rules_exit_2_naming_each_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, [
        {"name": "a", "metric": "latency", "operator": "gt", "threshold": 1},
        {"name": "b", "metric": "cpu_percent", "operator": "gt", "threshold": 1, "filters": {"model": "m"}},
    ])
    out_file = tmp_path / "rules.yml"
    assert main(["alerts", "export-prometheus", "--config", cfg, "--out", str(out_file)]) == 2
    err = capsys.readouterr().err
    assert "'a': unknown metric 'latency'" in err and "'b': filter model does not apply" in err
    assert not out_file.exists()
    assert main(["alerts", "validate", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read configuration" in capsys.readouterr().err


def test_export_to_stdout_and_metrics_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, [{"name": "errors", "metric": "error_rate", "operator": "gte", "threshold": 0.05,
                                   "severity": "critical", "for": "90s", "filters": {"model": "gpt-4o"}}])
    assert main(["alerts", "export-prometheus", "--config", cfg]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    [r] = data["groups"][0]["rules"]
    assert r["alert"] == "errors" and r["for"] == "90s" and r["labels"] == {"severity": "critical"}
    assert r["expr"].endswith(">= 0.05") and 'model="gpt-4o",status="error"' in r["expr"]
    assert data["groups"][0]["interval"] == "5s"
    assert main(["alerts", "metrics"]) == 0
    listed = capsys.readouterr().out
    assert "p95_response_time" in listed and "health_score" in listed


def test_promql_durations() -> None:
    got = [promql_duration(s) for s in (300, 3600, 86400, 604800, 90, 0.25)]
    assert got == ["5m", "1h", "1d", "7d", "90s", "250ms"]


def test_totals_baseline_is_scaled_and_unsupported_filters_warn() -> None:
    rules = compile_rules([
        AlertRule.model_validate({"name": "tok", "metric": "tokens_total", "operator": "gt", "window": "1h",
                                  "baseline": {"window": "1d", "factor": 2}}),
        AlertRule.model_validate({"name": "u", "metric": "active_users", "operator": "lt", "threshold": 1,
                                  "filters": {"service": "api", "model": "gpt-4o"}}),
    ])
    expr, _ = rule_expr(rules[0])
    assert "> 0.08333333333 * (sum(increase(rag_processor_tokens_total[1d])))" in expr  # 2 x 1h/24h
    users_expr, _ = rule_expr(rules[1])
    assert 'rag_processor_active_users{service="api"}' in users_expr  # the window gauges carry the service
    _data, warnings = to_prometheus(rules)
    assert any("u: filter model has no Prometheus label" in w for w in warnings)
    assert not any("filter service" in w for w in warnings)


def test_message_placeholders_become_prometheus_templates() -> None:
    [r] = compile_rules([AlertRule.model_validate({
        "name": "slow", "metric": "p95_response_time", "operator": "gt", "threshold": 8,
        "message": "{rule}: p95 latency {value:.1f}s is above {threshold}s ({metric})"})])
    data, _ = to_prometheus([r])
    summary = data["groups"][0]["rules"][0]["annotations"]["summary"]
    assert summary == 'slow: p95 latency {{ $value | printf "%.1f" }}s is above 8s (p95_response_time)'
