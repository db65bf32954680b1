"""One assembled trace -> one :class:`~rag_otel.records.QueryRecord`, whatever instrumented it.

Users keep the instrumentation they have: our own spans, the official GenAI instrumentations
(current and deprecated names), OpenInference and OpenLLMetry all normalize to the same record.
A trace with no LLM, embeddings or retrieval span is not a RAG query: no record (it is passed
through untouched).

Fast path: each span's attributes are indexed once as ``{key: AnyValue}`` and only the values we
need are decoded; nothing is converted to dicts wholesale.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from rag_otel import semconv as sc
from rag_otel.pricing import PriceTable
from rag_otel.processor import query_split
from rag_otel.processor.assembly import Origin, Trace
from rag_otel.processor.enrich import Content, content_positions
from rag_otel.processor.passthrough import PASS_OVER, is_asgi_message, scope_rule
from rag_otel.processor.query_unit import is_ingestion, passages_from_prompt, question_from_prompt
from rag_otel.records import IngestionRecord, QueryRecord, Source, SpanSummary

logger = logging.getLogger("rag_otel.processor")
_SPLIT_FAILURES = [0]  # traces query_split could not read (each kept as one record)
_NS = 1e-9
_LLM_OPS = frozenset((sc.OP_CHAT, sc.OP_TEXT_COMPLETION, "generate_content", "completion"))
_CONTENT_DOC_KEYS = ("content", "text", "page_content")
_USER_KEYS = (sc.USER_ID, sc.USER_HASH, sc.TL_ASSOCIATION_PREFIX + "user_id")
_SESSION_KEYS = (sc.SESSION_ID, sc.TL_ASSOCIATION_PREFIX + "session_id")
_CONVERSATION_KEYS = (sc.GEN_AI_CONVERSATION_ID, sc.TL_ASSOCIATION_PREFIX + "conversation_id")
_PEOPLE_KEYS = frozenset((*_USER_KEYS, *_SESSION_KEYS, *_CONVERSATION_KEYS))
_PEOPLE_GROUPS = (_USER_KEYS, _SESSION_KEYS, _CONVERSATION_KEYS)
_ROOT_KEYS = ((sc.RAG_QUERY_TEXT,), (sc.RAG_ANSWER_TEXT,), (sc.RAG_CONTENT_CAPTURE,), (sc.RAG_FEATURES,),
              (sc.RAG_QUERY_CATEGORY,), (sc.RAG_QUERY_TOPIC,))


@dataclass(slots=True)
class ModelUsage:
    """Tokens and cost of one model call, for per-model metrics (a record keeps only totals)."""

    model: str
    operation: str  # chat | embeddings
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None


@dataclass(slots=True)
class Normalized:
    """What a trace was: its record, its root span (to enrich), and per-call usage."""

    record: QueryRecord
    root: Span
    root_origin: Origin
    usage: list[ModelUsage] = field(default_factory=list)
    capture: str | None = None  # the root's rag.content.capture, when set
    # each span with its key -> position index, the JSON values already parsed and its content
    # attributes' positions (for stripping)
    indexes: list[tuple[Span, dict[str, int], dict[str, Any] | None, Content]] = field(default_factory=list)
    root_keys: frozenset[str] = frozenset()  # the root's attribute keys as received
    ingestion: IngestionRecord | None = None  # set when the trace was not a question (see query_unit)
    # the record is about a model call's span (one question of several with no span of its own): that span's
    # gen_ai.usage.cost is its call's, so the question's cost is not written there
    root_is_call: bool = False


def value(v: AnyValue) -> Any:
    """Plain Python value of one ``AnyValue`` (arrays and kv lists included)."""
    s = v.string_value  # most values are strings: one read instead of WhichOneof + getattr
    if s:
        return s
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind)


# A span's attributes are read as (kvs, index): the repeated KeyValue field and {key: position},
# built once per span.  Each protobuf access from Python costs a wrapper object, so every key is
# read once, and a value only when needed; the index also lets content stripping delete by position.
Index = dict[str, int]


def _get(kvs: Any, index: Index, keys: tuple[str, ...]) -> Any:
    """Decoded value of the first of ``keys`` present and not empty."""
    for k in keys:
        i = index.get(k)
        if i is not None:
            out = value(kvs[i].value)
            if out is not None and out != "":
                return out
    return None


def _str(kvs: Any, index: Index, *keys: str) -> str | None:
    v = _get(kvs, index, keys)
    return None if v is None else str(v)


def _float(kvs: Any, index: Index, *keys: str) -> float | None:
    v = _get(kvs, index, keys)
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def _items(kvs: Any, index: Index, prefix: str) -> list[tuple[str, Any]]:
    """(key, decoded value) of every key starting with ``prefix``."""
    return [(k, value(kvs[i].value)) for k, i in index.items() if k.startswith(prefix)]


class _Shape:
    """What a span's attribute keys, in order, tell before any value is read.  Worked out once per
    key list and shared (read only): an instrumentation writes the same few key lists over and over."""

    __slots__ = ("content", "index", "keys", "people", "plain", "root", "usage")

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.index: Index = {k: i for i, k in enumerate(keys)}
        self.keys = frozenset(self.index)
        self.plain = self.keys.isdisjoint(_CLASSIFY_KEYS)  # no key can make it more than "other"
        self.people = _groups(self.index, _PEOPLE_GROUPS) if not self.keys.isdisjoint(_PEOPLE_KEYS) else None
        self.content = content_positions(self.index)
        # positions of the present keys of each _USAGE_KEYS group, in the group's order of preference
        self.usage = _groups(self.index, _USAGE_KEYS)
        self.root = _groups(self.index, _ROOT_KEYS)  # read when the span is a trace's root


def _groups(index: Index, groups: tuple[tuple[str, ...], ...]) -> tuple[tuple[int, ...], ...]:
    """Positions of the present keys of each group, in the group's order of preference."""
    return tuple(tuple(index[k] for k in group if k in index) for group in groups)


_SHAPES: dict[tuple[str, ...], _Shape] = {}


_KEY = attrgetter("key")


def _shape(keys: tuple[str, ...]) -> _Shape:
    """The shape of a key list not met before (remembered, up to a bound: keys come from the wire)."""
    shape = _Shape(keys)
    if len(_SHAPES) < 1024 and len(keys) <= 64:
        _SHAPES[keys] = shape
    return shape


class _SpanInfo:
    """One span as the normalizer sees it; plain slots (built 6 times per trace, so kept cheap)."""

    __slots__ = ("dialect", "index", "kvs", "name", "origin", "parsed", "role", "shape", "span", "start")

    def __init__(self, span: Span, origin: Origin, kvs: list[KeyValue] | None, shape: _Shape, role: str, dialect: str,
                 name: str, start: int) -> None:
        self.span = span
        self.origin = origin
        self.kvs = kvs  # None: a span of a plumbing scope, passed over (see passthrough)
        self.shape = shape
        self.index = shape.index
        self.role = role  # llm | embedding | retrieval | rerank | other
        self.dialect = dialect  # rag_otel | genai | openinference | openllmetry
        self.name = name
        self.start = start
        self.parsed: dict[str, Any] | None = None  # JSON values decoded here, so stripping need not again


_OI_ROLES = {sc.OI_KIND_LLM: "llm", sc.OI_KIND_EMBEDDING: "embedding", sc.OI_KIND_RETRIEVER: "retrieval",
             sc.OI_KIND_RERANKER: "rerank"}
# any of these keys makes a span more than "other" (or names its dialect); without them only its name can
_CLASSIFY_KEYS = frozenset((
    sc.OI_SPAN_KIND, sc.TL_LLM_REQUEST_TYPE, sc.TL_SPAN_KIND, sc.GEN_AI_OPERATION_NAME,
    sc.GEN_AI_RETRIEVAL_DOCUMENTS, sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_RESPONSE_MODEL,
))


def _classify(name: str, kvs: Any, shape: _Shape) -> tuple[str, str]:
    """(role, dialect): what the span did (llm, embedding, retrieval, rerank, other), who wrote it."""
    if shape.plain:  # most spans of a trace (HTTP, rerank, app code)
        return ("rerank" if name == sc.OP_RERANK else "other"), "genai"
    raw = shape.index
    if sc.OI_SPAN_KIND in raw:
        return _OI_ROLES.get(str(value(kvs[raw[sc.OI_SPAN_KIND]].value)).upper(), "other"), "openinference"
    tl = sc.TL_LLM_REQUEST_TYPE in raw
    dialect = "openllmetry" if tl or sc.TL_SPAN_KIND in raw else "genai"
    i = raw.get(sc.GEN_AI_OPERATION_NAME)
    if i is None and tl:
        i = raw[sc.TL_LLM_REQUEST_TYPE]
    op = None if i is None else value(kvs[i].value)
    if op in _LLM_OPS:
        return "llm", dialect
    if op in (sc.OP_EMBEDDINGS, "embedding"):
        return "embedding", dialect
    if op == sc.OP_RETRIEVAL or sc.GEN_AI_RETRIEVAL_DOCUMENTS in raw:
        return "retrieval", dialect
    if op == sc.OP_RERANK or name == sc.OP_RERANK:
        return "rerank", dialect
    if op is None and (sc.GEN_AI_REQUEST_MODEL in raw or sc.GEN_AI_RESPONSE_MODEL in raw):
        return "llm", dialect  # an older instrumentation without gen_ai.operation.name
    return "other", dialect


def _messages_text(raw: Any, role: str | None) -> str | None:
    """Text of the last message (with ``role``, if given) of a GenAI messages JSON attribute."""
    msgs = raw
    if isinstance(raw, str):
        try:
            msgs = json.loads(raw)
        except ValueError:
            return raw if role != "user" else None
    if not isinstance(msgs, list):
        return None
    for m in reversed(msgs):
        if not isinstance(m, dict) or (role is not None and m.get("role") != role):
            continue
        if isinstance(m.get("content"), str):
            return m["content"]
        texts = [p.get("content") or p.get("text") for p in m.get("parts") or [] if isinstance(p, dict)]
        texts = [t for t in texts if isinstance(t, str)]
        if texts:
            return "\n".join(texts)
    return None


def _indexed_messages(info: _SpanInfo, prefix: str, role_suffix: str, content_suffix: str) -> list[tuple[str, str]]:
    """(role, content) pairs from ``prefix.N.<role_suffix>`` / ``prefix.N.<content_suffix>`` keys, in N order."""
    found: dict[int, dict[str, str]] = {}
    for key, v in _items(info.kvs, info.index, prefix):
        head, _, rest = key[len(prefix):].partition(".")
        if not head.isdigit():
            continue
        slot = found.setdefault(int(head), {})
        if "." + rest == role_suffix:
            slot["role"] = str(v)
        elif "." + rest == content_suffix:
            slot["content"] = str(v)
    return [(m.get("role", ""), m["content"]) for _, m in sorted(found.items()) if "content" in m]


def _prompt_of_llm(info: _SpanInfo) -> tuple[str | None, str | None]:
    """(last user turn, system instructions) of a chat span's captured input."""
    if (raw := _get(info.kvs, info.index, (sc.GEN_AI_INPUT_MESSAGES,))) is not None:
        system = _get(info.kvs, info.index, (sc.GEN_AI_SYSTEM_INSTRUCTIONS,))
        if isinstance(system, str):
            try:
                parts = json.loads(system)
            except ValueError:
                parts = system
            system = "\n".join(p.get("content") or "" for p in parts if isinstance(p, dict)) \
                if isinstance(parts, list) else str(parts)
        return _messages_text(raw, "user"), system or _messages_text(raw, "system")
    for prefix, rsuf, csuf in (
        (sc.OI_LLM_INPUT_MESSAGES_PREFIX, sc.OI_MESSAGE_ROLE_SUFFIX, sc.OI_MESSAGE_CONTENT_SUFFIX),
        (sc.TL_PROMPT_PREFIX, sc.TL_ROLE_SUFFIX, sc.TL_CONTENT_SUFFIX),
    ):
        msgs = _indexed_messages(info, prefix, rsuf, csuf)
        users = [c for r, c in msgs if r == "user"]
        if users:
            return users[-1], "\n".join(c for r, c in msgs if r in ("system", "developer")) or None
    return None, None


def _embedded_text(info: _SpanInfo) -> str | None:
    """The text of an embeddings call with exactly one input (OpenInference records it), else None."""
    texts = [v for k, v in _items(info.kvs, info.index, sc.OI_EMBEDDING_EMBEDDINGS_PREFIX)
             if k.endswith(".embedding.text") and isinstance(v, str)]
    return texts[0] if len(texts) == 1 else None


def _answer_from_llm(info: _SpanInfo) -> str | None:
    if (raw := _get(info.kvs, info.index, (sc.GEN_AI_OUTPUT_MESSAGES,))) is not None:
        return _messages_text(raw, None)
    for prefix, rsuf, csuf in (
        (sc.OI_LLM_OUTPUT_MESSAGES_PREFIX, sc.OI_MESSAGE_ROLE_SUFFIX, sc.OI_MESSAGE_CONTENT_SUFFIX),
        (sc.TL_COMPLETION_PREFIX, sc.TL_ROLE_SUFFIX, sc.TL_CONTENT_SUFFIX),
    ):
        msgs = _indexed_messages(info, prefix, rsuf, csuf)
        if msgs:
            return msgs[0][1]
    if info.dialect == "openinference":
        return _str(info.kvs, info.index, sc.OI_OUTPUT_VALUE)
    return None


def _sources(info: _SpanInfo) -> list[Source]:
    kvs, index = info.kvs, info.index
    raw = _get(kvs, index, (sc.GEN_AI_RETRIEVAL_DOCUMENTS,))
    if raw is not None:
        docs = raw
        if isinstance(raw, str):
            try:
                docs = json.loads(raw)
            except ValueError:
                docs = []
            else:
                info.parsed = {sc.GEN_AI_RETRIEVAL_DOCUMENTS: docs}
        out = []
        for i, d in enumerate(docs if isinstance(docs, list) else []):
            if not isinstance(d, dict):
                continue
            content = None
            for k in _CONTENT_DOC_KEYS:
                if isinstance(c := d.get(k), str):
                    content = c
                    break
            score = d.get("score")
            out.append(Source(str(d.get("id", i)), float(score) if isinstance(score, (int, float)) else None, content))
        return out
    found: dict[int, dict[str, Any]] = {}
    prefix = sc.OI_RETRIEVAL_DOCUMENTS_PREFIX
    for key, v in _items(kvs, index, prefix):
        head, _, rest = key[len(prefix):].partition(".")
        if head.isdigit():
            found.setdefault(int(head), {})["." + rest] = v
    out = []
    for n, d in sorted(found.items()):
        score = d.get(sc.OI_DOCUMENT_SCORE_SUFFIX)
        content = d.get(sc.OI_DOCUMENT_CONTENT_SUFFIX)
        out.append(Source(
            str(d.get(sc.OI_DOCUMENT_ID_SUFFIX, n)),
            float(score) if isinstance(score, (int, float)) else None,
            content if isinstance(content, str) else None,
        ))
    return out


_USAGE_KEYS = (  # what a model span says, each by its names in order of preference
    # the model as requested: one name per model for the store, filters and alert rules
    (sc.GEN_AI_REQUEST_MODEL, sc.OI_LLM_MODEL_NAME, sc.OI_EMBEDDING_MODEL_NAME, sc.GEN_AI_RESPONSE_MODEL),
    (sc.GEN_AI_RESPONSE_MODEL,),  # as the provider answered (a dated snapshot): a detail, and the price key
    (sc.GEN_AI_USAGE_INPUT_TOKENS, sc.GEN_AI_USAGE_PROMPT_TOKENS_DEPRECATED, sc.OI_LLM_TOKEN_COUNT_PROMPT),
    (sc.GEN_AI_USAGE_OUTPUT_TOKENS, sc.GEN_AI_USAGE_COMPLETION_TOKENS_DEPRECATED, sc.OI_LLM_TOKEN_COUNT_COMPLETION),
    (sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, sc.TL_USAGE_CACHE_READ_INPUT_TOKENS, sc.OI_LLM_TOKEN_COUNT_CACHE_READ),
    (sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, sc.OI_LLM_TOKEN_COUNT_REASONING),
    (sc.GEN_AI_USAGE_COST, sc.OI_LLM_COST_TOTAL),
    # read for LLM spans only
    (sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_SYSTEM_DEPRECATED, sc.OI_LLM_PROVIDER, sc.OI_LLM_SYSTEM),
    (sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,),
)
_MODEL_GROUPS = 7  # groups an embeddings span is read for


def _firsts(kvs: Any, groups: tuple[tuple[int, ...], ...]) -> list[Any]:
    """For each group of positions, the first decoded value that is not None or empty (else None)."""
    out = []
    for positions in groups:
        found = None
        for i in positions:
            v = value(kvs[i].value)
            if v is not None and v != "":
                found = v
                break
        out.append(found)
    return out


def _as_int(v: Any) -> int | None:
    try:
        return None if v is None else int(v)
    except (TypeError, ValueError):
        return None


def _as_float(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


class _Call:
    """What one model span says about its call."""

    __slots__ = ("cached", "priced", "provider", "reasoning", "response_model", "ttfc", "usage", "usage_seen")

    def __init__(self, usage: ModelUsage, response_model: str | None, cached: int, reasoning: int, priced: bool,
                 usage_seen: bool, provider: str | None, ttfc: float | None) -> None:
        self.usage = usage
        self.response_model = response_model
        self.cached = cached
        self.reasoning = reasoning
        self.priced = priced  # False: tokens but no price for the model
        self.usage_seen = usage_seen  # False: the span says nothing of tokens or cost
        self.provider = provider
        self.ttfc = ttfc


def _usage(info: _SpanInfo, prices: PriceTable) -> _Call:
    llm = info.role == "llm"
    groups = info.shape.usage
    got = _firsts(info.kvs, groups if llm else groups[:_MODEL_GROUPS])
    model = None if got[0] is None else str(got[0])
    response_model = None if got[1] is None else str(got[1])
    inp_raw, out_raw = _as_int(got[2]), _as_int(got[3])
    inp = inp_raw or 0
    out = out_raw or 0
    cached = _as_int(got[4]) or 0
    reasoning = _as_int(got[5]) or 0
    cost = _as_float(got[6])
    priced = True
    if cost is None and (inp or out):
        price = prices.lookup(response_model) or prices.lookup(model)
        cost = None if price is None else price.cost(inp, out, cached, reasoning)
        priced = cost is not None
    provider = None if not llm or got[7] is None else str(got[7])
    ttfc = _as_float(got[8]) if llm else None
    usage = ModelUsage(model or "unknown", "chat" if llm else "embeddings", inp, out, cost)
    # our SDK says when a call answered without usage (a stream without include_usage, a response never read):
    # whatever else the span carries, its cost is not the whole cost
    seen = (cost is not None or inp_raw is not None or out_raw is not None) and (
        sc.RAG_USAGE_MISSING not in info.index or _get(info.kvs, info.index, (sc.RAG_USAGE_MISSING,)) is not True)
    return _Call(usage, response_model, cached, reasoning, priced, seen, provider, ttfc)


def _features(v: Any) -> list[str]:
    if isinstance(v, list):
        return [str(x) for x in v]
    if isinstance(v, str):
        return [p.strip() for p in v.split(",") if p.strip()]
    return []


def _pick_root(infos: Sequence[_SpanInfo]) -> _SpanInfo:
    """Our ``rag.query`` span, else the topmost span (no parent in this trace), earliest first."""
    for i in infos:
        if i.name == sc.SPAN_RAG_QUERY:
            return i
    ids = {i.span.span_id for i in infos}
    tops = [i for i in infos if not i.span.parent_span_id or i.span.parent_span_id not in ids]
    return min(tops or infos, key=lambda i: (i.span.start_time_unix_nano, -i.span.end_time_unix_nano))


def _service(origin: Origin) -> str:
    """The origin's ``service.name``, read once per origin (all its spans share it)."""
    if origin.service is None:
        origin.service = next((str(value(kv.value)) for kv in origin.resource.attributes
                               if kv.key == sc.SERVICE_NAME), "unknown")
    return origin.service


_START = attrgetter("start")
_SERVER = Span.SPAN_KIND_SERVER
_UNREAD = _Shape(())  # the shape of a span whose attributes were not read (no key can matter)


def _read(info: _SpanInfo) -> None:
    """Read the attributes of a span passed over at first (it turned out to be the root)."""
    kvs = info.kvs = list(info.span.attributes)
    keys = tuple(map(_KEY, kvs))
    shape = info.shape = _SHAPES.get(keys) or _shape(keys)
    info.index = shape.index
    if not shape.plain:
        info.role, info.dialect = _classify(info.name, kvs, shape)


def normalize(trace: Trace, prices: PriceTable) -> Normalized | None:
    """The query record of ``trace`` (its first, when it holds several questions), or None when it is not
    a RAG query (no LLM/retrieval span)."""
    units = normalize_units(trace, prices)
    return units[0] if units else None


def normalize_units(trace: Trace, prices: PriceTable) -> list[Normalized]:
    """One record per question the trace holds (usually one; see query_split), or ``[]`` when it is not a
    RAG query.  Every read span's content positions are in exactly one of the results' ``indexes``."""
    infos: list[_SpanInfo] = []
    has_rag = False
    shapes = _SHAPES
    for origin, span in trace.spans:
        plumbing = origin.plumbing
        if plumbing is None:
            plumbing = origin.plumbing = scope_rule(origin.scope.name)
        # HTTP client, database, chunk sends: their attributes are not read
        if plumbing and span.kind != _SERVER and (plumbing == PASS_OVER or is_asgi_message(span.name)):
            infos.append(_SpanInfo(span, origin, None, _UNREAD, "other", "genai", span.name, span.start_time_unix_nano))
            continue
        kvs = list(span.attributes)  # the wrappers kept: reading a value later skips re-creating one
        keys = tuple(map(_KEY, kvs))
        shape = shapes.get(keys) or _shape(keys)
        name = span.name
        if shape.plain:  # most spans of a trace (HTTP, rerank, app code): only the name can tell
            role, dialect = ("rerank" if name == sc.OP_RERANK else "other"), "genai"
        else:
            role, dialect = _classify(name, kvs, shape)
        if role != "other":
            has_rag = True
        infos.append(_SpanInfo(span, origin, kvs, shape, role, dialect, name, span.start_time_unix_nano))
    if not has_rag:
        return []
    infos.sort(key=_START)
    root = _pick_root(infos)
    if root.kvs is None:  # a passed-over span is the topmost one: the root is always read
        _read(root)
    prompts: dict[int, tuple[str | None, str | None]] = {}  # each chat input parsed once

    def prompt(i: _SpanInfo) -> tuple[str | None, str | None]:
        if (got := prompts.get(id(i))) is None:
            got = prompts[id(i)] = _prompt_of_llm(i)
        return got

    units = _split(infos, root, prompt)
    if not units:
        return [_record(trace, infos, root, root, prices, prompt, unit=False)]
    out = []
    for unit in units:
        members = [infos[m] for m in unit.members]
        unit_root = infos[unit.root]
        out.append(_record(trace, members, unit_root, root, prices, prompt, unit=True, adopted=unit.adopted))
    # spans in no unit (the server span, HTTP plumbing) are stripped like the rest
    held = {m for unit in units for m in unit.members}
    out[0].indexes.extend((i.span, i.index, i.parsed, i.shape.content) for n, i in enumerate(infos)
                          if n not in held and i.kvs is not None)
    return out


def _split(infos: list[_SpanInfo], root: _SpanInfo, prompt: Callable[[_SpanInfo], tuple[str | None, str | None]]
           ) -> list[query_split.Unit]:
    """The trace's question units (``[]``: it is one question), see query_split."""
    if sum(1 for i in infos if i.role == "llm") < 2 and sum(1 for i in infos if i.name == sc.SPAN_RAG_QUERY) < 2:
        return []  # the common trace, at no cost
    nodes = [query_split.Node(i.span.span_id, i.span.parent_span_id, i.role, i.name, i.start,
                              i.span.end_time_unix_nano) for i in infos]

    def asked(m: int) -> tuple[str | None, str]:
        user, system = prompt(infos[m])
        return user, "\n".join(t for t in (system, user) if t)

    def question(m: int) -> str | None:
        user, system = prompt(infos[m])
        return question_from_prompt(user, system) if user else None

    def answered(m: int) -> str | None:
        return _answer_from_llm(infos[m])

    def searched(m: int) -> tuple[str | None, list[str]]:
        i = infos[m]
        return (_str(i.kvs, i.index, sc.GEN_AI_RETRIEVAL_QUERY_TEXT),
                [d.content for d in _sources(i) if d.content])

    try:
        return query_split.split(nodes, infos.index(root), query_split.Texts(asked, question, answered, searched),
                                 sc.SPAN_RAG_QUERY)
    except Exception:  # splitting refines the record; a trace it cannot read stays one record rather than none
        _SPLIT_FAILURES[0] += 1
        n = _SPLIT_FAILURES[0]
        if n == 10 ** (len(str(n)) - 1):  # the 1st, 10th, 100th...: a repeating bug must not flood the log
            logger.warning("rag-otel processor: could not split a trace into its questions (%d so far); kept as "
                           "one record", n, exc_info=True)
        return []


def _record(trace: Trace, infos: Sequence[_SpanInfo], root: _SpanInfo, top: _SpanInfo, prices: PriceTable,
            prompt: Callable[[_SpanInfo], tuple[str | None, str | None]], *, unit: bool,
            adopted: bool = False) -> Normalized:
    """The record of one question: ``infos`` are its spans, ``root`` the span it is about, ``top`` the
    trace's topmost span (people come from it too); ``unit``: one of several questions in the trace;
    ``adopted``: it holds model calls from outside its root (whose own cost sum then falls short)."""
    if root.kvs is None:
        _read(root)
    rkvs, rindex = root.kvs, root.index
    rspan = root.span
    ours = root.name == sc.SPAN_RAG_QUERY
    llms = [i for i in infos if i.role == "llm"]
    retrievals = [i for i in infos if i.role == "retrieval"]
    if ours:
        instrumentation = "rag_otel"
    else:
        dialects = {i.dialect for i in infos if i.role != "other"}
        instrumentation = next((d for d in ("openinference", "openllmetry", "genai") if d in dialects), "genai")

    trace_id = trace.trace_id.hex()
    rec = QueryRecord(
        trace_id=trace_id,
        root_span_id=rspan.span_id.hex(),
        query_id=f"{trace_id}-{rspan.span_id.hex()}" if unit else trace_id,
        # one question of several: from its first span's start to its last span's end (its root may be its answer)
        start_time=(min(i.start for i in infos) if unit else rspan.start_time_unix_nano) * _NS,
        end_time=(max(i.span.end_time_unix_nano for i in infos) if unit else rspan.end_time_unix_nano) * _NS,
        service=_service(root.origin),
        span_count=len(infos),
        instrumentation=instrumentation,
        complete=trace.root_seen,
    )

    # People: the root first, then any span that has them (OpenInference puts them on every span).
    for i in [root, top, *infos] if unit else [root, *infos]:
        if i.kvs is None or i.shape.people is None:
            continue
        user, session, conversation = _firsts(i.kvs, i.shape.people)
        rec.user_id = rec.user_id or (None if user is None else str(user))
        rec.session_id = rec.session_id or (None if session is None else str(session))
        rec.conversation_id = rec.conversation_id or (None if conversation is None else str(conversation))
        if rec.user_id and rec.session_id and rec.conversation_id:
            break

    # Sources: each retrieved document once (a retriever nested in another is the same retrieval).
    rec.sources = _retrieved(infos, retrievals)
    # ids only (raw FAISS) or no retrieval span at all: the text is in the prompt
    if llms and not (rec.sources and all(x.content for x in rec.sources)):
        user, system = prompt(llms[-1])
        _fill_from_prompt(rec.sources, passages_from_prompt(system, user))

    # Question and answer: the root's own attributes, then retrieval/LLM content (rules: query_unit).
    query, answer, capture, features, category, topic = _firsts(rkvs, root.shape.root)
    rec.query_text = None if query is None else str(query)
    rec.answer_text = None if answer is None else str(answer)
    if rec.query_text is None:
        rec.query_text = next(
            (q for i in retrievals if (q := _str(i.kvs, i.index, sc.GEN_AI_RETRIEVAL_QUERY_TEXT))), None)
    if rec.query_text is None and llms:
        first_llm = llms[0].start
        rec.query_text = next((q for i in infos if i.role == "embedding" and i.start <= first_llm
                               and (q := _embedded_text(i))), None)
    if rec.query_text is None and not ours:
        rec.query_text = _str(rkvs, rindex, sc.OI_INPUT_VALUE, sc.TL_ENTITY_INPUT) if root.role == "other" else None
    if rec.query_text is None:
        known = [x.content for x in rec.sources if x.content]
        rec.query_text = next((q for i in llms if (q := question_from_prompt(*prompt(i), passages=known))), None)
    if rec.answer_text is None and not ours and root.role == "other":
        rec.answer_text = _str(rkvs, rindex, sc.OI_OUTPUT_VALUE, sc.TL_ENTITY_OUTPUT)
    if rec.answer_text is None:
        rec.answer_text = next((t for i in reversed(llms) if (t := _answer_from_llm(i))), None)
    rec.query_text = _unwrap(rec.query_text, ("question", "query", "input"))
    rec.answer_text = _unwrap(rec.answer_text, ("answer", "output", "result"))

    # Models, tokens, cost.
    usage: list[ModelUsage] = []
    all_priced = True
    span_cost = 0.0
    calls = [(i, _usage(i, prices)) for i in infos if i.role in ("llm", "embedding")]
    # only a role seen twice can nest (the common chat + embeddings trace skips the walk)
    wrappers = _wrappers(infos, [i for i, c in calls if c.usage.input_tokens or c.usage.output_tokens
                                 or c.usage.cost_usd]) if len(calls) > len({i.role for i, _ in calls}) else ()
    all_seen = True
    for i, c in calls:
        if i in wrappers:  # a call below it saw the provider's real usage; counting both would double it
            continue
        u = c.usage
        usage.append(u)
        all_priced &= c.priced
        all_seen &= c.usage_seen
        span_cost += u.cost_usd or 0.0
        rec.input_tokens += u.input_tokens
        rec.output_tokens += u.output_tokens
        rec.cached_input_tokens += c.cached
        rec.reasoning_tokens += c.reasoning
        if i.role == "llm":
            if u.model != "unknown" and u.model not in rec.models:
                rec.models.append(u.model)
            if c.response_model and c.response_model not in rec.response_models:
                rec.response_models.append(c.response_model)
            rec.provider = rec.provider or c.provider
            if c.ttfc is not None and rec.time_to_first_chunk is None:
                rec.time_to_first_chunk = c.ttfc
    rec.cost_complete = all_priced and all_seen and _get(rkvs, rindex, (sc.RAG_USAGE_MISSING,)) is not True
    # The root's cost is the app's sum over the calls it saw; when its openai instrumentor stepped
    # aside for a peer (OpenInference, OpenLLMetry), it missed those calls: sum the model spans instead.
    trust_root = (root.role == "other" and sc.RAG_INSTRUMENTATION_SKIPPED not in rindex and (not unit or ours)
                  and not adopted)
    root_cost = _float(rkvs, rindex, sc.GEN_AI_USAGE_COST) if trust_root else None
    rec.cost_usd = root_cost if root_cost is not None else (span_cost if all_priced else None)
    # passed-over spans hold no content (see passthrough): nothing to strip
    indexes = [(i.span, i.index, i.parsed, i.shape.content) for i in infos if i.kvs is not None]
    if not ours and is_ingestion([i.role for i in infos]):  # an index build or an upload: not a question
        ing = IngestionRecord(rec.trace_id, rec.start_time, rec.end_time, rec.service,
                              sorted({u.model for u in usage}), rec.input_tokens, rec.output_tokens, rec.cost_usd,
                              rec.cost_complete, rec.span_count)
        return Normalized(rec, rspan, root.origin, usage, None, indexes, root.shape.keys, ingestion=ing)

    # Outcome.
    if rspan.status.code == Status.STATUS_CODE_ERROR:
        rec.status = "error"
        rec.error_type = _str(rkvs, rindex, sc.ERROR_TYPE) or rspan.status.message or "error"
    rec.features = _features(features)
    rec.category = None if category is None else str(category)
    rec.topic = None if topic is None else str(topic)
    if capture is None:
        capture = _resource_capture(trace)
    rec.spans = _span_summaries(infos, calls, wrappers)
    return Normalized(rec, rspan, root.origin, usage, None if capture is None else str(capture),
                      indexes, root.shape.keys, root_is_call=root.role in ("llm", "embedding"))


def _resource_capture(trace: Trace) -> str | None:
    """The capture mode the apps' resources declare (``scoring_only`` if any of them does)."""
    found = None
    seen: set[int] = set()
    for origin, _ in trace.spans:
        if id(origin.resource) in seen:
            continue
        seen.add(id(origin.resource))
        for kv in origin.resource.attributes:
            if kv.key == sc.RAG_CONTENT_CAPTURE:
                found = kv.value.string_value
                if found == "scoring_only":
                    return found
    return found


def _retrieved(infos: Sequence[_SpanInfo], retrievals: Sequence[_SpanInfo]) -> list[Source]:
    """Each retrieved document once: the outermost retrieval's documents (a framework retriever over a
    vector store is one retrieval, its store's span below it the same documents again), a nested
    one only filling in the score or text its outer one lacked; documents repeated across retrievals
    (hybrid search) are kept once, at their first place."""
    if len(retrievals) < 2:  # the common trace: nothing can nest or repeat across retrievals
        return _sources(retrievals[0]) if retrievals else []
    ids = {i.span.span_id for i in retrievals}
    by_id = {i.span.span_id: i for i in infos}
    outer, inner = [], []
    for r in retrievals:
        parent, nested = by_id.get(r.span.parent_span_id), False
        for _ in range(len(infos)):  # bounded: a malformed trace may hold a parent cycle
            if parent is None:
                break
            if parent.span.span_id in ids:
                nested = True
                break
            parent = by_id.get(parent.span.parent_span_id)
        (inner if nested else outer).append(r)
    out: dict[str, Source] = {}
    for r in outer:
        for doc in _sources(r):
            kept = out.setdefault(doc.id, doc)
            if kept is not doc:
                _fill(kept, doc)
    for r in inner:
        for doc in _sources(r):
            if (kept := out.get(doc.id)) is not None:
                _fill(kept, doc)
    return list(out.values())


def _fill(kept: Source, other: Source) -> None:
    if kept.score is None:
        kept.score = other.score
    if kept.content is None:
        kept.content = other.content


def _fill_from_prompt(sources: list[Source], passages: list[tuple[str | None, str]]) -> None:
    """Give ids-only sources the text of the passages pasted into the prompt: by label when every id is
    one, else in order when the app pasted as many as it retrieved; with no retrieval span, or another
    number of passages than documents retrieved, the passages are the sources."""
    if not passages:
        return
    if not sources:
        sources.extend(Source(label or str(n), None, text) for n, (label, text) in enumerate(passages, 1))
        return
    by_label = {label: text for label, text in passages if label}
    if by_label and all(s.id in by_label for s in sources):
        for s in sources:
            s.content = s.content or by_label[s.id]
        return
    if len(sources) == len(passages):
        for s, (_, text) in zip(sources, passages, strict=True):
            s.content = s.content or text
        return
    # the app pasted another number than it retrieved (it fused, reranked or filtered): the pasted passages
    # are what the answer was made from, so they are the sources (the retrieval's ids stay on its span)
    if not any(s.content for s in sources):
        sources[:] = [Source(label or str(n), None, text) for n, (label, text) in enumerate(passages, 1)]


MAX_SPANS = 200  # a query view needs the shape of the trace, not every span of a runaway loop


def _span_summaries(infos: Sequence[_SpanInfo], calls: Sequence[tuple[_SpanInfo, _Call]],
                    wrappers: Any) -> list[SpanSummary]:
    """Each span's timing and role, with model, tokens and cost on model calls (start order).

    On the hot path: ids stay bytes (the store writer makes them hex) and plain spans take no usage.
    """
    usage = {id(i): got.usage for i, got in calls}
    out = []
    error = Status.STATUS_CODE_ERROR
    for i in infos[:MAX_SPANS]:
        sp = i.span
        st = "error" if sp.status.code == error else "ok"
        u = usage.get(id(i)) if usage else None
        if u is None:
            out.append(SpanSummary(sp.span_id, sp.parent_span_id or None, i.name, i.role, i.start * _NS,
                                   sp.end_time_unix_nano * _NS, st))
        else:
            out.append(SpanSummary(sp.span_id, sp.parent_span_id or None, i.name, i.role, i.start * _NS,
                                   sp.end_time_unix_nano * _NS, st, u.model, u.input_tokens, u.output_tokens,
                                   u.cost_usd, i not in wrappers))
    return out


def _wrappers(infos: Sequence[_SpanInfo], counted: Sequence[_SpanInfo]) -> set[_SpanInfo]:
    """Model spans with a same-role model span that carries usage (``counted``) below them: an
    app's ``generate()`` around an instrumented client call, a LangChain LLM span over the OpenAI
    one (OpenInference, OpenLLMetry). The innermost call saw the provider's usage; its wrappers'
    tokens and cost are the same call counted again. A wrapper whose calls below carry no usage
    (a stream without usage, an uninstrumented client) still counts, as the SDK does."""
    by_id = {i.span.span_id: i for i in infos}
    out: set[_SpanInfo] = set()
    for m in counted:
        parent = by_id.get(m.span.parent_span_id)
        for _ in range(len(infos)):  # bounded: a malformed trace may hold a parent cycle
            if parent is None:
                break
            if parent.role == m.role:
                out.add(parent)
            parent = by_id.get(parent.span.parent_span_id)
    return out


def _unwrap(text: str | None, keys: tuple[str, ...]) -> str | None:
    """OpenLLMetry/OpenInference often put a JSON object in input/output: take its text field."""
    if not text or text[0] != "{":
        return text
    try:
        obj = json.loads(text)
    except ValueError:
        return text
    if isinstance(obj, dict):
        inner = obj.get("inputs") or obj.get("outputs") or obj
        if isinstance(inner, dict):
            for k in keys:
                if isinstance(inner.get(k), str):
                    return inner[k]
    return text
