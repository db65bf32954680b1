"""The configuration users write: the seed loads as-is, mistakes name their key, env wins."""

from pathlib import Path

import pytest

from rag_otel.config import ConfigError, load_config, parse_duration

SEED = Path(__file__).parent.parent / "data" / "model_observation_config.yaml"


def test_seed_config_loads_as_is():
    cfg = load_config(SEED, env={})
    assert cfg.metrics_collection.retention_days == 30
    rules = cfg.performance_monitoring.alert_rules
    assert [r.name for r in rules] == ["high_latency", "high_error_rate"]
    assert rules[1].threshold == 0.05 and rules[1].severity == "critical"
    assert cfg.quality_assessment.weights["accuracy"] == 0.3
    assert cfg.reporting.weekly_report.recipients == ["admin@company.com", "team@company.com"]
    assert cfg.dashboards.historical.aggregation_levels == ["hourly", "daily", "weekly"]
    assert cfg.performance_monitoring.latency_thresholds.category(1.5) == "good"
    assert cfg.performance_monitoring.latency_thresholds.category(7.0) == "poor"
    # content goes to the processor for scoring only, stripped there before storing or export
    assert cfg.content.capture == "scoring_only"


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("model_observation:\n  metrics_collection: {intervall: 1}\n",
         "metrics_collection.intervall: unknown key"),
        ("model_observation:\n  metrics_collection: {interval: -1}\n",
         "metrics_collection.interval: Input should be greater than 0"),
        ("model_observation:\n  performance_monitoring:\n    alert_rules:\n"
         "      - {name: x, metric: error_rate, operator: above, threshold: 1}\n",
         "performance_monitoring.alert_rules.0.operator"),
        ("model_observation:\n  reporting:\n    daily_report: {time: '25:00'}\n",
         "reporting.daily_report.time"),
        ("model_observation:\n  performance_monitoring:\n    latency_thresholds: {excellent: 5, good: 1}\n",
         "must ascend"),
        ("model_observation: [1, 2\n", "not valid YAML"),
        ("other: 1\n", "top-level key must be model_observation"),
    ],
)
def test_invalid_config_names_the_bad_key(tmp_path, yaml_text, expected):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml_text)
    with pytest.raises(ConfigError) as e:
        load_config(p, env={})
    assert expected in str(e.value)
    assert str(p) in str(e.value)


def test_standard_otel_env_overrides_the_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model_observation:\n  telemetry: {service_name: from-file, protocol: grpc}\n")
    cfg = load_config(p, env={
        "OTEL_SERVICE_NAME": "from-env",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer abc,x-tenant=t1",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
    })
    t = cfg.telemetry
    assert (t.service_name, t.endpoint, t.protocol) == ("from-env", "http://127.0.0.1:4318", "http/protobuf")
    assert t.headers == {"authorization": "Bearer abc", "x-tenant": "t1"}
    assert cfg.content.capture == "full"


def test_bad_env_protocol_is_a_clear_error():
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        load_config(None, env={"OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"})


def test_durations():
    assert parse_duration("5m") == 300 and parse_duration("7d") == 7 * 86400 and parse_duration(2) == 2.0
    with pytest.raises(ValueError):
        parse_duration("soon")
