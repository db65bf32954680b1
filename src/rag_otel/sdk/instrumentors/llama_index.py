"""LlamaIndex: retrievers and query engines.

* ``BaseRetriever.retrieve`` / ``aretrieve`` -> a ``retrieval {source}`` CLIENT span with node ids
  and scores (content only when capture is on).  Data source: the vector store's class for a
  vector-index retriever (``SimpleVectorStore``), else the retriever's class; top_k: its
  ``similarity_top_k``.
* ``BaseQueryEngine.query`` / ``aquery`` (and ``CustomQueryEngine``'s overrides) -> when no
  ``rag.query`` is active, the call *is* the query: it opens the SDK's root ``rag.query`` span
  (query metrics, cost and document totals summed from its children).  Inside a user's own
  ``rag.query`` it becomes an INTERNAL ``query_engine {class}`` span, so there is never a second
  root.  Either way the span carries ``rag.query_engine``, the question and answer (content:
  only when capture is on) and ``rag.source_documents``: the nodes the answer was synthesized from,
  after any postprocessor, in the ``gen_ai.retrieval.documents`` shape.  A streaming response
  is returned before it is consumed, so its answer text is not recorded.

Importing this module never imports llama_index, and neither does ``instrument()``: the classes
are patched when the app imports them (at once if it already has).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context, trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap
from opentelemetry.trace import Span, SpanKind

from rag_otel import semconv
from rag_otel.sdk.instrumentors._retrieval import (
    MAX_DOCUMENTS,
    DataSource,
    Found,
    Hit,
    LazyPatches,
    Request,
    acall,
    as_float,
    call,
    documents_json,
    fail,
    source_name,
)
from rag_otel.sdk.runtime import get_runtime, log_once, safe
from rag_otel.sdk.spans import current_rag_query, rag_query

_PATCHED = (  # (module, class, methods)
    ("llama_index.core.base.base_retriever", "BaseRetriever", ("retrieve", "aretrieve")),
    ("llama_index.core.base.base_query_engine", "BaseQueryEngine", ("query", "aquery")),
    ("llama_index.core.query_engine.custom", "CustomQueryEngine", ("query", "aquery")),
)


class LlamaIndexInstrumentor(BaseInstrumentor):
    """``LlamaIndexInstrumentor().instrument(data_source_id=None, max_documents=100)``;
    ``data_source_id`` (a name, or a callable ``retriever -> str``) overrides the derived name."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("llama-index-core >= 0.10",)

    def _instrument(self, **kwargs: Any) -> None:
        max_documents = int(kwargs.get("max_documents", MAX_DOCUMENTS))
        source: DataSource | None = kwargs.get("data_source_id")

        def retrieve(wrapped: Callable[..., Any], instance: Any, args: Any, kw: Any) -> Any:
            return call(wrapped, args, kw, lambda: _describe(instance, args, kw, source), _collect, max_documents)

        def aretrieve(wrapped: Callable[..., Any], instance: Any, args: Any, kw: Any) -> Any:
            return acall(wrapped, args, kw, lambda: _describe(instance, args, kw, source), _collect, max_documents)

        def query(wrapped: Callable[..., Any], instance: Any, args: Any, kw: Any) -> Any:
            with _engine_span(instance, args, kw) as span:
                result = wrapped(*args, **kw)
                _record_response(span, result, max_documents)
            return result

        async def aquery(wrapped: Callable[..., Any], instance: Any, args: Any, kw: Any) -> Any:
            with _engine_span(instance, args, kw) as span:
                result = await wrapped(*args, **kw)
                _record_response(span, result, max_documents)
            return result

        wrappers = {"retrieve": retrieve, "aretrieve": aretrieve, "query": query, "aquery": aquery}
        self._patches = LazyPatches()
        for module, cls, methods in _PATCHED:
            self._patches.wrap(module, [(f"{cls}.{m}", wrappers[m]) for m in methods])

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patches.cancel()
        for module, cls, methods in _PATCHED:
            for m in methods:
                unwrap(f"{module}.{cls}", m)


# --- retrievers ---------------------------------------------------------------------------------
def _query_str(args: Any, kwargs: Any) -> str | None:
    q = args[0] if args else kwargs.get("str_or_query_bundle", kwargs.get("query_bundle"))
    return q if isinstance(q, str) else getattr(q, "query_str", None)


def _describe(retriever: Any, args: Any, kwargs: Any, source: DataSource | None) -> Request:
    store = getattr(retriever, "_vector_store", None)
    default = type(store).__name__ if store is not None else type(retriever).__name__
    k = getattr(retriever, "similarity_top_k", None)
    return Request(
        data_source=source_name(source, retriever, default),
        provider=semconv.PROVIDER_LLAMA_INDEX,
        top_k=k if isinstance(k, int) and not isinstance(k, bool) else None,
        query_text=_query_str(args, kwargs),
    )


def _hits(nodes: Any, max_documents: int) -> list[Hit]:
    with_content = get_runtime().content.enabled  # get_content() builds text: only when it is kept
    hits = []
    for n in list(nodes or ())[:max_documents]:
        node = getattr(n, "node", n)
        hits.append(Hit(
            id=getattr(node, "node_id", None),
            score=as_float(getattr(n, "score", None)),
            content=node.get_content() if with_content and hasattr(node, "get_content") else None,
        ))
    return hits


def _collect(result: Any, max_documents: int) -> Found:
    return Found.single(_hits(result, max_documents), total=len(result or ()))


# --- query engines ------------------------------------------------------------------------------
@contextmanager
def _engine_span(engine: Any, args: Any, kwargs: Any) -> Iterator[Span | None]:
    """The SDK's root ``rag.query`` when none is active, else an INTERNAL ``query_engine`` span."""
    opened = _open_engine(engine, args, kwargs)
    if opened is None:
        yield None
        return
    kind, handle = opened
    if kind == "root":
        with handle as h:  # rag_query: records errors, query metrics and totals itself
            h.set_attribute(semconv.RAG_QUERY_ENGINE, type(engine).__name__)
            yield h.span
        return
    span: Span = handle
    token = context.attach(trace.set_span_in_context(span))
    try:
        yield span
    except BaseException as exc:
        fail(span, exc)
        raise
    else:
        span.end()
    finally:
        context.detach(token)


@safe()
def _open_engine(engine: Any, args: Any, kwargs: Any) -> tuple[str, Any] | None:
    if not is_instrumentation_enabled():
        return None
    name = type(engine).__name__
    text = _query_str(args, kwargs)
    if current_rag_query() is None:
        return "root", rag_query(text)
    rt = get_runtime()
    span = rt.tracer.start_span(
        f"{semconv.SPAN_QUERY_ENGINE} {name}", kind=SpanKind.INTERNAL, attributes={semconv.RAG_QUERY_ENGINE: name},
    )
    if text is not None:
        rt.content.set(span, semconv.RAG_QUERY_TEXT, text)
    return "nested", span


def _record_response(span: Span | None, response: Any, max_documents: int) -> None:
    """Answer text (content) and source nodes of a query engine's response; never raises."""
    if span is None or not span.is_recording():
        return
    try:
        rt = get_runtime()
        answer = getattr(response, "response", None)
        if isinstance(answer, str):
            rt.content.set(span, semconv.RAG_ANSWER_TEXT, answer)
        nodes = getattr(response, "source_nodes", None)
        if nodes is not None:
            docs, truncated = documents_json(_hits(nodes, max_documents), rt.content)
            span.set_attribute(semconv.RAG_SOURCE_DOCUMENTS, docs)
            if truncated:
                span.set_attribute(semconv.RAG_CONTENT_TRUNCATED, True)
    except Exception:
        log_once("llama_index.response", "rag-otel: could not read a LlamaIndex response (ignored)")
