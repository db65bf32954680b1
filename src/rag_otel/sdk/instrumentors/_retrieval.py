"""What every retrieval instrumentor does the same way, in one place.

Open a CLIENT ``retrieval {data_source}`` span, run the wrapped call under it, record what it
returned (ids, scores, opt-in content, counts, the retrieved-documents histogram) and end the span.
Each library module only says how to *describe* a call (before it runs) and how to *collect* hits
from its result.  Anything that goes wrong in here is logged once and swallowed: the wrapped call's
result and exceptions pass through unchanged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import wrapt
from opentelemetry import context, trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from rag_otel import semconv
from rag_otel.sdk import conventions
from rag_otel.sdk.runtime import current_query, get_runtime, log_once, safe
from rag_otel.sdk.spans import current_rag_span, error_type  # one error.type convention for the whole SDK

_IN_RETRIEVAL = context.create_key("rag_otel.in_retrieval")

MAX_DOCUMENTS = 100
"""Default cap on entries in ``gen_ai.retrieval.documents`` per span (counts stay exact)."""


@dataclass(slots=True)
class Request:
    """What is known about a retrieval before it runs."""

    data_source: str
    provider: str
    top_k: int | None = None
    query_text: Any = None  # str, or a list of str for a batch; recorded only when capture is on
    score_kind: str | None = None  # semconv.SCORE_KIND_*
    nested: bool = False  # inside another retrieval: its documents are not added to the query total
    started: float = 0.0  # perf_counter() when the span opened (the v0.1.0 gen_ai.retrieval.duration)


@dataclass(slots=True)
class Hit:
    """One returned document."""

    id: Any
    score: float | None = None
    content: Any = None  # recorded only when capture is on
    query: int | None = None  # row of a batch search


@dataclass(slots=True)
class Found:
    """What a retrieval returned: at most ``max_documents`` hits, and exact counts per query row
    (one row for a plain query; a batch search has one per query vector or text)."""

    hits: list[Hit]
    counts: Sequence[int] = field(default_factory=list)

    @classmethod
    def single(cls, hits: list[Hit], total: int | None = None) -> Found:
        return cls(hits, [len(hits) if total is None else total])


DataSource = str | Callable[[Any], str]
"""``data_source_id=`` every retrieval instrumentor accepts: a fixed name or ``obj -> name``."""

Describe = Callable[[], "Request | None"]
Collect = Callable[[Any, int], "Found | None"]


class LazyPatches:
    """Wrap a library's methods when its module is imported (at once if it already is).

    Why: ``configure()`` instruments every library that is *installed*; importing chromadb or
    llama_index just to patch them would add seconds to the start of apps that never use them.
    ``cancel()`` (from ``_uninstrument``) stops hooks still waiting for an import, so an
    instrument/uninstrument/instrument cycle never wraps a method twice.  An error while patching
    is logged once and never breaks the user's import.
    """

    def __init__(self) -> None:
        self._live = object()

    def when_imported(self, module: str, patch: Callable[[Any], None]) -> None:
        """Call ``patch(module)`` once ``module`` is imported, unless cancelled before."""
        token = self._live

        def hook(mod: Any) -> None:
            if self._live is not token:
                return
            try:
                patch(mod)
            except Exception:
                log_once(f"patch {module}", "rag-otel: could not instrument %s (ignored)", module)

        wrapt.register_post_import_hook(hook, module)

    def wrap(self, module: str, targets: Iterable[tuple[str, Callable[..., Any]]]) -> None:
        """Wrap each ``module.<dotted name>`` with its wrapper once ``module`` is imported."""
        targets = list(targets)

        def patch(mod: Any) -> None:
            for name, wrapper in targets:
                wrapt.wrap_function_wrapper(mod, name, wrapper)

        self.when_imported(module, patch)

    def cancel(self) -> None:
        self._live = object()


def source_name(source: DataSource | None, obj: Any, default: str) -> str:
    """The configured data-source name for ``obj`` (a fixed one or a callable's), else ``default``."""
    if callable(source):
        return str(source(obj))
    return source or default


def call(wrapped: Callable[..., Any], args: Any, kwargs: Any, describe: Describe, collect: Collect,
         max_documents: int = MAX_DOCUMENTS) -> Any:
    """Run a sync retrieval call under a retrieval span."""
    opened = _open(describe)
    if opened is None:
        return wrapped(*args, **kwargs)
    span, req = opened
    token = context.attach(context.set_value(_IN_RETRIEVAL, True, trace.set_span_in_context(span)))
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        _record_duration(req, exc)
        fail(span, exc)
        raise
    finally:
        context.detach(token)
    _close(span, req, result, collect, max_documents)
    return result


async def acall(wrapped: Callable[..., Awaitable[Any]], args: Any, kwargs: Any, describe: Describe,
                collect: Collect, max_documents: int = MAX_DOCUMENTS) -> Any:
    """Run an async retrieval call under a retrieval span (the span starts when awaited)."""
    opened = _open(describe)
    if opened is None:
        return await wrapped(*args, **kwargs)
    span, req = opened
    token = context.attach(context.set_value(_IN_RETRIEVAL, True, trace.set_span_in_context(span)))
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        _record_duration(req, exc)
        fail(span, exc)
        raise
    finally:
        context.detach(token)
    _close(span, req, result, collect, max_documents)
    return result


@safe()
def _open(describe: Describe) -> tuple[Span, Request] | None:
    if not is_instrumentation_enabled():
        return None
    req = describe()
    if req is None:
        return None
    handle = current_rag_span()
    req.nested = context.get_value(_IN_RETRIEVAL) is not None or (handle is not None and handle.kind == "retrieval")
    rt = get_runtime()
    attrs: dict[str, Any] = {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_RETRIEVAL,
        semconv.GEN_AI_PROVIDER_NAME: req.provider,
        semconv.GEN_AI_DATA_SOURCE_ID: req.data_source,
    }
    if req.top_k is not None:
        conventions.retrieval_top_k(req.top_k, attrs)
    if req.score_kind:
        attrs[semconv.RAG_RETRIEVAL_SCORE_KIND] = req.score_kind
    span = rt.tracer.start_span(f"{semconv.OP_RETRIEVAL} {req.data_source}", kind=SpanKind.CLIENT, attributes=attrs)
    req.started = time.perf_counter()
    if req.query_text is not None and span.is_recording():
        rt.content.set(span, semconv.GEN_AI_RETRIEVAL_QUERY_TEXT, req.query_text)
    return span, req


@safe()
def fail(span: Span, exc: BaseException) -> None:
    """Mark ``span`` failed with ``exc`` (error.type, status, exception event) and end it."""
    try:
        span.set_attribute(semconv.ERROR_TYPE, error_type(exc))
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:512]))
        span.record_exception(exc)
    finally:
        span.end()


@safe()
def _record_duration(req: Request, exc: BaseException | None = None) -> None:
    v0_1 = get_runtime().instruments.v0_1
    if v0_1 is not None:
        err = error_type(exc) if exc is not None and not isinstance(exc, GeneratorExit) else None
        v0_1.record_retrieval(time.perf_counter() - req.started, provider=req.provider, data_source=req.data_source,
                              error_type=err)


@safe()
def _close(span: Span, req: Request, result: Any, collect: Collect, max_documents: int) -> None:
    _record_duration(req)
    try:
        found = collect(result, max_documents)
        if found is not None:
            _record(span, req, found, max_documents)
    finally:
        span.end()


def _record(span: Span, req: Request, found: Found, max_documents: int) -> None:
    rt = get_runtime()
    total = int(sum(found.counts))
    hits = found.hits[:max_documents]
    if span.is_recording():
        span.set_attribute(semconv.RAG_DOCUMENTS_COUNT, total)
        docs_json, truncated = documents_json(hits, rt.content)
        span.set_attribute(semconv.GEN_AI_RETRIEVAL_DOCUMENTS, docs_json)
        if truncated:
            span.set_attribute(semconv.RAG_CONTENT_TRUNCATED, True)
        if len(found.counts) > 1:
            span.set_attribute(semconv.RAG_RETRIEVAL_QUERY_COUNT, len(found.counts))
        if total > len(hits):
            span.set_attribute(semconv.RAG_RETRIEVAL_DOCUMENTS_OMITTED, total - len(hits))
    attrs = {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_RETRIEVAL,
        semconv.GEN_AI_PROVIDER_NAME: req.provider,
        semconv.GEN_AI_DATA_SOURCE_ID: req.data_source,
    }
    # One point per call, as the span API's retrieve() records: a batch search is one retrieval.
    rt.instruments.retrieved_documents.record(total, attrs)
    q = current_query.get()
    if q is not None and not req.nested:  # an ensemble's or a retrieve()'s own total already counts these
        with q.lock:
            q.documents += total


def documents_json(hits: Sequence[Hit], content: Any) -> tuple[str, bool]:
    """``[{"id", "score", "query"?, "content"?}]`` and whether content was cut: the same shape as the
    span API's ``documents_json`` plus ``query`` (the row of a batch search), which it cannot carry;
    content shares the policy's size cap across hits."""
    with_content = content.enabled and any(h.content is not None for h in hits)
    budget = max(64, content.max_chars // max(1, len(hits))) if with_content else 0
    out = []
    truncated = False
    for h in hits:
        entry: dict[str, Any] = {"id": None if h.id is None else str(h.id)}
        if h.score is not None:
            entry["score"] = h.score
        if h.query is not None:
            entry["query"] = h.query
        if with_content and h.content is not None:
            text, cut = content.clean(h.content)
            truncated = truncated or cut or len(text) > budget
            entry["content"] = text[:budget]
        out.append(entry)
    return json.dumps(out, ensure_ascii=False, allow_nan=False, default=str), truncated


def as_float(value: Any) -> float | None:
    """A finite float, or None (NaN/inf scores are not valid JSON)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f and f not in (float("inf"), float("-inf")) else None
