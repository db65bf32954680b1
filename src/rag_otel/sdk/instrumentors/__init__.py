"""One OpenTelemetry ``BaseInstrumentor`` per client library, each optional.

``REGISTRY`` is the one list ``configure()`` and the distro walk: a short name (the one users put
in ``telemetry.instrument``) -> (``"module:Class"`` of the instrumentor, the top-level module of
the library it patches).  Instrumentor modules are imported by dotted path only when their
library is installed, so ``import rag_otel`` never drags in openai, faiss or fastapi.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import Any, NamedTuple

logger = logging.getLogger("rag_otel")


class Entry(NamedTuple):
    target: str  # "package.module:ClassName"
    library: str  # top-level module that must be importable, else the entry is skipped quietly


REGISTRY: dict[str, Entry] = {
    "openai": Entry("rag_otel.sdk.instrumentors.openai:OpenAIInstrumentor", "openai"),
    "faiss": Entry("rag_otel.sdk.instrumentors.faiss:FaissInstrumentor", "faiss"),
    "chromadb": Entry("rag_otel.sdk.instrumentors.chroma:ChromaInstrumentor", "chromadb"),
    "langchain": Entry("rag_otel.sdk.instrumentors.langchain:LangChainInstrumentor", "langchain_core"),
    "llama_index": Entry("rag_otel.sdk.instrumentors.llama_index:LlamaIndexInstrumentor", "llama_index"),
    "fastapi": Entry("opentelemetry.instrumentation.fastapi:FastAPIInstrumentor", "fastapi"),
    "threading": Entry("rag_otel.sdk.instrumentors.thread_context:ThreadContextInstrumentor", "threading"),
}


def library_available(name: str) -> bool:
    entry = REGISTRY.get(name)
    if entry is None:
        return False
    try:
        return importlib.util.find_spec(entry.library) is not None
    except (ImportError, ValueError):
        return False


def load_instrumentor(name: str) -> Any | None:
    """The instrumentor instance for ``name``, or None when it or its library is missing."""
    entry = REGISTRY.get(name)
    if entry is None:
        logger.warning("rag-otel: unknown instrumentation %r (known: %s)", name, ", ".join(REGISTRY))
        return None
    if not library_available(name):
        logger.debug("rag-otel: %s not installed; its instrumentation is skipped", entry.library)
        return None
    module_name, _, cls_name = entry.target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as e:
        logger.debug("rag-otel: instrumentor %s unavailable: %s", entry.target, e)
        return None
    return cls()
