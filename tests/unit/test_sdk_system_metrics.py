"""System gauges over the real machine (psutil) through the OTel SDK's in-memory reader."""

from __future__ import annotations

import asyncio
import time

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from rag_otel import semconv
from rag_otel.sdk.system_metrics import EventLoopProbe, SystemGauges, health_score, health_state, instrumentor_config


@pytest.mark.parametrize(
    ("cpu", "mem", "disk", "score", "state"),
    [
        (0, 0, 0, 100.0, "healthy"),
        (20, 10, 10, 100 - (6 + 4 + 3), "healthy"),
        (60, 50, 40, 100 - (18 + 20 + 12), "critical"),
        (40, 40, 30, 100 - (12 + 16 + 9), "warning"),
        (100, 100, 100, 0.0, "critical"),
        (300, 300, 300, 0.0, "critical"),  # clamped, never negative
    ],
)
def test_health_formula_and_states(cpu: float, mem: float, disk: float, score: float, state: str) -> None:
    assert health_score(cpu, mem, disk) == pytest.approx(score)
    assert health_state(health_score(cpu, mem, disk)) == state


def test_state_thresholds_are_inclusive() -> None:
    assert (health_state(80), health_state(79.99), health_state(60), health_state(59.99)) == (
        "healthy", "warning", "warning", "critical",
    )


def _collect(reader: InMemoryMetricReader) -> dict[str, list]:
    out: dict[str, list] = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out.setdefault(m.name, []).extend(m.data.data_points)
    return out


async def test_gauges_report_this_process_and_loop_lag() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    probe = EventLoopProbe(period=0.01)
    gauges = SystemGauges(provider.get_meter("t"), probe=probe)
    probe.ensure_started()
    await asyncio.sleep(0.02)
    time.sleep(0.15)  # block the loop: the next tick fires late
    await asyncio.sleep(0.03)
    got = _collect(reader)
    assert got[semconv.METRIC_PROCESS_RSS][0].value > 10_000_000  # a Python process uses > 10 MB
    assert 0.0 <= got[semconv.METRIC_PROCESS_CPU][0].value <= 1.0
    assert got[semconv.METRIC_PROCESS_CONNECTIONS][0].value >= 0
    assert 0.0 < got[semconv.SYS_FILESYSTEM_UTILIZATION][0].value < 1.0
    (lag,) = got[semconv.METRIC_EVENT_LOOP_LAG]
    assert 0.1 <= lag.value < 1.0
    (score,) = got[semconv.METRIC_HEALTH_SCORE]
    assert 0.0 <= score.value <= 100.0
    assert score.attributes[semconv.RAG_HEALTH_STATE] == health_state(score.value)
    (status,) = got[semconv.METRIC_HEALTH_STATUS]
    assert status.value == {"healthy": 0, "warning": 1, "critical": 2}[status.attributes[semconv.RAG_HEALTH_STATE]]
    # lag is "worst since the last collection": an idle loop reports a small one next time
    await asyncio.sleep(0.05)
    (lag2,) = _collect(reader)[semconv.METRIC_EVENT_LOOP_LAG]
    assert lag2.value < 0.1
    probe.loop = None  # stop rescheduling
    provider.shutdown()
    assert gauges.probe is probe


def test_no_loop_no_lag_point() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    SystemGauges(provider.get_meter("t"), probe=EventLoopProbe())
    assert semconv.METRIC_EVENT_LOOP_LAG not in _collect(reader)  # nothing measured: nothing invented
    provider.shutdown()


def test_instrumentor_does_not_collect_what_our_gauges_do() -> None:
    cfg = instrumentor_config()
    assert "system.cpu.utilization" in cfg and "system.memory.utilization" in cfg
    for dup in ("process.memory.usage", "process.cpu.utilization", "process.runtime.memory"):
        assert dup not in cfg
