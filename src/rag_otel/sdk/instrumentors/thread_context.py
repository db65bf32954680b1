"""Carry the OpenTelemetry context (and with it the current ``rag.query``) into threads.

A ``ThreadPoolExecutor.submit`` or ``Thread`` starts its work with an empty context, so a span
made there would begin a new trace and its model costs would reach no query (LangChain's
``batch``, LlamaIndex's parallel retrievers and ``run_in_executor`` all work that way).

Why our own and not ``opentelemetry-instrumentation-threading``: that package is released on its
own cadence and pins ``opentelemetry-instrumentation`` exactly, so next to the FastAPI
instrumentation it regularly asked for two versions of that one package, and the pip a fresh
Python 3.11 venv ships failed to install rag-otel at all (ResolutionImpossible).  What it does is
this: copy the caller's context at submit/start, run the work inside it.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper


def _submit(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if not args:
        return wrapped(*args, **kwargs)
    ctx = contextvars.copy_context()
    fn, rest = args[0], args[1:]
    return wrapped(ctx.run, fn, *rest, **kwargs)


def _start(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    instance._rag_otel_context = contextvars.copy_context()
    return wrapped(*args, **kwargs)


def _run(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    ctx = getattr(instance, "_rag_otel_context", None)
    if ctx is None:
        return wrapped(*args, **kwargs)
    instance._rag_otel_context = None  # no reference cycle through a finished thread
    return ctx.run(wrapped, *args, **kwargs)


class ThreadContextInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """``ThreadPoolExecutor.submit`` and ``Thread.start``/``run`` run in the caller's context."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        wrap_function_wrapper(ThreadPoolExecutor, "submit", _submit)
        wrap_function_wrapper(threading.Thread, "start", _start)
        wrap_function_wrapper(threading.Thread, "run", _run)

    def _uninstrument(self, **kwargs: Any) -> None:
        unwrap(ThreadPoolExecutor, "submit")
        unwrap(threading.Thread, "start")
        unwrap(threading.Thread, "run")
