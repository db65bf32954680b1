"""The processor's one GenAI-attributed metric (tokens by ``gen_ai.token.type``, which GenAI v0.1.0 dropped)
follows ``OTEL_SEMCONV_STABILITY_OPT_IN`` like the SDK's metrics, and the exported alert rules query what
/metrics then serves.  Real parts: the processor's own MeterProvider and Prometheus reader (the /metrics
body), the real rule compiler."""

from __future__ import annotations

import re

import pytest

from rag_otel import semconv
from rag_otel.alerts.prometheus_rules import to_prometheus
from rag_otel.alerts.rules import compile_rules
from rag_otel.config import AlertRule
from rag_otel.processor.derived_metrics import DerivedMetrics
from rag_otel.processor.normalize import ModelUsage
from rag_otel.records import QueryRecord

OLD = "rag_processor_tokens_total"
NEW = ("rag_processor_input_tokens_total", "rag_processor_output_tokens_total")


def served(monkeypatch: pytest.MonkeyPatch, opt_in: str | None) -> tuple[str, set[str], set[str]]:
    """(/metrics text, metric names on it, processor metric names the tokens_total rule queries)."""
    if opt_in is None:
        monkeypatch.delenv(semconv.ENV_SEMCONV_STABILITY_OPT_IN, raising=False)
    else:
        monkeypatch.setenv(semconv.ENV_SEMCONV_STABILITY_OPT_IN, opt_in)
    dm = DerivedMetrics()
    rec = QueryRecord(trace_id="a" * 32, root_span_id="b" * 16, start_time=1, end_time=2, models=["gpt-4o-mini"],
                      service="api")
    dm.record_queries([(rec, [ModelUsage("gpt-4o-mini", "chat", 120, 30, 0.0001),
                              ModelUsage("text-embedding-3-small", "embeddings", 8, 0, 0.0)])])
    text = dm.prometheus_text().decode()
    names = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.M))
    rule = AlertRule.model_validate({"name": "tokens", "metric": "tokens_total", "operator": "gt", "threshold": 1000})
    data, _ = to_prometheus(compile_rules([rule]))
    expr = data["groups"][0]["rules"][0]["expr"]
    return text, names, set(re.findall(r"\b(rag_processor_[a-zA-Z0-9_]+)", expr))


def value(text: str, name: str, **labels: str) -> float:
    (v,) = [float(m.group(2)) for line in text.splitlines() if (m := re.match(rf"^{name}\{{(.*)\}} (\S+)$", line))
            and all(f'{k}="{x}"' in m.group(1) for k, x in labels.items())]
    return v


def test_default_keeps_tokens_by_gen_ai_token_type(monkeypatch: pytest.MonkeyPatch) -> None:
    text, names, queried = served(monkeypatch, None)
    assert OLD in names and not set(NEW) & names
    assert value(text, OLD, model="gpt-4o-mini", gen_ai_token_type="output") == 30
    assert queried == {OLD}


def test_latest_experimental_counts_input_and_output_tokens_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    text, names, queried = served(monkeypatch, "gen_ai_latest_experimental")
    assert set(NEW) <= names and OLD not in names
    assert value(text, NEW[0], model="gpt-4o-mini") == 120
    assert value(text, NEW[0], model="text-embedding-3-small") == 8
    assert value(text, NEW[1], model="gpt-4o-mini") == 30
    assert "gen_ai_token_type" not in text
    assert queried == set(NEW)  # the exported tokens_total rule reads what is served


def test_dup_serves_both_and_the_rules_keep_the_old_name(monkeypatch: pytest.MonkeyPatch) -> None:
    text, names, queried = served(monkeypatch, "gen_ai_latest_experimental/dup")
    assert {OLD, *NEW} <= names
    assert value(text, OLD, model="gpt-4o-mini", gen_ai_token_type="input") == value(text, NEW[0], model="gpt-4o-mini")
    assert queried == {OLD}
