"""Shared setup for the openai instrumentation tests (no tests here): in-memory OTel SDK, runtime."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rag_otel import semconv
from rag_otel.config import ModelObservation
from rag_otel.sdk.runtime import QueryState, Runtime, current_query, set_runtime


@dataclass
class Telemetry:
    """The exporters a test reads, and the runtime it installed."""

    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    runtime: Runtime

    def finished(self, name_prefix: str = "") -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.name.startswith(name_prefix)]

    def one(self, name_prefix: str) -> ReadableSpan:
        found = self.finished(name_prefix)
        assert len(found) == 1, [s.name for s in self.spans.get_finished_spans()]
        return found[0]

    def points(self, metric: str, scope: str | None = None) -> list[Any]:
        """Data points of ``metric`` (from instrumentation scope ``scope`` when given)."""
        data = self.metrics.get_metrics_data()
        out = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                if scope is not None and sm.scope.name != scope:
                    continue
                for m in sm.metrics:
                    if m.name == metric:
                        out.extend(m.data.data_points)
        return out

    @contextmanager
    def query(self) -> Iterator[QueryState]:
        """A ``rag.query`` root with its cost accumulator, as the span API opens it."""
        with self.runtime.tracer.start_as_current_span(semconv.SPAN_RAG_QUERY) as span:
            state = QueryState(span=span)
            token = current_query.set(state)
            try:
                yield state
            finally:
                current_query.reset(token)


@contextmanager
def telemetry(config: ModelObservation | None = None) -> Iterator[Telemetry]:
    spans = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    rt = Runtime.create(config or ModelObservation(), tp, mp)
    set_runtime(rt)
    try:
        yield Telemetry(spans, reader, tp, mp, rt)
    finally:
        set_runtime(None)
        tp.shutdown()
        mp.shutdown()
