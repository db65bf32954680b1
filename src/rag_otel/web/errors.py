"""Every error the HTTP app returns is JSON with a ``message`` (and ``status``), never an HTML page."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("rag_otel.web")


def error(status: int, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"status": status, "message": message, **extra}, status_code=status)


def install(app: FastAPI) -> None:
    """Handlers for HTTP errors, validation errors, bad values and anything unexpected."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_r: Request, e: StarletteHTTPException) -> JSONResponse:
        resp = error(e.status_code, str(e.detail))
        resp.headers.update(e.headers or {})
        return resp

    @app.exception_handler(RequestValidationError)
    async def invalid(_r: Request, e: RequestValidationError) -> JSONResponse:
        problems = [{"where": ".".join(str(p) for p in err.get("loc", ())), "problem": err.get("msg", "")}
                    for err in e.errors()]
        text = "; ".join(f"{p['where']}: {p['problem']}" for p in problems)
        return error(422, f"invalid request: {text}", errors=problems)

    @app.exception_handler(ValueError)
    async def bad_value(_r: Request, e: ValueError) -> JSONResponse:
        return error(400, str(e))

    @app.exception_handler(Exception)
    async def unexpected(r: Request, e: Exception) -> JSONResponse:
        logger.exception("rag-otel web: %s %s failed", r.method, r.url.path)
        return error(500, f"internal error: {type(e).__name__}: {e}")
