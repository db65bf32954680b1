"""When the app's openai instrumentor stepped aside for a peer (``rag.instrumentation.skipped``),
the root's ``gen_ai.usage.cost`` misses the peer's calls: the record's cost is the sum over the
model spans (priced from pricing.yaml where a span has no cost), and the exported root says so."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from rag_otel.config import ModelObservation
from rag_otel.processor.normalize import normalize
from rag_otel.processor.pipeline import Pipeline
from tests.unit.test_normalize_dialects import PRICES, span, trace_of
from tests.unit.test_processor_pipeline import Collect, FixedScorer, attrs, wait_spans

OUR_CALL_COST = 0.0001
PEER_CALL_COST = 0.15 + 0.06  # 1M input + 100k output tokens of gpt-4o-mini, from pricing.yaml


def mixed_trace(root_extra: dict[str, Any]) -> Any:
    """Our rag.query root (cost of our own call only), our chat span, and an OpenInference LLM span."""
    return trace_of(
        span(1, "rag.query", {"rag.query.text": "q?", "rag.answer.text": "a.", "gen_ai.usage.cost": OUR_CALL_COST,
                              **root_extra}, end_ms=2000),
        span(2, "chat gpt-4o-mini", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                                     "gen_ai.usage.input_tokens": 100, "gen_ai.usage.cost": OUR_CALL_COST},
             parent=1, start_ms=10, end_ms=500),
        span(3, "ChatCompletion", {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
                                   "llm.token_count.prompt": 1_000_000, "llm.token_count.completion": 100_000},
             parent=1, start_ms=600, end_ms=1900),
    )


def test_skipped_instrumentation_costs_the_sum_of_model_spans() -> None:
    n = normalize(mixed_trace({"rag.instrumentation.skipped": "openai:openinference"}), PRICES)
    assert n is not None
    assert n.record.cost_usd == pytest.approx(OUR_CALL_COST + PEER_CALL_COST)


def test_without_the_marker_the_roots_cost_is_trusted() -> None:
    n = normalize(mixed_trace({}), PRICES)
    assert n is not None and n.record.cost_usd == pytest.approx(OUR_CALL_COST)


def test_exported_root_carries_the_corrected_cost() -> None:
    cfg = ModelObservation()
    cfg.processor.trace_wait = 0.02
    down = Collect()
    p = Pipeline(cfg, down, scorer=FixedScorer()).start()
    req_spans = [s for _, s in mixed_trace({"rag.instrumentation.skipped": "openai:openinference"}).spans]
    req = ExportTraceServiceRequest()
    req.resource_spans.add().scope_spans.add().spans.extend(req_spans)
    try:
        p.offer_traces(req)
        wait_spans(p, down, 3)
    finally:
        p.shutdown(2)
    root = next(s for s in down.spans if s.name == "rag.query")
    costs = [kv.value.double_value for kv in root.attributes if kv.key == "gen_ai.usage.cost"]
    assert costs == [pytest.approx(OUR_CALL_COST + PEER_CALL_COST)]  # replaced, not duplicated
    assert attrs(root)["rag.instrumentation.skipped"] == "openai:openinference"
