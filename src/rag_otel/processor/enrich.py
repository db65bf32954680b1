"""Write what the processor learned back onto the trace, and strip content before export.

On the root span: quality scores and grade, evaluator, quality status, latency category, cost
where the spans had none, and which alerts the query tripped, so a user can search Jaeger by tag
(``rag.quality.grade=poor``).  One ``gen_ai.evaluation.result`` event per axis on the root; its
explanation quotes the content (the scorer's evidence) only when the content is exported too.

Content captured only for scoring leaves no trace downstream: every content attribute (ours,
GenAI, OpenInference, OpenLLMetry names) and every content event is removed; document lists keep
their ids and scores.  Spans are edited in place as protobuf messages (no dict round trip); the
new attributes and events are appended in one ``MergeFromString`` of their wire form (protobuf
appends merged repeated fields), about 6x cheaper than adding them one message at a time.
"""

from __future__ import annotations

import json
import json.encoder
import struct
from collections.abc import Callable, Collection, Iterable, KeysView
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import SEVERITY_NUMBER_INFO, LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from rag_otel import semconv as sc
from rag_otel.records import AxisScore, QualityResult, QueryRecord

_CONTENT_KEYS = sc.CONTENT_ATTRIBUTES  # the one list of content names: semconv.py
_CONTENT_PREFIXES = sc.CONTENT_ATTRIBUTE_PREFIXES
# document lists as JSON: ids and scores kept, text dropped (rag.source_documents: a query engine's sources)
_DOCUMENT_JSON_KEYS = sc.CONTENT_DOCUMENT_JSON
_COMPACT = json.JSONEncoder(separators=(",", ":"))  # made once: json.dumps with options builds one per call


def _compact_encoder() -> Callable[[Any], str]:
    """``_COMPACT.encode``, with the C encoder made once rather than per call (``encode`` builds one each time:
    ~40% of encoding a 3-document list).  The same arguments ``_COMPACT`` passes it, so the same text; no
    circular-reference markers, which JSON that ``json.loads`` made cannot need."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python without the C accelerator
        return _COMPACT.encode
    try:
        c_encode = make(None, _COMPACT.default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False,
                        True)
    except TypeError:  # another signature: keep the public path
        return _COMPACT.encode
    return lambda o: "".join(c_encode(o, 0))


_encode_compact = _compact_encoder()
_DOC_CONTENT_FIELDS = sc.CONTENT_DOCUMENT_FIELDS
_CONTENT_EVENTS = frozenset((*sc.GEN_AI_CONTENT_EVENTS, *sc.TL_COMPLETION_CHUNK_EVENTS))
_ENRICH_KEYS = frozenset((
    *(sc.RAG_QUALITY_PREFIX + a for a in (*sc.QUALITY_AXES, "overall")),
    sc.RAG_QUALITY_GRADE, sc.RAG_QUALITY_EVALUATOR, sc.RAG_QUALITY_STATUS, sc.RAG_LATENCY_CATEGORY,
    sc.RAG_ALERT_FIRED, sc.RAG_ALERT_NAMES, sc.GEN_AI_USAGE_COST, sc.RAG_QUALITY_NOT_JUDGED, sc.RAG_QUALITY_ESCALATED,
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


_ONE_BYTE = [bytes((i,)) for i in range(128)]


def _varint(n: int) -> bytes:
    if n < 128:
        return _ONE_BYTE[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """One length-delimited field: tag, length, payload."""
    return tag + _varint(len(payload)) + payload


_DOUBLE = struct.Struct("<d")
_FIXED64 = struct.Struct("<Q")
# wire tags (field number << 3 | wire type) of the fields written here
_ANY_STRING, _ANY_BOOL, _ANY_INT, _ANY_DOUBLE, _ANY_ARRAY = b"\x0a", b"\x10", b"\x18", b"\x21", b"\x2a"
_KV_KEY, _KV_VALUE, _ARRAY_VALUES = b"\x0a", b"\x12", b"\x0a"
_SPAN_ATTRIBUTE, _SPAN_EVENT = b"\x4a", b"\x5a"
_EVENT_TIME, _EVENT_NAME, _EVENT_ATTRIBUTE = b"\x09", b"\x12", b"\x1a"
_EVALUATION_NAME = _field(_EVENT_NAME, sc.GEN_AI_EVALUATION_RESULT_EVENT.encode())


def value_bytes(v: Any) -> bytes:
    """Wire form of ``any_value(v)`` (same types, same conversions as :func:`fill`)."""
    if isinstance(v, str):
        return _field(_ANY_STRING, v.encode())
    if isinstance(v, bool):
        return _ANY_BOOL + (b"\x01" if v else b"\x00")
    if isinstance(v, int):
        if not -(1 << 63) <= v < 1 << 63:
            raise ValueError(f"{v} does not fit an int64 attribute")
        return _ANY_INT + _varint(v & 0xFFFF_FFFF_FFFF_FFFF)
    if isinstance(v, float):
        return _ANY_DOUBLE + _DOUBLE.pack(v)
    if isinstance(v, (list, tuple)):  # an empty one stays an empty AnyValue, as fill() leaves it
        return _field(_ANY_ARRAY, b"".join(_field(_ARRAY_VALUES, value_bytes(x)) for x in v)) if v else b""
    return _field(_ANY_STRING, str(v).encode())


def key_value_bytes(key: str, v: Any) -> bytes:
    """Wire form of ``KeyValue(key=key, value=any_value(v))``."""
    return _field(_KV_KEY, key.encode()) + _field(_KV_VALUE, value_bytes(v))


_FIELDS: dict[tuple[bytes, str, Any], bytes] = {}  # (tag, key, short str or bool) -> encoded field
_DOUBLE_HEADS: dict[tuple[bytes, str], bytes] = {}  # (tag, key) -> a double field's bytes before its 8 value bytes


def _kv_field(tag: bytes, key: str, v: Any) -> bytes:
    """``KeyValue(key, v)`` as field ``tag``; fields seen before come from a cache (encoding in Python is slow)."""
    if type(v) is float:
        head = _DOUBLE_HEADS.get((tag, key))
        if head is None:
            head = _DOUBLE_HEADS[(tag, key)] = _field(tag, key_value_bytes(key, 0.0))[:-8]
        return head + _DOUBLE.pack(v)
    if (type(v) is str and len(v) <= 256) or type(v) is bool:  # scorers' explanations repeat too
        cached = _FIELDS.get((tag, key, v))
        if cached is None:
            cached = _field(tag, key_value_bytes(key, v))
            if len(_FIELDS) < 4096:  # bounded: values come from scorers and config
                _FIELDS[(tag, key, v)] = cached
        return cached
    return _field(tag, key_value_bytes(key, v))


_SPAN_DOUBLE_HEADS: dict[str, bytes] = {}  # key -> a span attribute double's bytes before its 8 value bytes


def attributes_bytes(attrs: dict[str, Any]) -> bytes:
    """Wire form of ``attrs`` as Span attributes, to append with ``span.MergeFromString``."""
    out = []
    heads, fields, pack = _SPAN_DOUBLE_HEADS, _FIELDS, _DOUBLE.pack
    for k, v in attrs.items():  # _kv_field's two cached cases inlined: a call per attribute costs as much as them
        if type(v) is float and (head := heads.get(k)) is not None:
            out += (head, pack(v))
        elif (cached := fields.get((_SPAN_ATTRIBUTE, k, v)) if type(v) is str or type(v) is bool else None):
            out.append(cached)
        else:
            out.append(field := _kv_field(_SPAN_ATTRIBUTE, k, v))
            if type(v) is float and len(heads) < 4096:  # bounded: keys come from scorers (axes) and config
                heads[k] = field[:-8]
    return b"".join(out)


def _drop_keys(span: Span, keys: KeysView[str], present: Collection[str] | None) -> None:
    """Delete the attributes of ``span`` named in ``keys`` (none to look for when ``present`` shows no clash)."""
    if present is None or not keys.isdisjoint(present):
        kvs = span.attributes
        for i in range(len(kvs) - 1, -1, -1):
            if kvs[i].key in keys:
                del kvs[i]


def set_attributes(span: Span, attrs: dict[str, Any], present: Collection[str] | None = None) -> None:
    """Set ``attrs`` on ``span``, replacing any value already there under the same key.

    ``present``: the span's keys when the caller knows them, to skip re-reading them when none clash.
    """
    if not attrs:
        return
    _drop_keys(span, attrs.keys(), present)
    span.MergeFromString(attributes_bytes(attrs))


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
            if quality.not_judged:
                out[sc.RAG_QUALITY_NOT_JUDGED] = sorted(quality.not_judged)
            if quality.escalated:
                out[sc.RAG_QUALITY_ESCALATED] = list(quality.escalated)
    if record.alerts:
        out[sc.RAG_ALERT_FIRED] = True
        out[sc.RAG_ALERT_NAMES] = list(record.alerts)
    return out


def explanation(s: AxisScore, with_evidence: bool) -> str:
    """What ``gen_ai.evaluation.explanation`` says: the scorer's explanation, plus the evidence it quotes from the
    question, answer and sources only when that content leaves with the trace too."""
    if with_evidence and s.evidence:
        return f"{s.explanation}; {s.evidence}" if s.explanation else s.evidence
    return s.explanation


_EVENT_PARTS: dict[tuple[str, str, str, bool], tuple[bytes, bytes, bytes]] = {}  # see _event_parts


def _event_parts(axis: str, label: str, why: str, scored: bool) -> tuple[bytes, bytes, bytes]:
    """One evaluation event's wire bytes around its two numbers: ``pre + time + mid (+ score) + post``.

    Both numbers are fixed 8-byte fields, so the event's length, and every other byte, depends only on
    (axis, label, explanation): cached, an event costs two packs and a join instead of encoding 3-4 attributes."""
    key = (axis, label, why, scored)
    parts = _EVENT_PARTS.get(key)
    if parts is not None:
        return parts
    mid = _EVALUATION_NAME + _kv_field(_EVENT_ATTRIBUTE, sc.GEN_AI_EVALUATION_NAME, axis)
    if scored:  # the score attribute's bytes before its 8 value bytes
        mid += _kv_field(_EVENT_ATTRIBUTE, sc.GEN_AI_EVALUATION_SCORE_VALUE, 0.0)[:-8]
    post = b"".join([_kv_field(_EVENT_ATTRIBUTE, k, v) for k, v, always in (
        (sc.GEN_AI_EVALUATION_SCORE_LABEL, label, False), (sc.GEN_AI_EVALUATION_EXPLANATION, why, not scored))
        if v or always])  # a not-judged axis always says why, even in an empty string (as _evaluations lists it)
    size = len(_EVENT_TIME) + 8 + len(mid) + (8 if scored else 0) + len(post)
    parts = (_SPAN_EVENT + _varint(size) + _EVENT_TIME, mid, post)
    if len(_EVENT_PARTS) < 4096 and len(why) <= 256:  # bounded: explanations come from scorers
        _EVENT_PARTS[key] = parts
    return parts


def evaluation_events_bytes(end_time_unix_nano: int, quality: QualityResult, with_evidence: bool = False) -> bytes:
    """Wire form of one ``gen_ai.evaluation.result`` span event per axis (scored or not judged), timed at
    ``end_time_unix_nano``; the same attributes as :func:`_evaluations` lists, in its order."""
    if quality.status != "scored":
        return b""
    when = _FIXED64.pack(end_time_unix_nano)
    pack, cached = _DOUBLE.pack, _EVENT_PARTS.get
    out = []
    for axis, s in quality.axes.items():
        why = explanation(s, True) if with_evidence and s.evidence else s.explanation  # explanation(), inlined
        pre, mid, post = cached((axis, s.label, why, True)) or _event_parts(axis, s.label, why, True)
        out += (pre, when, mid, pack(float(s.score)), post)
    for axis, why in sorted(quality.not_judged.items()):
        pre, mid, post = _event_parts(axis, sc.EVALUATION_LABEL_NOT_JUDGED, why, False)
        out += (pre, when, mid, post)
    return b"".join(out)


def _evaluations(quality: QualityResult, with_evidence: bool) -> list[list[tuple[str, Any]]]:
    """One attribute list per ``gen_ai.evaluation.result``: each scored axis, then each axis whose backend
    abstained (label ``not_judged``, no score, the reason as explanation: a fixed, content-free text), so a
    reader sees that the axis was looked at and why it has no score rather than a silent gap."""
    out = [_evaluation_attributes(axis, s, with_evidence) for axis, s in quality.axes.items()]
    for axis, why in sorted(quality.not_judged.items()):
        out.append([(sc.GEN_AI_EVALUATION_NAME, axis),
                    (sc.GEN_AI_EVALUATION_SCORE_LABEL, sc.EVALUATION_LABEL_NOT_JUDGED),
                    (sc.GEN_AI_EVALUATION_EXPLANATION, why)])
    return out


def _evaluation_attributes(axis: str, s: AxisScore, with_evidence: bool) -> list[tuple[str, Any]]:
    """The attributes of one ``gen_ai.evaluation.result``, span event or log record alike."""
    out: list[tuple[str, Any]] = [(sc.GEN_AI_EVALUATION_NAME, axis), (sc.GEN_AI_EVALUATION_SCORE_VALUE, float(s.score))]
    if s.label:
        out.append((sc.GEN_AI_EVALUATION_SCORE_LABEL, s.label))
    why = explanation(s, with_evidence)
    if why:
        out.append((sc.GEN_AI_EVALUATION_EXPLANATION, why))
    return out


def evaluation_log_records(root: Span, quality: QualityResult | None, observed_unix_nano: int,
                           with_evidence: bool = False) -> list[LogRecord]:
    """The evaluation results as log-based events: one ``gen_ai.evaluation.result`` log record per axis (scored
    or not judged), tied to the root span by its trace and span id (how the GenAI conventions define the event,
    and the form OpenTelemetry recommends since deprecating the span-event API, OTEP 4430); the same attributes
    as the span events, timed at the root's end."""
    if quality is None or quality.status != "scored":
        return []
    out = []
    for attrs in _evaluations(quality, with_evidence):
        rec = LogRecord(
            time_unix_nano=root.end_time_unix_nano, observed_time_unix_nano=observed_unix_nano,
            severity_number=SEVERITY_NUMBER_INFO, severity_text="INFO", event_name=sc.GEN_AI_EVALUATION_RESULT_EVENT,
            trace_id=root.trace_id, span_id=root.span_id, flags=root.flags & 0xFF,  # W3C trace flags only
        )
        for key, value in attrs:
            kv = rec.attributes.add()
            kv.key = key
            fill(kv.value, value)
        out.append(rec)
    return out


def enrich_root(
    root: Span,
    record: QueryRecord,
    quality: QualityResult | None,
    *,
    cost_missing: bool,
    grade_thresholds: dict[str, float],
    present: Collection[str] | None = None,
    with_evidence: bool = False,
    span_events: bool = True,
) -> None:
    """Set the enrichment attributes and evaluation events on the root span (one merge).

    ``with_evidence``: the trace keeps its content, so the events may quote it (see :func:`explanation`).
    ``span_events``: False when the evaluation results leave as log records instead."""
    attrs = root_attributes(record, quality, cost_missing, grade_thresholds)
    if attrs:
        _drop_keys(root, attrs.keys(), present)
    blob = attributes_bytes(attrs)
    if span_events and quality is not None and quality.status == "scored" and (quality.axes or quality.not_judged):
        blob += evaluation_events_bytes(root.end_time_unix_nano, quality, with_evidence)
    if blob:
        root.MergeFromString(blob)


def has_cost(span: Span) -> bool:
    return any(kv.key == sc.GEN_AI_USAGE_COST for kv in span.attributes)


def is_content_key(key: str) -> bool:
    if key in _CONTENT_KEYS or key.startswith(_CONTENT_PREFIXES):
        return True
    return key.startswith(sc.OI_RETRIEVAL_DOCUMENTS_PREFIX) and key.endswith(sc.CONTENT_DOCUMENT_SUFFIXES)


_KEEP, _CONTENT, _DOCUMENTS = "keep", "content", "documents"
_KEY_KINDS: dict[str, str] = {}  # key -> kind, remembered: spans repeat the same few dozen keys


def _key_kind(key: str) -> str:
    kind = _DOCUMENTS if key in _DOCUMENT_JSON_KEYS else _CONTENT if is_content_key(key) else _KEEP
    if len(_KEY_KINDS) < 4096:  # bounded: keys come from the wire
        _KEY_KINDS[key] = kind
    return kind


def _strip_documents(raw: str, docs: Any = None) -> str | None:
    """The documents JSON without content fields (ids, scores, source kept); None if unreadable
    (then the caller deletes the whole attribute: content that cannot be read is not kept).

    ``docs``: ``raw`` already parsed (the normalizer did), to skip a second ``json.loads``."""
    try:
        if docs is None:
            docs = json.loads(raw)
        if not isinstance(docs, list):
            return None
        kept = [{k: v for k, v in d.items() if k not in _DOC_CONTENT_FIELDS} for d in docs if isinstance(d, dict)]
        return _encode_compact(kept)
    except (ValueError, RecursionError):  # e.g. a value nested 100,000 deep
        return None


Content = tuple[tuple[str, int, str], ...]  # (key, position, kind) of a span's content attributes


def content_positions(index: dict[str, int]) -> Content:
    """The content attributes among ``index`` (key -> position), last position first: the order to delete in."""
    kinds = _KEY_KINDS
    out = [(key, i, kind) for key, i in index.items() if (kind := kinds.get(key) or _key_kind(key)) is not _KEEP]
    out.sort(key=lambda c: c[1], reverse=True)
    return tuple(out)


def strip_span(span: Span, index: dict[str, int] | None = None, parsed: dict[str, Any] | None = None,
               content: Content | None = None) -> int:
    """Remove every content attribute and content event of ``span``; return how many were removed.

    ``index`` (key -> position, as the normalizer built it) saves reading the keys again, and
    ``content`` (:func:`content_positions` of it, which the normalizer keeps per key list) saves
    classifying them; ``parsed`` (key -> JSON value the normalizer already decoded) saves decoding it again.
    """
    if content is None:
        content = content_positions({kv.key: i for i, kv in enumerate(span.attributes)} if index is None else index)
    return (_strip_attributes(span, parsed, content) if content else 0) + _strip_events(span)


def _strip_attributes(span: Span, parsed: dict[str, Any] | None, content: Content) -> int:
    kvs = span.attributes
    for key, i, kind in content:  # last position first: a deletion leaves the positions still to visit valid
        if kind is _DOCUMENTS:
            v = kvs[i].value
            docs = parsed.get(key) if parsed else None
            stripped = _strip_documents(v.string_value if docs is None else "", docs)  # parsed: no text copy read
            if stripped is not None:
                v.string_value = stripped
                continue
        del kvs[i]
    return len(content)


def _strip_events(span: Span) -> int:
    events = span.events
    if not events:
        return 0
    removed = 0
    for i in range(len(events) - 1, -1, -1):
        if events[i].name in _CONTENT_EVENTS:
            del events[i]
            removed += 1
    return removed


def strip_content(spans: Iterable[Span | tuple[Span, dict[str, int], dict[str, Any] | None, Content | None]]) -> int:
    """Strip every span of a trace (content sits on the root, retrieval and chat spans alike)."""
    n = 0
    for s in spans:
        if type(s) is tuple and s[3] is not None:  # the normalizer's (span, index, parsed, content): one call less
            span, _, parsed, content = s
            if content:
                n += _strip_attributes(span, parsed, content)
            if span.events:  # most spans have none: no call
                n += _strip_events(span)
        else:
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


def strip_log_record(rec: LogRecord) -> int:
    """Remove the content of one log record: its content attributes (document lists keep ids and scores),
    and the whole body of a GenAI content event (``gen_ai.user.message``, ``gen_ai.choice``,
    ``gen_ai.client.inference.operation.details``...: the body is the message).  Returns how many went."""
    kvs = rec.attributes
    kinds = _KEY_KINDS
    name = getattr(rec, "event_name", "")  # a field since OTLP 1.5; older senders put it in an attribute
    found = []
    for i, kv in enumerate(kvs):  # iterating beats indexing the repeated field
        key = kv.key
        if (kind := kinds.get(key) or _key_kind(key)) is not _KEEP:
            found.append((i, kind))
        elif not name and key == sc.EVENT_NAME:
            name = kv.value.string_value
    removed = 0
    for i, kind in reversed(found):  # last first: a deletion leaves the positions still to visit valid
        if kind is _DOCUMENTS and (stripped := _strip_documents(kvs[i].value.string_value)) is not None:
            kvs[i].value.string_value = stripped
            continue
        del kvs[i]
        removed += 1
    if name in _CONTENT_EVENTS and rec.HasField("body"):
        rec.ClearField("body")
        removed += 1
    return removed


def strip_logs(scope_logs: Iterable[Any]) -> int:
    """Strip every log record of a resource's scopes (see :func:`strip_log_record`)."""
    return sum(strip_log_record(rec) for sl in scope_logs for rec in sl.log_records)
