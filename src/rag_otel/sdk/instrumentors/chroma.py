"""Chroma: a ``retrieval {collection}`` span around ``Collection.query`` and ``AsyncCollection.query``.

Chroma returns *distances* for every space (l2, cosine = 1 - cos, ip = 1 - dot), so each span says
``rag.retrieval.score_kind=distance``: lower is better.  ``Collection.get`` is not instrumented: it
fetches by id or filter with no ranking, top-k or score, is called on ingestion and
housekeeping paths, and would fill the retrieved-documents histogram with non-retrievals.

Importing this module never imports chromadb, and neither does ``instrument()``: the classes are
patched when the app imports them (at once if it already has).
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

_TARGETS = (
    ("chromadb.api.models.Collection", "Collection"),
    ("chromadb.api.models.AsyncCollection", "AsyncCollection"),
)
_DEFAULT_N_RESULTS = 10  # chromadb's own default for Collection.query


class ChromaInstrumentor(BaseInstrumentor):
    """``ChromaInstrumentor().instrument(data_source_id=None, max_documents=100)``.

    The data source is the collection's name unless ``data_source_id`` (a name, or a callable
    ``collection -> str``) says otherwise.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        # chromadb and chromadb-client both provide the module: no one distribution to require;
        # nothing happens until (and unless) the app imports chromadb.
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        max_documents = int(kwargs.get("max_documents", MAX_DOCUMENTS))
        source: DataSource | None = kwargs.get("data_source_id")

        def sync_query(wrapped: Callable[..., Any], instance: Any, args: Any, kw: Any) -> Any:
            return call(wrapped, args, kw, lambda: _describe(instance, kw, source), _collect, max_documents)

        def async_query(wrapped: Callable[..., Any], instance: Any, args: Any, kw: Any) -> Any:
            return acall(wrapped, args, kw, lambda: _describe(instance, kw, source), _collect, max_documents)

        self._patches = LazyPatches()
        for (module, cls), wrapper in zip(_TARGETS, (sync_query, async_query), strict=True):
            self._patches.wrap(module, [(f"{cls}.query", wrapper)])

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patches.cancel()
        for module, cls in _TARGETS:
            unwrap(f"{module}.{cls}", "query")


def _describe(collection: Any, kwargs: Any, source: DataSource | None) -> Request:
    # Positional use of Collection.query is rare (query_embeddings first): read keywords only.
    texts = kwargs.get("query_texts")
    if isinstance(texts, list) and len(texts) == 1:
        texts = texts[0]
    n = kwargs.get("n_results", _DEFAULT_N_RESULTS)
    return Request(
        data_source=source_name(source, collection, str(collection.name)),
        provider=semconv.PROVIDER_CHROMA,
        top_k=int(n) if n is not None else None,
        query_text=texts,
        score_kind=semconv.SCORE_KIND_DISTANCE,
    )


def _collect(result: Any, max_documents: int) -> Found:
    """Hits from a ``QueryResult``: ``ids``/``distances``/``documents`` are lists per query."""
    ids = result.get("ids") or []
    distances = result.get("distances") or [None] * len(ids)
    documents = result.get("documents") or [None] * len(ids)
    batch = len(ids) > 1
    hits: list[Hit] = []
    for row, row_ids in enumerate(ids):
        row_scores, row_docs = distances[row], documents[row]
        for j, doc_id in enumerate(row_ids):
            if len(hits) >= max_documents:
                break
            hits.append(Hit(
                id=doc_id,
                score=as_float(row_scores[j]) if row_scores is not None else None,
                content=row_docs[j] if row_docs is not None else None,
                query=row if batch else None,
            ))
    return Found(hits, [len(r) for r in ids])
