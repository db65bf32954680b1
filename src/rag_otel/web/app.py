"""The processor's HTTP app: ``/health`` and ``/metrics`` now; the REST API and dashboard extend it.

A factory over a running service (not a module-level app), so tests and the CLI can run several
services in one process and later work adds routes with ``app.include_router`` in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Response

from rag_otel import __version__

if TYPE_CHECKING:
    from rag_otel.processor.service import ProcessorService


def create_app(service: ProcessorService) -> FastAPI:
    """FastAPI app bound to ``service`` (read through ``app.state.service``)."""
    app = FastAPI(title="rag-otel processor", version=__version__, docs_url=None, redoc_url=None)
    app.state.service = service

    @app.get("/health")
    def health() -> dict:
        """Liveness plus what an operator checks first: listeners, queue, traces in flight, counters."""
        return service.health()

    @app.get("/metrics")
    def metrics() -> Response:
        """Derived and health metrics in the Prometheus text format."""
        from rag_otel.processor.derived_metrics import PROMETHEUS_CONTENT_TYPE

        return Response(service.metrics.prometheus_text(), media_type=PROMETHEUS_CONTENT_TYPE)

    return app
