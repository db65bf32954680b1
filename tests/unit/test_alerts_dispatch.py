"""The dispatcher's bounds and reports, and notifier construction from config (no servers needed)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from rag_otel.alerts.notifiers import Dispatcher, LogNotifier, build_notifiers, slack_body
from rag_otel.config import Alerting, ConfigError
from rag_otel.records import AlertEvent


def event(state: str = "firing") -> AlertEvent:
    return AlertEvent(rule="r", state=state, severity="warning", value=3.0, threshold=2.0,  # type: ignore[arg-type]
                      labels={"alertname": "r", "severity": "warning"}, started_at=0.0, at=1.0, message="m",
                      fingerprint="f")


class Stuck:
    """A notifier whose endpoint hangs until released: the queue behind it must stay bounded."""

    name = "stuck"
    max_retries = 0

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.got: list[list[AlertEvent]] = []

    def send(self, events: list[AlertEvent]) -> None:
        self.entered.set()
        self.release.wait(5)
        self.got.append(events)

    def due(self, now: float) -> list[AlertEvent]:
        return []


def test_full_queue_drops_and_counts_without_blocking_the_caller() -> None:
    stuck = Stuck()
    d = Dispatcher([stuck], queue_size=2, tick=0.05)
    started = time.monotonic()
    d.submit([event()])
    assert stuck.entered.wait(2)  # one in flight
    for _ in range(5):  # two queued, the rest dropped
        d.submit([event()])
    assert time.monotonic() - started < 1.0
    stuck.release.set()
    d.close(timeout=3)
    assert d.stats["stuck"]["dropped"] == 3 and d.stats["stuck"]["sent"] == 3 and len(stuck.got) == 3


def test_pending_is_never_sent_and_log_notifier_logs(caplog: pytest.LogCaptureFixture) -> None:
    d = Dispatcher([LogNotifier()], tick=0.05)
    with caplog.at_level(logging.INFO, logger="rag_otel.alerts"):
        d.submit([event("pending")])
        d.submit([event("firing"), event("resolved")])
        d.close()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["alert [FIRING] r (warning): m", "alert [RESOLVED] r (warning): m"]
    assert d.stats["log"]["sent"] == 1


def test_build_notifiers_from_config() -> None:
    alerting = Alerting.model_validate({"notifiers": [
        {"type": "log"}, {"type": "webhook", "url": "http://127.0.0.1:1/x", "format": "slack"},
        {"type": "alertmanager", "url": "http://127.0.0.1:9093/"},
        {"type": "email", "smtp_host": "127.0.0.1", "to": ["a@b.c"], "username": "u", "password_env": "PW"},
    ]})
    names = [n.name for n in build_notifiers(alerting, env={"PW": "secret"})]
    assert names == ["log", "webhook:http://127.0.0.1:1/x", "alertmanager:http://127.0.0.1:9093",
                     "email:127.0.0.1:25"]
    with pytest.raises(ConfigError, match="environment variable PW is not set"):
        build_notifiers(alerting, env={})


def test_slack_body_colours_by_state_and_severity() -> None:
    body = slack_body([event("firing"), event("resolved")])
    assert [a["color"] for a in body["attachments"]] == ["#daa038", "#2eb886"]
    assert body["text"].splitlines() == ["[FIRING] r (warning): m", "[RESOLVED] r (warning): m"]


def test_outcomes_are_counted_as_an_otel_metric() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from rag_otel import semconv

    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    d = Dispatcher([LogNotifier()], tick=0.05, meter=meter)
    d.submit([event("firing")])
    d.submit([event("resolved")])
    d.close()
    [metric] = [m for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
                for m in sm.metrics if m.name == semconv.METRIC_P_ALERT_NOTIFICATIONS]
    [point] = metric.data.data_points
    assert dict(point.attributes) == {"notifier": "log", "outcome": "sent"} and point.value == 2
