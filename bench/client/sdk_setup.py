"""The one OTel SDK setup every contender gets, so only the instrumentation differs.

Spans go through a ``SimpleSpanProcessor`` to an exporter that counts and drops them: all span
work happens synchronously inside the timed window (no background thread whose CPU would land
in or out of it by chance), and no contender pays for serialising to a wire format. Metrics go to
an ``InMemoryMetricReader`` (aggregation on record, collection only when we ask, outside timing).
Log records / events go through a ``SimpleLogRecordProcessor`` to a dropping exporter too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult


class CountingSpanExporter(SpanExporter):
    """Drops spans, keeping only how many of each name ended (to check contenders are comparable)."""

    def __init__(self) -> None:
        self.names: Counter[str] = Counter()
        self.attribute_keys: dict[str, frozenset[str]] = {}

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for s in spans:
            self.names[s.name] += 1
            if s.name not in self.attribute_keys:
                self.attribute_keys[s.name] = frozenset(s.attributes or ())
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class DroppingLogExporter(LogRecordExporter):
    """Drops log records (events), counting them."""

    def __init__(self) -> None:
        self.count = 0

    def export(self, batch) -> LogRecordExportResult:  # type: ignore[no-untyped-def]
        self.count += len(batch)
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        pass


@dataclass
class Sdk:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    spans: CountingSpanExporter
    logs: DroppingLogExporter
    reader: InMemoryMetricReader

    def metric_points(self) -> dict[str, int]:
        """Data points per metric name collected so far (cumulative; outside the timed window)."""
        out: dict[str, int] = {}
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    out[m.name] = out.get(m.name, 0) + len(m.data.data_points)
        return out


def install() -> Sdk:
    """Build the providers and make them global (every contender reads the globals)."""
    resource = Resource.create({"service.name": "bench-client"})
    spans = CountingSpanExporter()
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader], resource=resource)
    logs = DroppingLogExporter()
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(SimpleLogRecordProcessor(logs))
    trace.set_tracer_provider(tp)
    metrics.set_meter_provider(mp)
    _logs.set_logger_provider(lp)
    return Sdk(tp, mp, lp, spans, logs, reader)
