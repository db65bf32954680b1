"""In-memory telemetry for tests (ours and users'): see what the span API and instrumentors emit.

``with capture() as t:`` installs a Runtime over private SDK providers with in-memory
exporters (no globals touched, nothing leaves the process) and restores the previous runtime
on exit.  ``t.spans()``, ``t.metric_points(name)``, ``t.logs()`` read what was emitted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rag_otel.config import ModelObservation
from rag_otel.sdk import runtime


@dataclass
class Captured:
    runtime: runtime.Runtime
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    span_exporter: InMemorySpanExporter
    metric_reader: InMemoryMetricReader
    log_exporter: InMemoryLogRecordExporter

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.span_exporter.get_finished_spans() if name is None or s.name == name]

    def span(self, name: str) -> ReadableSpan:
        found = self.spans(name)
        if len(found) != 1:
            raise AssertionError(f"expected one span {name!r}, got {[s.name for s in self.spans()]}")
        return found[0]

    def metric_points(self, name: str) -> list[Any]:
        """Data points of metric ``name`` collected now (cumulative since the start)."""
        data = self.metric_reader.get_metrics_data()
        out: list[Any] = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == name:
                        out.extend(m.data.data_points)
        return out

    def logs(self) -> list[Any]:
        return [r.log_record for r in self.log_exporter.get_finished_logs()]


@contextmanager
def capture(config: ModelObservation | None = None) -> Iterator[Captured]:
    """A private Runtime over in-memory exporters, installed for the duration of the block."""
    cfg = config or ModelObservation()
    spans = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    logs = InMemoryLogRecordExporter()
    lp = LoggerProvider()
    lp.add_log_record_processor(SimpleLogRecordProcessor(logs))
    rt = runtime.Runtime.create(cfg, tp, mp, lp)
    previous = runtime._runtime
    runtime.set_runtime(rt)
    try:
        yield Captured(rt, tp, mp, lp, spans, reader, logs)
    finally:
        runtime.set_runtime(previous)
        tp.shutdown()
        mp.shutdown()
        lp.shutdown()
