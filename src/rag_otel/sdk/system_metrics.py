"""System and process metrics of the RAG service.

``opentelemetry-instrumentation-system-metrics`` collects the standard system.* / process.*
metrics; we only add, as observable gauges read at each collection (``metrics_collection.interval``),
what it lacks and a RAG service needs:

- ``rag.process.memory.rss`` (By) and ``rag.process.cpu.utilization`` (0..1 of all cores);
  the instrumentor's own ``process.memory.usage``/``process.cpu.utilization`` and the
  deprecated ``process.runtime.*`` duplicates are switched off so nothing is collected twice;
- ``system.filesystem.utilization`` (state=used) of the data disk, which the instrumentor lacks
  and the seed's health formula needs;
- ``rag.process.open_connections``: inet sockets of this process;
- ``rag.event_loop.lag`` (s): how late a timer on the app's asyncio loop fires (max since the
  last collection), measured by a probe started on the first async query or request;
- ``rag.system.health.score`` = 100 − (0.3·cpu% + 0.4·memory% + 0.3·disk%) clamped to [0, 100],
  with ``rag.health.state`` healthy (≥80) / warning (≥60) / critical, and
  ``rag.system.health.status`` 0/1/2 for simple alert rules.

In-flight queries are ``rag.queries.in_flight``, an observable up-down counter the span API keeps.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import threading
from collections.abc import Iterable
from typing import Any

import psutil
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from rag_otel import semconv
from rag_otel.health import CRITICAL, HEALTHY, WARNING, health_score, health_state
from rag_otel.sdk import spans

logger = logging.getLogger("rag_otel")

_STATUS_CODE = {HEALTHY: 0, WARNING: 1, CRITICAL: 2}
# Collected by our gauges instead (or deprecated duplicates of process.*).
_SKIP_FROM_INSTRUMENTOR = (
    "process.memory.usage", "process.cpu.utilization", "process.runtime.memory", "process.runtime.cpu.time",
    "process.runtime.gc_count", "process.runtime.thread_count", "process.runtime.cpu.utilization",
    "process.runtime.context_switches",
)


class EventLoopProbe:
    """Measures asyncio loop lag with a self-rescheduling timer (no task, no extra thread).

    Each tick is scheduled ``period`` seconds ahead; the lag is how late it actually ran.
    The gauge reports the worst lag since the previous collection.
    """

    def __init__(self, period: float = 0.25) -> None:
        self.period = period
        self.loop: asyncio.AbstractEventLoop | None = None
        self._worst: float | None = None
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        """Start on the running loop, if any and not already probed (cheap when nothing to do)."""
        loop = asyncio._get_running_loop()
        if loop is None or loop is self.loop:
            return
        self.loop = loop
        self._schedule(loop)

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        due = loop.time() + self.period
        # An empty context: the timer must not keep the request's spans alive.
        loop.call_later(self.period, self._tick, loop, due, context=contextvars.Context())

    def _tick(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        lag = max(0.0, loop.time() - due)
        with self._lock:
            self._worst = lag if self._worst is None else max(self._worst, lag)
        if self.loop is loop and not loop.is_closed():
            self._schedule(loop)

    def take(self) -> float | None:
        with self._lock:
            worst, self._worst = self._worst, None
        return worst


class SystemGauges:
    """Observable gauges over psutil; one sample per collection shared by the health gauges."""

    def __init__(self, meter: metrics.Meter, disk_path: str | None = None, probe: EventLoopProbe | None = None) -> None:
        self._proc = psutil.Process(os.getpid())
        self._proc.cpu_percent(None)  # prime: the first call has no interval to measure
        psutil.cpu_percent(None)
        self._cpus = psutil.cpu_count() or 1
        self._disk_path = disk_path or os.getcwd()
        self.probe = probe or EventLoopProbe()
        g = meter.create_observable_gauge
        g(semconv.METRIC_PROCESS_RSS, [self._rss], unit="By", description="Resident memory of this process.")
        g(semconv.METRIC_PROCESS_CPU, [self._cpu], unit="1", description="CPU used by this process, 0..1 of all cores.")
        g(semconv.SYS_FILESYSTEM_UTILIZATION, [self._disk], unit="1", description="Used share of the data disk.")
        g(semconv.METRIC_PROCESS_CONNECTIONS, [self._connections], unit="{connection}",
          description="Open inet connections of this process.")
        g(semconv.METRIC_EVENT_LOOP_LAG, [self._lag], unit="s",
          description="Worst asyncio event-loop lag since the last collection.")
        g(semconv.METRIC_HEALTH_SCORE, [self._health], unit="1",
          description="100 - (0.3 cpu% + 0.4 memory% + 0.3 disk%), clamped to [0, 100].")
        g(semconv.METRIC_HEALTH_STATUS, [self._status], unit="1", description="0 healthy, 1 warning, 2 critical.")
        self._last: tuple[float, str] | None = None

    def _rss(self, _o: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._proc.memory_info().rss)

    def _cpu(self, _o: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._proc.cpu_percent(None) / (100.0 * self._cpus))

    def _disk(self, _o: CallbackOptions) -> Iterable[Observation]:
        yield Observation(psutil.disk_usage(self._disk_path).percent / 100.0,
                          {semconv.SYS_FILESYSTEM_STATE: "used", semconv.SYS_FILESYSTEM_MOUNTPOINT: self._disk_path})

    def _connections(self, _o: CallbackOptions) -> Iterable[Observation]:
        try:
            n = len(self._proc.net_connections(kind="inet"))
        except (psutil.AccessDenied, psutil.Error):
            return
        yield Observation(n)

    def _lag(self, _o: CallbackOptions) -> Iterable[Observation]:
        lag = self.probe.take()
        if lag is not None:
            yield Observation(lag)

    def sample_health(self) -> tuple[float, str]:
        score = health_score(
            psutil.cpu_percent(None), psutil.virtual_memory().percent, psutil.disk_usage(self._disk_path).percent,
        )
        return score, health_state(score)

    def _health(self, _o: CallbackOptions) -> Iterable[Observation]:
        score, state = self._last = self.sample_health()
        yield Observation(score, {semconv.RAG_HEALTH_STATE: state})

    def _status(self, _o: CallbackOptions) -> Iterable[Observation]:
        _, state = self._last or self.sample_health()
        self._last = None
        yield Observation(_STATUS_CODE[state], {semconv.RAG_HEALTH_STATE: state})


def instrumentor_config() -> dict[str, list[str] | None]:
    """The system-metrics instrumentor's defaults (honouring its exclude variable) minus ours."""
    try:  # a private helper of the instrumentor: fall back to its public default when it moves
        from opentelemetry.instrumentation.system_metrics import _build_default_config

        base = _build_default_config()
    except ImportError:
        from opentelemetry.instrumentation.system_metrics import _DEFAULT_CONFIG as base
    return {k: v for k, v in base.items() if k not in _SKIP_FROM_INSTRUMENTOR}


class SystemMetrics:
    """Handle over what :func:`start` turned on."""

    def __init__(self, gauges: SystemGauges | None, instrumentor: Any | None) -> None:
        self.gauges = gauges
        self.instrumentor = instrumentor

    def stop(self) -> None:
        spans._loop_probe_hook = None
        if self.instrumentor is not None:
            try:
                self.instrumentor.uninstrument()
            except Exception:
                logger.debug("rag-otel: system metrics uninstrument failed", exc_info=True)


def start(meter_provider: metrics.MeterProvider | None = None, *, disk_path: str | None = None) -> SystemMetrics:
    """Turn on the instrumentor and our gauges on ``meter_provider`` (default: the global one).

    Collection happens when the provider's reader collects, i.e. at ``metrics_collection.interval``.
    """
    instrumentor = None
    try:
        from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

        instrumentor = SystemMetricsInstrumentor(config=instrumentor_config())
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(meter_provider=meter_provider)
    except Exception:
        logger.warning("rag-otel: opentelemetry-instrumentation-system-metrics unavailable", exc_info=True)
        instrumentor = None
    from rag_otel import __version__

    meter = metrics.get_meter("rag_otel.system", __version__, meter_provider)
    gauges = SystemGauges(meter, disk_path)
    spans._loop_probe_hook = gauges.probe.ensure_started
    return SystemMetrics(gauges, instrumentor)
