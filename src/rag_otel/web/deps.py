"""What the routers share: the running service, its store, period parsing and Jaeger links."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Query, Request

from rag_otel.analytics.period import Period, parse_period


def service(request: Request) -> Any:
    return request.app.state.service


def store(request: Request) -> Any:
    """The processor's analytics store; 503 when it is not available (DuckDB missing)."""
    s = getattr(request.app.state.service, "store", None)
    if s is None:
        raise HTTPException(503, "the analytics store is not available in this processor (install rag-otel[processor])")
    return s


def period(period: str | None = Query(None, description="1h, 24h, 7d, 30d... (default 24h)", examples=["7d"]),
           from_: str | None = Query(None, alias="from", description="ISO 8601 start (UTC unless zoned)"),
           to: str | None = Query(None, description="ISO 8601 end (default now)")) -> Period:
    """A period from ``period`` or ``from``/``to``; bad values are a 400 with the reason."""
    return parse_period(period, start=from_, end=to)


def trace_url(jaeger_ui_url: str | None, trace_id: str | None) -> str | None:
    """``{jaeger}/trace/{trace_id}`` when a Jaeger UI address is configured."""
    if not jaeger_ui_url or not trace_id:
        return None
    return f"{jaeger_ui_url.rstrip('/')}/trace/{trace_id}"
