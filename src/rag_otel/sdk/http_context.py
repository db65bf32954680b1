"""FastAPI/ASGI glue: server spans from opentelemetry-instrumentation-fastapi, and the request's
user/session/conversation/features headers read into the context ``rag_query`` consults and set
on the server span itself (``user.id``/``user.hash``, ``session.id``, ``gen_ai.conversation.id``).

The headers are read in the instrumentation's ``server_request_hook``, which runs inside the
server span and in the same task as the endpoint, so the values flow to the handler (and to
sync handlers run in the thread pool, which copies the context).  FastAPI is imported only
when an app is instrumented.
"""

from __future__ import annotations

import logging
from typing import Any

from rag_otel.sdk.identity import identity_from_headers, request_identity
from rag_otel.sdk.runtime import get_runtime, log_once

logger = logging.getLogger("rag_otel")


def server_request_hook(span: Any, scope: dict[str, Any]) -> None:
    """Read the configured identity headers of an HTTP request (never raises)."""
    try:
        if scope.get("type") not in ("http", "websocket"):
            return
        rt = get_runtime()
        ident = identity_from_headers(scope.get("headers") or (), rt.config.telemetry.request_headers)
        request_identity.set(ident)
        from rag_otel.sdk import spans

        if ident is not None and span is not None and span.is_recording():
            # on the server span too: an app with no rag.query span still has its user and session there,
            # where the processor reads them for the query it infers
            spans._set_people(rt, span, ident.user_id, ident.session_id, ident.conversation_id)

        if spans._loop_probe_hook is not None:
            spans._loop_probe_hook()
    except Exception:
        log_once("http_context.hook", "rag-otel: could not read request headers (ignored)")


def instrument_app(app: Any, **kwargs: Any) -> Any:
    """Instrument one FastAPI ``app`` created before ``configure()`` (or without it): server spans
    plus the identity headers.  Extra keyword arguments go to ``FastAPIInstrumentor.instrument_app``."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    kwargs.setdefault("server_request_hook", server_request_hook)
    if "exclude_spans" not in kwargs:  # the configured per-chunk span exclusion (telemetry.fastapi_exclude_spans)
        kwargs["exclude_spans"] = list(get_runtime().config.telemetry.fastapi_exclude_spans) or None
    FastAPIInstrumentor.instrument_app(app, **kwargs)
    return app
