"""Enrichment and content stripping on protobuf spans, for every dialect's content names."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from rag_otel.processor.enrich import (
    any_value,
    enrich_root,
    evaluation_log_records,
    set_attributes,
    should_strip,
    strip_span,
)
from rag_otel.records import AxisScore, QualityResult, QueryRecord
from tests.support.otlp_sink import attributes


def span_with(attrs: dict[str, Any], events: tuple[str, ...] = ()) -> Span:
    s = Span(name="s", attributes=[KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()])
    for e in events:
        s.events.add(name=e).attributes.add(key="gen_ai.prompt", value=any_value("secret"))
    return s


def test_strip_removes_content_of_every_dialect_and_keeps_the_rest() -> None:
    s = span_with({
        "openinference.span.kind": "LLM", "input.value": "q", "output.value": "a",
        "llm.input_messages.0.message.content": "q", "llm.input_messages.0.message.role": "user",
        "llm.output_messages.0.message.content": "a", "llm.model_name": "gpt-4o",
        "retrieval.documents.0.document.content": "doc", "retrieval.documents.0.document.id": "d0",
        "traceloop.entity.input": "{}", "traceloop.entity.output": "{}", "gen_ai.prompt.0.content": "q",
        "gen_ai.completion.0.content": "a", "gen_ai.system_instructions": "be nice",
        "gen_ai.usage.input_tokens": 3,
    }, events=("gen_ai.content.prompt", "gen_ai.content.completion", "exception"))
    removed = strip_span(s)
    assert attributes(s.attributes) == {
        "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o", "retrieval.documents.0.document.id": "d0",
        "gen_ai.usage.input_tokens": 3,
    }
    assert [e.name for e in s.events] == ["exception"]
    assert removed == 13


def test_every_content_carrying_attribute_goes_ids_and_scores_stay() -> None:
    """rag.source_documents (a LlamaIndex query engine's sources) kept full text under scoring_only."""
    docs = [{"id": "n1", "score": 0.8, "content": "the secret document"}]
    s = span_with({
        "rag.source_documents": json.dumps(docs), "llm.prompt_template.variables": '{"context_str": "secret"}',
        "retrieval.documents.0.document.metadata": '{"file_path": "/secret.md"}',
        "gen_ai.tool.call.arguments": '{"query": "secret"}', "gen_ai.tool.call.result": "secret",
        "gen_ai.prompt": "secret", "gen_ai.completion": "secret", "rag.documents.count": 1,
    })
    strip_span(s)
    assert attributes(s.attributes) == {"rag.source_documents": '[{"id":"n1","score":0.8}]',
                                        "rag.documents.count": 1}


def test_document_lists_keep_ids_and_scores_and_unreadable_ones_go() -> None:
    docs = [{"id": "a", "score": 0.5, "content": "x", "metadata": {"path": "/secret"}}, {"id": "b"}]
    s = span_with({"gen_ai.retrieval.documents": json.dumps(docs), "rag.rerank.documents": "not json"})
    strip_span(s)
    a = attributes(s.attributes)
    assert json.loads(a["gen_ai.retrieval.documents"]) == [{"id": "a", "score": 0.5}, {"id": "b"}]
    assert "rag.rerank.documents" not in a


@pytest.mark.parametrize(("root", "config", "keep", "strip"), [
    ("scoring_only", "full", False, True),
    ("full", "scoring_only", False, True),
    (None, "full", False, False),
    ("full", "full", False, False),
    (None, "none", False, True),
    ("scoring_only", "scoring_only", True, False),
])
def test_when_content_is_stripped(root: str | None, config: str, keep: bool, strip: bool) -> None:
    assert should_strip(root, config, keep) is strip


def test_enrich_replaces_stale_values_and_adds_one_event_per_axis() -> None:
    root = span_with({"rag.quality.overall": 0.1, "user.id": "u"})
    root.end_time_unix_nano = 123
    rec = QueryRecord("a" * 32, "b" * 16, 0.0, 1.0, latency_category="excellent", cost_usd=0.25,
                      alerts=["slow"])
    q = QualityResult({"accuracy": AxisScore(0.9, "supported", "good"), "relevance": AxisScore(0.2, "", "poor")},
                      0.55, "lexical/1")
    enrich_root(root, rec, q, cost_missing=True, grade_thresholds={"good": 0.7, "fair": 0.4})
    a = attributes(root.attributes)
    assert a == {
        "user.id": "u", "rag.latency.category": "excellent", "gen_ai.usage.cost": 0.25,
        "rag.quality.status": "scored", "rag.quality.evaluator": "lexical/1", "rag.quality.accuracy": 0.9,
        "rag.quality.relevance": 0.2, "rag.quality.overall": 0.55, "rag.quality.grade": "fair",
        "rag.alert.fired": True, "rag.alert.names": ["slow"],
    }
    evs = [(e.name, e.time_unix_nano, attributes(e.attributes)) for e in root.events]
    assert evs == [
        ("gen_ai.evaluation.result", 123, {"gen_ai.evaluation.name": "accuracy", "gen_ai.evaluation.score.value": 0.9,
                                           "gen_ai.evaluation.score.label": "good",
                                           "gen_ai.evaluation.explanation": "supported"}),
        ("gen_ai.evaluation.result", 123, {"gen_ai.evaluation.name": "relevance", "gen_ai.evaluation.score.value": 0.2,
                                           "gen_ai.evaluation.score.label": "poor"}),
    ]


@pytest.mark.parametrize("with_evidence", [False, True])
def test_evaluation_events_quote_the_content_only_where_the_content_goes(with_evidence: bool) -> None:
    """The evidence (sentences, names, numbers quoted from the answer) leaves only with the content itself."""
    root = span_with({})
    rec = QueryRecord("a" * 32, "b" * 16, 0.0, 1.0)
    q = QualityResult({"consistency": AxisScore(0.5, "1 possible contradiction(s) with the sources", "fair",
                                                "lexical/3", "number 4711 is not in the sources"),
                       "relevance": AxisScore(0.3, "", "poor", "llm/judge", "the answer talks about Alice Smith")},
                      0.4, "lexical/3")
    enrich_root(root, rec, q, cost_missing=False, grade_thresholds={}, with_evidence=with_evidence)
    why = [attributes(e.attributes).get("gen_ai.evaluation.explanation") for e in root.events]
    if with_evidence:
        assert why == ["1 possible contradiction(s) with the sources; number 4711 is not in the sources",
                       "the answer talks about Alice Smith"]
    else:
        assert why == ["1 possible contradiction(s) with the sources", None]
        assert b"4711" not in root.SerializeToString() and b"Alice" not in root.SerializeToString()


def test_evaluation_results_as_log_records_tied_to_the_root() -> None:
    """evaluation_events: log: the same results as gen_ai.evaluation.result log records carrying the root's trace
    and span id (what a log backend joins on), and no events on the span itself."""
    root = span_with({})
    root.trace_id, root.span_id, root.end_time_unix_nano = b"\x01" * 16, b"\x02" * 8, 123
    root.flags = 0x301  # sampled, plus the span-only "parent is remote" bits
    q = QualityResult({"accuracy": AxisScore(0.9, "supported", "good", "lexical/3", "quoted \"Paris\""),
                       "relevance": AxisScore(0.2, "", "poor")}, 0.55, "lexical/3")
    enrich_root(root, QueryRecord("a" * 32, "b" * 16, 0.0, 1.0), q, cost_missing=False, grade_thresholds={},
                span_events=False)
    assert list(root.events) == []
    recs = evaluation_log_records(root, q, observed_unix_nano=456)
    assert [(r.event_name, r.trace_id, r.span_id, r.flags, r.time_unix_nano, r.observed_time_unix_nano,
             r.severity_text, attributes(r.attributes)) for r in recs] == [
        ("gen_ai.evaluation.result", b"\x01" * 16, b"\x02" * 8, 0x01, 123, 456, "INFO",
         {"gen_ai.evaluation.name": "accuracy", "gen_ai.evaluation.score.value": 0.9,
          "gen_ai.evaluation.score.label": "good", "gen_ai.evaluation.explanation": "supported"}),
        ("gen_ai.evaluation.result", b"\x01" * 16, b"\x02" * 8, 0x01, 123, 456, "INFO",
         {"gen_ai.evaluation.name": "relevance", "gen_ai.evaluation.score.value": 0.2,
          "gen_ai.evaluation.score.label": "poor"}),
    ]
    with_content = evaluation_log_records(root, q, 456, with_evidence=True)
    assert attributes(with_content[0].attributes)["gen_ai.evaluation.explanation"] == 'supported; quoted "Paris"'
    assert evaluation_log_records(root, QualityResult({}, None, "", "no_content"), 456) == []


def test_no_content_status_writes_no_scores_or_events() -> None:
    root = span_with({})
    enrich_root(root, QueryRecord("a" * 32, "b" * 16, 0.0, 1.0),
                QualityResult({}, None, "", status="no_content"), cost_missing=False, grade_thresholds={})
    assert attributes(root.attributes) == {"rag.quality.status": "no_content"}
    assert list(root.events) == []


def test_set_attributes_with_known_keys_skips_the_rescan_but_still_replaces_clashes() -> None:
    s = span_with({"a": 1, "b": 2})
    set_attributes(s, {"c": 3}, present={"a", "b"})
    set_attributes(s, {"a": 10}, present={"a", "b", "c"})
    assert attributes(s.attributes) == {"b": 2, "c": 3, "a": 10}


@pytest.mark.parametrize("v", ["", "é ascii", "x" * 300, True, False, 0, 7, -1, 2**63 - 1, -(2**63), 0.0, -2.5,
                               1e300, ["slow", "errors"], [], (1, "a", 2.5), {"not": "a scalar"}])
def test_wire_encoded_attributes_equal_what_protobuf_builds(v: Any) -> None:
    from rag_otel.processor.enrich import attributes_bytes

    built = Span(attributes=[KeyValue(key="k.é", value=any_value(v))])
    assert Span.FromString(attributes_bytes({"k.é": v})) == built


def test_wire_encoded_int_out_of_range_is_refused_like_protobuf() -> None:
    from rag_otel.processor.enrich import attributes_bytes

    with pytest.raises(ValueError):
        attributes_bytes({"k": 2**63})


@pytest.mark.parametrize("with_evidence", [False, True])
def test_wire_encoded_evaluation_events_equal_what_protobuf_builds(with_evidence: bool) -> None:
    """The cached event bytes (see enrich._event_parts) are exactly what protobuf serializes for the same events,
    on the first encoding and from the cache, for labels and explanations present, empty, long, and not judged."""
    from rag_otel.processor.enrich import _evaluations, evaluation_events_bytes

    q = QualityResult({"accuracy": AxisScore(0.9, "supported", "good", "lexical/3", "quoted \"Paris\""),
                       "relevance": AxisScore(0, "", ""), "completeness": AxisScore(1, "é" * 300, "fair"),
                       "consistency": AxisScore(0.25, "", "poor", "", "number 4711")},
                      0.55, "lexical/3", not_judged={"tone": "", "faithfulness": "the judge abstained"})
    built = Span()
    for attrs in _evaluations(q, with_evidence):
        event = built.events.add(time_unix_nano=2**63 + 5, name="gen_ai.evaluation.result")
        for key, v in attrs:
            event.attributes.add(key=key, value=any_value(v))
    want = built.SerializeToString()
    assert [e.name for e in built.events] == ["gen_ai.evaluation.result"] * 6
    assert evaluation_events_bytes(2**63 + 5, q, with_evidence) == want
    assert evaluation_events_bytes(2**63 + 5, q, with_evidence) == want  # again, from the cache


@pytest.mark.parametrize("docs", [
    [{"id": "d1", "score": 0.123, "content": "x", "meta": [1, None, {"a": True}], "title": "é \"q\" \\ \n\u2028"}],
    [{"id": 2**70, "score": float("nan"), "text": "x"}, "not a dict", {"score": 1e300, "source": -0.0}], [], [{}],
])
def test_stripped_document_lists_are_the_json_the_standard_encoder_writes(docs: list[Any]) -> None:
    from rag_otel.processor.enrich import _strip_documents

    want = json.dumps([{k: v for k, v in d.items() if k not in ("content", "text", "page_content", "metadata")}
                       for d in docs if isinstance(d, dict)], separators=(",", ":"))
    assert _strip_documents(json.dumps(docs)) == want
    assert _strip_documents("", docs) == want  # the normalizer's parsed value
