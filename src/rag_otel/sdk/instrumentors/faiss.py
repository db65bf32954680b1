"""FAISS: a ``retrieval {data source}`` span around every ``Index.search`` / ``IndexBinary.search``.

faiss's SWIG classes get their Python-level ``search`` at import time: ``faiss/__init__.py`` calls
``class_wrappers.handle_Index`` on every ``Index`` subclass, which installs a
``replacement_search`` closure on each class that declares its own C++ ``search`` (IndexFlat,
IndexIVF, IndexIDMap, IndexHNSW, ...; subclasses such as IndexFlatL2 inherit it).  We wrap exactly
those class attributes, so every index type is covered once and nothing is wrapped twice.

Importing this module never imports faiss, and neither does ``instrument()``: the classes are
patched when the app imports faiss (at once if it already has).
"""

from __future__ import annotations

import math
import sys
import weakref
from collections.abc import Callable, Collection
from typing import Any

import wrapt
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
    call,
    source_name,
)

_names: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def name_index(index: Any, data_source_id: str) -> Any:
    """Give one index its ``gen_ai.data_source.id`` (SWIG objects take no new attributes).

    Returns the index, so ``index = name_index(faiss.IndexFlatIP(d), "faq")`` reads well.
    """
    _names[index] = data_source_id
    return index


def _search_classes(faiss: Any) -> list[str]:
    """Names of the faiss classes that own a Python ``search`` installed by faiss's class wrappers."""
    bases = tuple(b for b in (getattr(faiss, "Index", None), getattr(faiss, "IndexBinary", None)) if b)
    names = []
    for name in dir(faiss):
        cls = getattr(faiss, name, None)
        if isinstance(cls, type) and issubclass(cls, bases) and "search" in cls.__dict__:
            names.append(name)
    return names


class FaissInstrumentor(BaseInstrumentor):
    """``FaissInstrumentor().instrument(data_source_id=..., max_documents=100)``.

    ``data_source_id``: a fixed name, or a callable ``index -> str``; an index named with
    :func:`name_index` wins over both; the default is the index's class name (``IndexFlatL2``).
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        # faiss ships as faiss-cpu, faiss-gpu, faiss-gpu-cu12 or conda's faiss: no one distribution
        # to require; nothing happens until (and unless) the app imports faiss.
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        source: DataSource | None = kwargs.get("data_source_id")
        max_documents = int(kwargs.get("max_documents", MAX_DOCUMENTS))

        def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kw: Any) -> Any:
            return call(wrapped, args, kw, lambda: _describe(instance, args, kw, source), _collect, max_documents)

        def patch(faiss: Any) -> None:
            self._wrapped = _search_classes(faiss)
            for name in self._wrapped:
                wrapt.wrap_function_wrapper(faiss, f"{name}.search", wrapper)

        self._patches = LazyPatches()
        self._patches.when_imported("faiss", patch)

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patches.cancel()
        faiss = sys.modules.get("faiss")
        for name in getattr(self, "_wrapped", ()):
            unwrap(getattr(faiss, name), "search")
        self._wrapped: list[str] = []


def _describe(index: Any, args: Any, kwargs: Any, source: DataSource | None) -> Request:
    k = args[1] if len(args) > 1 else kwargs.get("k")
    name = _names.get(index)
    return Request(
        data_source=name if name is not None else source_name(source, index, type(index).__name__),
        provider=semconv.PROVIDER_FAISS,
        top_k=int(k) if k is not None else None,
        score_kind=_score_kind(index),
    )


def _score_kind(index: Any) -> str:
    """Inner-product indexes return similarities; L2 (and binary Hamming) return distances."""
    import faiss

    if getattr(index, "metric_type", None) == faiss.METRIC_INNER_PRODUCT:
        return semconv.SCORE_KIND_SIMILARITY
    return semconv.SCORE_KIND_DISTANCE


def _collect(result: Any, max_documents: int) -> Found:
    """Hits from ``(D, I)``, row-major, skipping faiss's ``-1`` "no result" labels.

    A single query (the usual RAG case) goes through plain lists, the cheapest path for k values;
    a batch takes one vectorised numpy pass and builds at most ``max_documents`` Python objects.
    """
    distances, labels = result
    if labels.shape[0] == 1:
        pairs = [(i, d) for i, d in zip(labels[0].tolist(), distances[0].tolist(), strict=True) if i >= 0]
        return Found([Hit(i, d if math.isfinite(d) else None) for i, d in pairs[:max_documents]], [len(pairs)])
    import numpy as np

    valid = labels >= 0
    counts = valid.sum(axis=1).tolist()
    rows, cols = np.nonzero(valid)
    rows, cols = rows[:max_documents], cols[:max_documents]
    hits = [
        Hit(id=i, score=d if math.isfinite(d) else None, query=r)
        for i, d, r in zip(labels[rows, cols].tolist(), distances[rows, cols].tolist(), rows.tolist(), strict=True)
    ]
    return Found(hits, counts)
