"""OpenTelemetry's providers are set-once globals: tests of ``configure()`` start and end clean."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.test.globals_test import reset_logging_globals, reset_metrics_globals, reset_trace_globals

from rag_otel.sdk import runtime, setup


def _reset() -> None:
    reset_trace_globals()
    reset_metrics_globals()
    reset_logging_globals()


@contextmanager
def fresh_otel_globals() -> Iterator[None]:
    """No providers before; after, shut down what ``configure()`` made and forget the runtime."""
    _reset()
    try:
        yield
    finally:
        handle = setup.get_handle()
        if handle is not None:
            handle.shutdown()
        runtime.set_runtime(None)
        _reset()
