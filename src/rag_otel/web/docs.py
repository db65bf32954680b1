"""``GET /docs``: the OpenAPI description in Swagger UI, served offline.

FastAPI's default page loads Swagger UI from a CDN, which a processor on a closed network cannot
reach. The ``swagger-ui-py`` package ships Swagger UI 5's files (which read OpenAPI 3.1, what
FastAPI writes); they are served from the package at ``/docs/static``. Without that package
``/docs`` is a short page that links ``/openapi.json`` instead of a 404.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles


def swagger_files() -> Path | None:
    """The directory of Swagger UI's bundle from the installed package, or None."""
    try:
        import swagger_ui
    except ImportError:
        return None
    d = Path(swagger_ui.__file__).parent / "static"
    return d if (d / "swagger-ui-bundle.js").is_file() else None


def install(app: FastAPI) -> None:
    files = swagger_files()
    if files is not None:
        app.mount("/docs/static", StaticFiles(directory=files), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        if files is None:
            return HTMLResponse(
                "<!doctype html><meta charset=utf-8><title>rag-otel API</title>"
                "<h1>rag-otel processor API</h1><p>The OpenAPI 3.1 description is at "
                "<a href='/openapi.json'>/openapi.json</a> (open it in any OpenAPI viewer). Install "
                "<code>swagger-ui-py</code> to browse it here.</p><p><a href='/'>Back to the dashboard</a></p>")
        return get_swagger_ui_html(openapi_url="/openapi.json", title="rag-otel processor API",
                                   swagger_js_url="/docs/static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/static/swagger-ui.css",
                                   swagger_favicon_url="/favicon.ico")
