"""LangChain: a ``retrieval {source}`` span around ``BaseRetriever.invoke`` / ``ainvoke``.

Wrapping the base class covers every retriever (they implement ``_get_relevant_documents``; the
public entry point, and ``batch``/``abatch`` which call it, stay on the base class).  Retrievers
that call other retrievers (ensemble, multi-query, compression) give nested retrieval spans.

* data source: the retriever's ``name`` when set, else the vector store's class for a
  ``VectorStoreRetriever`` (``InMemoryVectorStore``), else the retriever's class name.
* top_k: ``search_kwargs["k"]`` of a ``VectorStoreRetriever`` (LangChain's default 4), else a
  retriever's own integer ``k`` attribute when it has one.
* ids: ``Document.id``, else ``metadata["id"]``, ``["doc_id"]`` or ``["source"]``.
* scores: only when the retriever put one in ``metadata`` (``score``, ``relevance_score``,
  ``similarity_score``); plain similarity search in LangChain returns none.

Importing this module never imports langchain_core, and neither does ``instrument()``: the
class is patched when the app imports it (at once if it already has).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap

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
    source_name,
)

_MODULE = "langchain_core.retrievers"
_ID_KEYS = ("id", "doc_id", "source")
_SCORE_KEYS = ("score", "relevance_score", "similarity_score")
_DEFAULT_K = 4  # VectorStore.similarity_search's default


class LangChainInstrumentor(BaseInstrumentor):
    """``LangChainInstrumentor().instrument(data_source_id=None, max_documents=100)``;
    ``data_source_id`` (a name, or a callable ``retriever -> str``) overrides the derived name."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("langchain-core >= 0.2",)

    def _instrument(self, **kwargs: Any) -> None:
        max_documents = int(kwargs.get("max_documents", MAX_DOCUMENTS))
        source: DataSource | None = kwargs.get("data_source_id")

        def invoke(wrapped: Callable[..., Any], instance: Any, args: Any, kw: Any) -> Any:
            return call(wrapped, args, kw, lambda: _describe(instance, args, kw, source), _collect, max_documents)

        def ainvoke(wrapped: Callable[..., Any], instance: Any, args: Any, kw: Any) -> Any:
            return acall(wrapped, args, kw, lambda: _describe(instance, args, kw, source), _collect, max_documents)

        self._patches = LazyPatches()
        self._patches.wrap(_MODULE, [("BaseRetriever.invoke", invoke), ("BaseRetriever.ainvoke", ainvoke)])

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patches.cancel()
        unwrap(f"{_MODULE}.BaseRetriever", "invoke")
        unwrap(f"{_MODULE}.BaseRetriever", "ainvoke")


def _describe(retriever: Any, args: Any, kwargs: Any, source: DataSource | None) -> Request:
    query = args[0] if args else kwargs.get("input")
    store = getattr(retriever, "vectorstore", None)
    search_kwargs = getattr(retriever, "search_kwargs", None)
    k = search_kwargs.get("k", _DEFAULT_K) if isinstance(search_kwargs, dict) else getattr(retriever, "k", None)
    default = getattr(retriever, "name", None) or (type(store).__name__ if store is not None else None)
    return Request(
        data_source=source_name(source, retriever, default or type(retriever).__name__),
        provider=semconv.PROVIDER_LANGCHAIN,
        top_k=k if isinstance(k, int) and not isinstance(k, bool) else None,
        query_text=query if isinstance(query, str) else None,
    )


def _collect(result: Any, max_documents: int) -> Found:
    docs = list(result or ())
    return Found.single([_hit(d) for d in docs[:max_documents]], total=len(docs))


def _hit(doc: Any) -> Hit:
    meta = getattr(doc, "metadata", None) or {}
    doc_id = getattr(doc, "id", None) or next((meta[k] for k in _ID_KEYS if meta.get(k) is not None), None)
    score = next((as_float(meta[k]) for k in _SCORE_KEYS if k in meta), None)
    return Hit(id=doc_id, score=score, content=getattr(doc, "page_content", None))
