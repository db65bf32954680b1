"""rag-otel: OpenTelemetry observability for retrieval-augmented (RAG) assistants.

The public face, re-exports only.  ``import rag_otel`` stays light: the span API needs only the
OpenTelemetry API; ``configure`` (the SDK, exporters, gRPC), ``instrument_app`` (FastAPI) and
``capture`` (in-memory test telemetry) are imported on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from rag_otel.config import ConfigError, ModelObservation, load_config
from rag_otel.sdk.feedback import record_feedback
from rag_otel.sdk.spans import (
    RagSpan,
    current_rag_query,
    current_rag_span,
    embed,
    generate,
    rag_query,
    rerank,
    retrieve,
)

if TYPE_CHECKING:
    from rag_otel.sdk.http_context import instrument_app
    from rag_otel.sdk.setup import TelemetryHandle, configure
    from rag_otel.sdk.testing import capture

_LAZY = {
    "configure": "rag_otel.sdk.setup",
    "TelemetryHandle": "rag_otel.sdk.setup",
    "instrument_app": "rag_otel.sdk.http_context",
    "capture": "rag_otel.sdk.testing",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rag_otel' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "ConfigError",
    "ModelObservation",
    "RagSpan",
    "TelemetryHandle",
    "__version__",
    "capture",
    "configure",
    "current_rag_query",
    "current_rag_span",
    "embed",
    "generate",
    "instrument_app",
    "load_config",
    "rag_query",
    "record_feedback",
    "rerank",
    "retrieve",
]
