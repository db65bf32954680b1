"""Write what the processor learned back onto the trace, and strip content before export.

On the root span: quality scores and grade, evaluator, quality status, latency category, cost
where the spans had none, and which alerts the query tripped, so a user can search Jaeger by tag
(``rag.quality.grade=poor``).  One ``gen_ai.evaluation.result`` event per axis on the root.

Content captured only for scoring leaves no trace downstream: every content attribute (ours,
GenAI, OpenInference, OpenLLMetry names) and every content event is removed; document lists keep
their ids and scores.  Spans are edited in place as protobuf messages (no dict round trip).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from rag_otel import semconv as sc
from rag_otel.records import QualityResult, QueryRecord

_CONTENT_KEYS = frozenset((
    sc.RAG_QUERY_TEXT, sc.RAG_ANSWER_TEXT, sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES,
    sc.GEN_AI_SYSTEM_INSTRUCTIONS, sc.GEN_AI_RETRIEVAL_QUERY_TEXT, sc.OI_INPUT_VALUE, sc.OI_OUTPUT_VALUE,
    sc.OI_LLM_PROMPTS, sc.TL_ENTITY_INPUT, sc.TL_ENTITY_OUTPUT, sc.OI_RERANKER_QUERY,
))
_CONTENT_PREFIXES = (
    sc.OI_LLM_INPUT_MESSAGES_PREFIX, sc.OI_LLM_OUTPUT_MESSAGES_PREFIX, sc.TL_PROMPT_PREFIX, sc.TL_COMPLETION_PREFIX,
    sc.OI_EMBEDDING_EMBEDDINGS_PREFIX, sc.OI_RERANKER_INPUT_DOCUMENTS_PREFIX, sc.OI_RERANKER_OUTPUT_DOCUMENTS_PREFIX,
)
_DOCUMENT_JSON_KEYS = frozenset((sc.GEN_AI_RETRIEVAL_DOCUMENTS, sc.RAG_RERANK_DOCUMENTS))
_DOC_CONTENT_FIELDS = ("content", "text", "page_content", "metadata")
_CONTENT_EVENTS = frozenset(sc.GEN_AI_CONTENT_EVENTS)
_ENRICH_KEYS = frozenset((
    *(sc.RAG_QUALITY_PREFIX + a for a in (*sc.QUALITY_AXES, "overall")),
    sc.RAG_QUALITY_GRADE, sc.RAG_QUALITY_EVALUATOR, sc.RAG_QUALITY_STATUS, sc.RAG_LATENCY_CATEGORY,
    sc.RAG_ALERT_FIRED, sc.RAG_ALERT_NAMES, sc.GEN_AI_USAGE_COST,
))


def fill(target: AnyValue, v: Any) -> None:
    """Set a plain value into an existing ``AnyValue`` (in place: no temporary message to copy)."""
    if isinstance(v, str):
        target.string_value = v
    elif isinstance(v, bool):  # before int: bool is an int in Python
        target.bool_value = v
    elif isinstance(v, int):
        target.int_value = v
    elif isinstance(v, float):
        target.double_value = v
    elif isinstance(v, (list, tuple)):
        values = target.array_value.values
        for x in v:
            fill(values.add(), x)
    else:
        target.string_value = str(v)


def any_value(v: Any) -> AnyValue:
    """OTLP ``AnyValue`` of a plain value."""
    out = AnyValue()
    fill(out, v)
    return out


def add_attributes(kvs: Any, attrs: dict[str, Any]) -> None:
    """Append ``attrs`` to a ``repeated KeyValue`` field."""
    for k, v in attrs.items():
        fill(kvs.add(key=k).value, v)


def set_attributes(span: Span, attrs: dict[str, Any], present: Collection[str] | None = None) -> None:
    """Set ``attrs`` on ``span``, replacing any value already there under the same key.

    ``present``: the span's keys when the caller knows them, to skip re-reading them when none clash.
    """
    if not attrs:
        return
    kvs = span.attributes
    if present is None or not attrs.keys().isdisjoint(present):
        for i in range(len(kvs) - 1, -1, -1):
            if kvs[i].key in attrs:
                del kvs[i]
    add_attributes(kvs, attrs)


def grade_of(overall: float | None, thresholds: dict[str, float]) -> str | None:
    """good / fair / poor from the configured thresholds (a scorer may already have said)."""
    if overall is None:
        return None
    if overall >= thresholds.get("good", 0.7):
        return "good"
    return "fair" if overall >= thresholds.get("fair", 0.4) else "poor"


def root_attributes(
    record: QueryRecord, quality: QualityResult | None, cost_missing: bool, grade_thresholds: dict[str, float],
) -> dict[str, Any]:
    """Everything enrichment adds to the root span, as plain values."""
    out: dict[str, Any] = {}
    if record.latency_category:
        out[sc.RAG_LATENCY_CATEGORY] = record.latency_category
    if cost_missing and record.cost_usd is not None:
        out[sc.GEN_AI_USAGE_COST] = record.cost_usd
    if quality is not None:
        out[sc.RAG_QUALITY_STATUS] = quality.status
        if quality.evaluator:
            out[sc.RAG_QUALITY_EVALUATOR] = quality.evaluator
        if quality.status == "scored":
            for axis, s in quality.axes.items():
                out[sc.RAG_QUALITY_PREFIX + axis] = float(s.score)
            if quality.overall is not None:
                out[sc.RAG_QUALITY_OVERALL] = float(quality.overall)
            grade = quality.grade or grade_of(quality.overall, grade_thresholds)
            if grade:
                out[sc.RAG_QUALITY_GRADE] = grade
    if record.alerts:
        out[sc.RAG_ALERT_FIRED] = True
        out[sc.RAG_ALERT_NAMES] = list(record.alerts)
    return out


def add_evaluation_events(span: Span, quality: QualityResult) -> None:
    """One ``gen_ai.evaluation.result`` event per scored axis, timed at the root's end."""
    if quality.status != "scored":
        return
    t = span.end_time_unix_nano
    for axis, s in quality.axes.items():
        kvs = span.events.add(name=sc.GEN_AI_EVALUATION_RESULT_EVENT, time_unix_nano=t).attributes
        kvs.add(key=sc.GEN_AI_EVALUATION_NAME).value.string_value = axis
        kvs.add(key=sc.GEN_AI_EVALUATION_SCORE_VALUE).value.double_value = float(s.score)
        if s.label:
            kvs.add(key=sc.GEN_AI_EVALUATION_SCORE_LABEL).value.string_value = s.label
        if s.explanation:
            kvs.add(key=sc.GEN_AI_EVALUATION_EXPLANATION).value.string_value = s.explanation


def enrich_root(
    root: Span,
    record: QueryRecord,
    quality: QualityResult | None,
    *,
    cost_missing: bool,
    grade_thresholds: dict[str, float],
    present: Collection[str] | None = None,
) -> None:
    """Set the enrichment attributes and evaluation events on the root span."""
    set_attributes(root, root_attributes(record, quality, cost_missing, grade_thresholds), present)
    if quality is not None:
        add_evaluation_events(root, quality)


def has_cost(span: Span) -> bool:
    return any(kv.key == sc.GEN_AI_USAGE_COST for kv in span.attributes)


def is_content_key(key: str) -> bool:
    if key in _CONTENT_KEYS or key.startswith(_CONTENT_PREFIXES):
        return True
    return key.startswith(sc.OI_RETRIEVAL_DOCUMENTS_PREFIX) and key.endswith(sc.OI_DOCUMENT_CONTENT_SUFFIX)


def _strip_documents(raw: str, docs: Any = None) -> str | None:
    """The documents JSON without content fields (ids, scores, source kept); None if unreadable.

    ``docs``: ``raw`` already parsed (the normalizer did), to skip a second ``json.loads``."""
    if docs is None:
        try:
            docs = json.loads(raw)
        except ValueError:
            return None
    if not isinstance(docs, list):
        return None
    kept = [{k: v for k, v in d.items() if k not in _DOC_CONTENT_FIELDS} for d in docs if isinstance(d, dict)]
    return json.dumps(kept, separators=(",", ":"))


def strip_span(span: Span, index: dict[str, int] | None = None, parsed: dict[str, Any] | None = None) -> int:
    """Remove every content attribute and content event of ``span``; return how many were removed.

    ``index`` (key -> position, as the normalizer built it) saves reading the keys again;
    ``parsed`` (key -> JSON value the normalizer already decoded) saves decoding it again.
    """
    kvs = span.attributes
    if index is None:
        index = {kv.key: i for i, kv in enumerate(kvs)}
    drop: list[int] = []
    rewritten = 0
    for key, i in index.items():
        if key in _DOCUMENT_JSON_KEYS:
            v = kvs[i].value
            stripped = _strip_documents(v.string_value, parsed.get(key) if parsed else None)
            if stripped is None:
                drop.append(i)
            else:
                v.string_value = stripped
                rewritten += 1
        elif key in _CONTENT_KEYS or key.startswith(_CONTENT_PREFIXES) or (
            key.startswith(sc.OI_RETRIEVAL_DOCUMENTS_PREFIX) and key.endswith(sc.OI_DOCUMENT_CONTENT_SUFFIX)
        ):
            drop.append(i)
    for i in sorted(drop, reverse=True):
        del kvs[i]
    removed = len(drop) + rewritten
    events = span.events
    if events:
        for i in range(len(events) - 1, -1, -1):
            if events[i].name in _CONTENT_EVENTS:
                del events[i]
                removed += 1
    return removed


def strip_content(spans: Iterable[Span | tuple[Span, dict[str, int], dict[str, Any] | None]]) -> int:
    """Strip every span of a trace (content sits on the root, retrieval and chat spans alike)."""
    n = 0
    for s in spans:
        n += strip_span(*s) if isinstance(s, tuple) else strip_span(s)
    return n


def should_strip(root_capture: str | None, config_capture: str, keep_content: bool) -> bool:
    """Content captured for scoring only is removed unless the processor is told to keep it.

    ``keep_content`` wins; otherwise strip when the app marked the trace ``scoring_only`` or when
    the processor's own ``content.capture`` is not ``full``.
    """
    if keep_content:
        return False
    return root_capture == "scoring_only" or config_capture != "full"
