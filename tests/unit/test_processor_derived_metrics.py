"""Derived metrics: sliding-window gauges and what /metrics shows after a batch of queries."""

from __future__ import annotations

import re

from rag_otel.processor.derived_metrics import DerivedMetrics, SlidingWindow
from rag_otel.processor.normalize import ModelUsage
from rag_otel.records import AxisScore, QualityResult, QueryRecord


class Clock:
    def __init__(self, now: float = 10_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_window_quantiles_rates_and_users_forget_old_queries() -> None:
    clock = Clock()
    w = SlidingWindow(seconds=300, clock=clock)
    for i in range(100):  # 0.01 .. 1.00 s, one error in ten, 5 users
        w.add(clock.now - 200 + i, (i + 1) / 100, i % 10 == 0, f"u{i % 5}")
    q = w.quantiles()
    assert (q[0.5], q[0.95], q[0.99]) == (0.5, 0.95, 0.99)
    assert w.error_rate() == 0.1 and w.active_users() == 5
    assert w.per_minute() == 0  # all of them are older than a minute
    w.add(clock.now, 3.0, False, None)
    assert w.per_minute() == 1
    clock.now += 400  # everything slides out
    assert w.quantiles() == {} and w.error_rate() is None and w.active_users() == 0


def record(status: str, user: str, model: str = "gpt-4o-mini", seconds: float = 1.5) -> QueryRecord:
    axes = {a: AxisScore(0.8) for a in ("accuracy", "completeness", "relevance", "consistency")}
    return QueryRecord("a" * 32, "b" * 16, 10_000.0 - seconds, 10_000.0, service="app", models=[model],
                       user_id=user, status=status, latency_category="good",  # type: ignore[arg-type]
                       quality=QualityResult(axes, 0.8, "lexical/1"))


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the one sample ``name{labels...}`` in Prometheus text."""
    found = []
    for line in text.splitlines():
        m = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if m and all(f'{k}="{v}"' in m.group(1) for k, v in labels.items()):
            found.append(float(m.group(2)))
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_a_batch_of_queries_shows_up_summed_per_model_on_metrics() -> None:
    dm = DerivedMetrics(clock=Clock())
    chat = ModelUsage("gpt-4o-mini", "chat", 1000, 100, 0.002)
    emb = ModelUsage("text-embedding-3-small", "embeddings", 50, 0, 0.000001)
    dm.record_queries([(record("ok", "u1"), [emb, chat]), (record("ok", "u2"), [emb, chat]),
                       (record("error", "u1"), [chat])])
    text = dm.prometheus_text().decode()
    assert sample(text, "rag_processor_queries_total", status="ok", model="gpt-4o-mini") == 2
    assert sample(text, "rag_processor_queries_total", status="error") == 1
    assert sample(text, "rag_processor_tokens_total", model="gpt-4o-mini", gen_ai_token_type="input") == 3000
    assert sample(text, "rag_processor_tokens_total", model="text-embedding-3-small",
                  gen_ai_token_type="input") == 100
    assert abs(sample(text, "rag_processor_cost_USD_total", model="gpt-4o-mini") - 0.006) < 1e-12
    assert sample(text, "rag_processor_quality_score_count", axis="overall") == 3
    assert abs(sample(text, "rag_processor_quality_score_sum", axis="accuracy") - 2.4) < 1e-9
    assert abs(sample(text, "rag_processor_error_rate") - 1 / 3) < 1e-9
    assert sample(text, "rag_processor_active_users") == 2
    assert sample(text, "rag_processor_query_latency_seconds", quantile="0.99") == 1.5
    dm.shutdown()


def test_window_gauges_are_per_service_and_a_quiet_service_reports_zero() -> None:
    clock = Clock()
    dm = DerivedMetrics(clock=clock)
    a, b = record("ok", "u1"), record("error", "u2")
    b.service = "billing"
    dm.record_queries([(a, []), (b, []), (record("ok", "u3"), [])])
    text = dm.prometheus_text().decode()
    assert sample(text, "rag_processor_active_users", service=a.service) == 2
    assert sample(text, "rag_processor_active_users", service="billing") == 1
    assert sample(text, "rag_processor_error_rate", service="billing") == 1.0
    assert sample(text, "rag_processor_error_rate", service=a.service) == 0.0
    assert sample(text, "rag_processor_query_latency_seconds", service="billing", quantile="0.5") == b.duration_s
    clock.now += 3600  # nothing in either window: zero users and queries, no rate or quantile to report
    text = dm.prometheus_text().decode()
    assert sample(text, "rag_processor_active_users", service="billing") == 0
    assert sample(text, "rag_processor_queries_per_minute", service=a.service) == 0
    assert not [line for line in text.splitlines()
                if line.startswith(("rag_processor_error_rate{", "rag_processor_query_latency_seconds{"))]
    dm.shutdown()


def test_window_services_are_bounded_least_recently_seen_first() -> None:
    from rag_otel.processor.derived_metrics import ServiceWindows

    clock = Clock()
    w = ServiceWindows(300, clock, max_services=2)
    for service in ("a", "b", "a", "c"):  # "b" is the one seen longest ago when "c" arrives
        w.add(service, clock.now, 0.1, False, "u")
    assert [s for s, _ in w.items()] == ["a", "c"]
