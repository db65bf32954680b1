"""Export what the app recorded before it stops, within a bound, however it is stopped.

Why this exists: the SDK's providers flush in an ``atexit`` handler, but a process stopped by a
signal often never reaches it.  uvicorn (and gunicorn's uvicorn worker) handle SIGTERM/SIGINT
themselves, shut down gracefully, put back the handler they found and raise the signal again;
when that handler is the default one the process dies there and no exit handler runs.  And the
providers' own shutdown waits up to 30 s per signal while the exporters retry a collector that
is gone.

What we do (installed once per process by ``configure()``):

- ``signal.signal`` and ``signal.getsignal`` are wrapped, so a handler installed at any time
  (before or after us, by uvicorn, gunicorn, hypercorn, asyncio or the app) is chained, never
  replaced.  The app keeps seeing its own handlers through ``getsignal`` and the return value of
  ``signal``.  For SIGTERM, SIGINT, SIGHUP and SIGQUIT:

  * a Python handler gets a non-blocking flush started in the background before it runs (so what
    ended before the signal is on its way even if the process is killed after its grace period);
  * the default action (``SIG_DFL``, which kills the process) gets :func:`drain` first, then the
    default action with the same signal, so the exit status is unchanged.  This is the hook
    uvicorn's re-raise lands on;
  * ``SIG_IGN`` stays ignored, and Python's SIGINT handler (``KeyboardInterrupt``) is left alone:
    the exit handler below drains.  A stop signal during a drain waits for it (it is bounded);
    a second Ctrl-C interrupts it.

- An ``atexit`` handler drains on every normal exit (end of script, ``sys.exit``, Ctrl-C's
  ``KeyboardInterrupt``), before the providers' own unbounded ones, which are unregistered.

- :func:`drain` stops our span and log processors and our meter provider against one deadline
  (default ``OTEL_EXPORTER_OTLP_TIMEOUT``, else 10 s; ``RAG_OTEL_SHUTDOWN_TIMEOUT`` or
  ``telemetry.shutdown_timeout`` in seconds): each stop joins its worker for what is left, then
  shuts its exporter down, which cuts the OTLP exporter's retry back-off.  An export still
  blocked in the network after the deadline is abandoned (its thread is a daemon).

SIGKILL runs nothing: see docs/sdk.md for what it loses and how to bound that.
"""

from __future__ import annotations

import atexit
import contextlib
import inspect
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("rag_otel")

TIMEOUT_ENV = "RAG_OTEL_SHUTDOWN_TIMEOUT"
_DEFAULT_TIMEOUT_S = 10.0
# Signals whose default action ends the process and that people use to stop an app.
_STOP_SIGNALS = frozenset(
    s for s in (getattr(signal, n, None) for n in ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT")) if s is not None
)

_real_signal = signal.signal
_real_getsignal = signal.getsignal
_lock = threading.RLock()
_installed = False
_handle: Any = None  # the TelemetryHandle to drain at exit
_draining = False
_kick_thread: threading.Thread | None = None


def bound_seconds(configured: float | None = None) -> float:
    """The exit bound: ``$RAG_OTEL_SHUTDOWN_TIMEOUT``, else ``configured``, else the OTLP timeout."""
    for raw, name in ((os.environ.get(TIMEOUT_ENV), TIMEOUT_ENV), (configured, "telemetry.shutdown_timeout"),
                      (os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT"), "OTEL_EXPORTER_OTLP_TIMEOUT")):
        if raw is None or raw == "":
            continue
        try:
            value = float(raw)
        except ValueError:
            logger.warning("rag-otel: %s=%r is not a number of seconds (ignored)", name, raw)
            continue
        if value >= 0:
            return value
        logger.warning("rag-otel: %s=%r is negative (ignored)", name, raw)
    return _DEFAULT_TIMEOUT_S


# --- draining -------------------------------------------------------------------------------


def drain(handle: Any, timeout_s: float) -> None:
    """Export what ``handle``'s processors and readers hold and stop them, within ``timeout_s``.

    Traces first (the records the processor scores), then logs, then metrics, all against one
    deadline.  Providers the app owns are left running; our processors on them are stopped."""
    deadline = time.monotonic() + max(0.0, timeout_s)

    def left_ms() -> float:
        return max(0.0, deadline - time.monotonic()) * 1000

    failures: list[str] = []
    for p in handle._span_processors:
        _stop_processor(p, left_ms(), failures)
    for p in handle._log_processors:
        _stop_processor(p, left_ms(), failures)
    if handle.owned.get("metrics"):
        _guard("metrics", lambda: handle.meter_provider.shutdown(timeout_millis=left_ms()), failures)
    # Our processors are stopped: the owned providers' own shutdown now returns at once.
    if handle.owned.get("traces"):
        _guard("traces", handle.tracer_provider.shutdown, failures)
    if handle.owned.get("logs"):
        _guard("logs", handle.logger_provider.shutdown, failures)
    if left_ms() == 0:  # what failed did so for want of time: one line says it (none if 0 was asked for)
        if timeout_s > 0:
            logger.warning("rag-otel: the exit bound (%.1f s, %s) ran out: what was not exported by then is lost",
                           timeout_s, TIMEOUT_ENV)
    else:
        for failure in failures:
            logger.warning("rag-otel: shutdown of %s", failure)


def _stop_processor(processor: Any, timeout_ms: float, failures: list[str]) -> None:
    """``shutdown`` with a timeout: the SDK's Batch*Processor.shutdown() takes none and would wait
    30 s, so the shared batch processor inside it is asked directly when it is there."""
    inner = getattr(processor, "_batch_processor", None)
    stop: Callable[[], Any] = processor.shutdown
    if inner is not None and "timeout_millis" in _parameters(inner.shutdown):
        def stop() -> Any:
            return inner.shutdown(timeout_millis=timeout_ms)
    elif "timeout_millis" in _parameters(processor.shutdown):
        def stop() -> Any:
            return processor.shutdown(timeout_millis=timeout_ms)
    _guard(type(processor).__name__, stop, failures)


def _parameters(fn: Any) -> tuple[str, ...]:
    try:
        return tuple(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return ()


def _guard(what: str, fn: Callable[[], Any], failures: list[str] | None = None) -> None:
    """Run one step; a failure (e.g. a reader that did not get to run before the deadline) is
    noted in ``failures`` (else logged), never raised."""
    try:
        fn()
    except Exception as e:
        note = f"{what}: {str(e).replace(chr(10), ' ')}"
        if failures is None:
            logger.warning("rag-otel: %s", note)
        else:
            failures.append(note)
        logger.debug("rag-otel: %s", what, exc_info=True)


def _drain_current(reason: str) -> None:
    """Drain the running configuration once, within its bound; never raises."""
    global _draining
    with _lock:
        handle = _handle
        if handle is None or _draining:
            return
        _draining = True
    try:
        timeout_s = bound_seconds(getattr(handle.config.telemetry, "shutdown_timeout", None))
        start = time.monotonic()
        handle.shutdown(timeout_s=timeout_s)
        logger.debug("rag-otel: telemetry drained on %s in %.2fs", reason, time.monotonic() - start)
    except Exception:
        logger.warning("rag-otel: draining telemetry on %s failed", reason, exc_info=True)
    finally:
        _draining = False


def _kick() -> None:
    """Start exporting what is buffered without blocking the signal handler (one flush at a time:
    a signal that lands while the previous flush runs adds nothing)."""
    global _kick_thread
    handle = _handle
    if handle is None or (_kick_thread is not None and _kick_thread.is_alive()):
        return

    def flush() -> None:
        for p in (*handle._span_processors, *handle._log_processors):
            _guard("flush", p.force_flush)
        if handle.owned.get("metrics"):
            timeout_ms = bound_seconds(getattr(handle.config.telemetry, "shutdown_timeout", None)) * 1000
            _guard("flush", lambda: handle.meter_provider.force_flush(timeout_millis=timeout_ms))

    _kick_thread = threading.Thread(target=flush, name="rag-otel-flush-on-signal", daemon=True)
    with contextlib.suppress(RuntimeError):  # interpreter shutting down: the exit drain follows
        _kick_thread.start()


# --- signal chaining ------------------------------------------------------------------------


class _Chained:
    """An app's Python signal handler with our background flush started in front of it."""

    __slots__ = ("handler",)

    def __init__(self, handler: Callable[[int, Any], Any]) -> None:
        self.handler = handler

    def __call__(self, signum: int, frame: Any) -> Any:
        with contextlib.suppress(Exception):  # never in the way of the app's handler
            _kick()
        return self.handler(signum, frame)


def _die(signum: int, frame: Any) -> None:
    """The default action (end the process), after a bounded drain.

    A stop signal arriving during a drain (e.g. a supervisor's SIGTERM while Ctrl-C's exit drains)
    waits for it: the drain is bounded and the process ends right after.  A second Ctrl-C still
    interrupts it (Python's KeyboardInterrupt)."""
    if _draining:
        return
    _drain_current(signal.Signals(signum).name)
    _real_signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


def _wrap(signum: int, handler: Any) -> Any:
    if signum not in _STOP_SIGNALS or handler is _die or isinstance(handler, _Chained):
        return handler
    if handler is signal.default_int_handler:  # KeyboardInterrupt: the exit handler drains; no frame of ours
        return handler
    if handler == signal.SIG_DFL:
        return _die
    if callable(handler):
        return _Chained(handler)
    return handler  # SIG_IGN, None (installed outside Python)


def _unwrap(handler: Any) -> Any:
    if handler is _die:
        return signal.SIG_DFL
    if isinstance(handler, _Chained):
        return handler.handler
    return handler


def _signal(signalnum: Any, handler: Any) -> Any:
    """``signal.signal`` with our flush chained to the handler; returns the app's previous one."""
    return _unwrap(_real_signal(signalnum, _wrap(int(signalnum), handler)))


def _getsignal(signalnum: Any) -> Any:
    return _unwrap(_real_getsignal(signalnum))


_signal.__doc__ = signal.signal.__doc__
_getsignal.__doc__ = signal.getsignal.__doc__


def install(handle: Any) -> None:
    """Drain ``handle`` when the process stops (signals, exit); idempotent per process."""
    global _installed, _handle
    with _lock:
        _handle = handle
        _take_over_atexit(handle)
        if _installed:
            return
        _installed = True
        signal.signal = _signal  # type: ignore[assignment]
        signal.getsignal = _getsignal  # type: ignore[assignment]
        atexit.register(_drain_current, "exit")
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork)
    if threading.current_thread() is threading.main_thread():
        for sig in _STOP_SIGNALS:
            try:
                current = _real_getsignal(sig)
                wrapped = _wrap(sig, current)
                if wrapped is not current:
                    _real_signal(sig, wrapped)
            except (OSError, ValueError):
                logger.debug("rag-otel: cannot chain a handler for %s", sig, exc_info=True)
    else:  # handlers can only be set from the main thread; later ones are still chained
        logger.info("rag-otel: configure() ran outside the main thread; signal handlers set later are chained")


def uninstall(handle: Any) -> None:
    """Forget ``handle`` (it was shut down); the hooks stay and drain a later configuration."""
    global _handle
    with _lock:
        if _handle is handle:
            _handle = None


def _take_over_atexit(handle: Any) -> None:
    """Our bounded drain replaces the owned providers' unbounded ``atexit`` shutdowns."""
    for name, provider, attr in (("traces", handle.tracer_provider, "_atexit_handler"),
                                 ("metrics", handle.meter_provider, "_atexit_handler"),
                                 ("logs", handle.logger_provider, "_at_exit_handler")):
        fn = getattr(provider, attr, None) if handle.owned.get(name) else None
        if fn is not None:
            atexit.unregister(fn)
            setattr(provider, attr, None)


def _after_fork() -> None:
    global _kick_thread, _draining
    _kick_thread, _draining = None, False
