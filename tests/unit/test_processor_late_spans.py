"""A span that arrives after its trace was flushed: no second query record, exported as received
(content still stripped), counted in rag.processor.late_spans."""

from __future__ import annotations

import json
import re
import threading

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from rag_otel.config import ModelObservation
from rag_otel.processor.derived_metrics import DerivedMetrics
from rag_otel.processor.enrich import any_value
from rag_otel.processor.pipeline import Pipeline
from rag_otel.records import QueryRecord
from tests.unit.test_assembly_traces import ORIGIN, Clock, span
from tests.unit.test_assembly_traces import make as make_assembler
from tests.unit.test_processor_pipeline import T0, Collect, FixedScorer, attrs, rag_request, wait_spans


def late_chat_span(trace: int) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name", value=any_value("app"))
    rs.scope_spans.add().spans.append(Span(
        trace_id=trace.to_bytes(16, "big"), span_id=(9).to_bytes(8, "big"), parent_span_id=(1).to_bytes(8, "big"),
        name="chat gpt-4o-mini", start_time_unix_nano=T0, end_time_unix_nano=T0 + 10**8,
        attributes=[KeyValue(key=k, value=any_value(v)) for k, v in {
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 10, "gen_ai.input.messages": json.dumps([{"role": "user", "content": "x"}]),
        }.items()]))
    return req


def test_a_straggler_after_the_flush_makes_no_second_record() -> None:
    cfg = ModelObservation()
    cfg.processor.trace_wait = 0.05
    cfg.content.capture = "scoring_only"
    down, metrics, records = Collect(), DerivedMetrics(None), []
    lock = threading.Lock()
    p = Pipeline(cfg, down, scorer=FixedScorer(), metrics=metrics).start()

    def seen(r: QueryRecord) -> None:
        with lock:
            records.append(r)

    p.on_record.append(seen)
    try:
        p.offer_traces(rag_request(1))
        wait_spans(p, down, 3)
        assert not p.offer_traces(late_chat_span(1)).full
        wait_spans(p, down, 4)
        assert p.wait_idle(5)
        prometheus = metrics.prometheus_text()
    finally:
        p.shutdown(2)
        metrics.shutdown()
    assert [r.trace_id for r in records] == [(1).to_bytes(16, "big").hex()]  # one record, not two
    assert p.stats.records == 1 and p.stats.late_spans == 1
    late = down.spans[-1]
    a = attrs(late)
    assert late.span_id == (9).to_bytes(8, "big") and a["gen_ai.usage.input_tokens"] == 10  # as received...
    assert "gen_ai.input.messages" not in a  # ...but captured content still does not leak
    assert not any(k.startswith("rag.") for k in a) and not late.events  # nothing enriched
    assert re.search(rb"^rag_processor_late_spans_total\{[^}]*\} 1.0$", prometheus, re.M)


def test_assembler_remembers_released_traces_within_bounds() -> None:
    clock = Clock()
    asm = make_assembler(clock, wait=1.0)
    asm.remember, asm.remember_seconds = 2, 60.0
    for t in (1, 2, 3):
        asm.add(ORIGIN, span(t, 1))
    clock.now += 1.0
    assert len(asm.expire()) == 3
    [late] = asm.add(ORIGIN, span(3, 2, parent=1))
    assert late.reason == "late" and not late.complete and len(asm) == 0 and asm.late_spans == 1
    assert asm.add(ORIGIN, span(1, 2, parent=1)) == [] and len(asm) == 1  # forgotten (count bound): a new trace
    clock.now += 61.0
    assert asm.add(ORIGIN, span(2, 2, parent=1)) == []  # forgotten (time bound)
