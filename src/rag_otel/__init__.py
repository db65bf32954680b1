"""rag-otel: OpenTelemetry observability for retrieval-augmented (RAG) assistants.

The public face, re-exports only.  Heavy collector-side modules are never imported from here.
"""

from __future__ import annotations

__version__ = "0.1.0"

from rag_otel.config import ConfigError, ModelObservation, load_config

__all__ = ["ConfigError", "ModelObservation", "__version__", "load_config"]
