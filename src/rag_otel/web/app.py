"""The processor's HTTP app: ``/health``, ``/metrics``, the REST API, the live feed and the dashboard.

A factory over a running service (not a module-level app), so tests and the CLI can run several
services in one process; each API area is a router of its own, included here in one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Response
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from rag_otel import __version__
from rag_otel.web import api_alerts, api_analytics, api_export, api_queries, api_reports, docs, errors, live
from rag_otel.web.auth import require_token, resolve_token
from rag_otel.web.snapshot import build_snapshot

if TYPE_CHECKING:
    from rag_otel.processor.service import ProcessorService

STATIC = Path(__file__).parent / "static"


def create_app(service: ProcessorService) -> FastAPI:
    """FastAPI app bound to ``service`` (read through ``app.state.service``).

    Raises ConfigError when ``processor.api_token_env`` names an unset variable: better a refused
    start than an API that is open when its operator meant it closed.
    """
    cfg = service.config
    # FastAPI's own Swagger/ReDoc pages load their scripts from a CDN: off; web/docs.py serves
    # /docs from the Swagger UI files a Python package ships (offline), the description at /openapi.json.
    app = FastAPI(title="rag-otel processor", version=__version__, docs_url=None, redoc_url=None,
                  description="Analytics, alerts, reports, queries and feedback of a rag-otel processor.")
    app.state.service = service
    app.state.api_token = resolve_token(cfg.processor.api_token_env, service.env)
    rt = cfg.dashboards.real_time
    app.state.live = live.LiveHub(lambda: build_snapshot(service), rt.update_interval, rt.max_subscribers,
                                  rt.enabled)
    errors.install(app)

    @app.get("/health", tags=["health"])
    def health() -> dict:
        """Liveness plus what an operator checks first: listeners, queue, traces in flight, counters."""
        return service.health()

    @app.get("/metrics", tags=["health"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
    def metrics() -> Response:
        """Derived and health metrics in the Prometheus text format."""
        from rag_otel.processor.derived_metrics import PROMETHEUS_CONTENT_TYPE

        return Response(service.metrics.prometheus_text(), media_type=PROMETHEUS_CONTENT_TYPE)

    protected = [Depends(require_token)]
    for router in (api_analytics.router, api_alerts.router, api_reports.router, api_queries.router,
                   api_export.router):
        app.include_router(router, dependencies=protected)
    app.include_router(live.router)

    @app.get("/api/v1/snapshot", tags=["dashboard"], dependencies=protected)
    def snapshot() -> dict[str, Any]:
        """What the live feed pushes, once (for scripts and for a first paint without WebSocket)."""
        return build_snapshot(service)

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    docs.install(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
