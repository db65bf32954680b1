"""Zero-code entry points for ``opentelemetry-instrument`` (opentelemetry-instrumentation's
sitecustomize machinery): our distro and configurator, declared in pyproject.toml.

Order at interpreter start-up: ``RagOtelDistro.configure()`` -> the configurator ->
``load_instrumentor()`` for every installed ``opentelemetry_instrumentor`` entry point.
The configurator runs ``configure(strict=False)``: a broken config file is logged and the app
still starts, with defaults.  Entry points we already instrumented (FastAPI with our header
hook, threading) are not instrumented twice, and ``system_metrics`` follows our config.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _BaseConfigurator

logger = logging.getLogger("rag_otel")

ENTRY_POINT_NAME = "rag_otel"
# Entry points whose instrumentors configure() owns (it passes hooks/config they need).
_OWNED_ENTRY_POINTS = frozenset({"system_metrics"})


class RagOtelDistro(BaseDistro):
    """Selects our configurator, even when opentelemetry-distro's is installed too."""

    def _configure(self, **kwargs: Any) -> None:
        os.environ.setdefault("OTEL_PYTHON_CONFIGURATOR", ENTRY_POINT_NAME)

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        if entry_point.name in _OWNED_ENTRY_POINTS:
            return
        if _ours_covers(entry_point):
            # configure() already put our own instrumentor on this library; another tool's
            # would either duplicate the LLM spans or make ours step aside at call time.
            logger.info("rag-otel: %s is instrumented by rag-otel; skipping %s", entry_point.name, entry_point.value)
            return
        instrumentor = entry_point.load()()
        if instrumentor.is_instrumented_by_opentelemetry:
            return
        instrumentor.instrument(**kwargs)


def _ours_covers(entry_point: Any) -> bool:
    """True for another package's instrumentor of a library rag-otel instruments itself."""
    from rag_otel.sdk.instrumentors import REGISTRY

    # names differ in spelling between packages: OpenLLMetry's LlamaIndex entry point is "llama-index"
    entry = REGISTRY.get(entry_point.name.replace("-", "_"))
    return (
        entry is not None
        and entry.target.startswith("rag_otel.")
        and not str(entry_point.value).startswith("rag_otel.")
    )


class RagOtelConfigurator(_BaseConfigurator):
    """Runs ``rag_otel.configure()`` from the environment (``RAG_OTEL_CONFIG``, ``OTEL_*``)."""

    def _configure(self, **kwargs: Any) -> None:
        from rag_otel.sdk.setup import configure

        try:
            configure(strict=False)
        except Exception:  # never stop the app from starting
            logger.exception("rag-otel: zero-code configuration failed; the app runs uninstrumented")
