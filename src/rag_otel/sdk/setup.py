"""``rag_otel.configure()``: one call that turns the SDK on.

It builds (or adds to) the app's tracer, meter and logger providers with OTLP gRPC/HTTP or
console exporters behind batch processors, a resource naming the service, installs the
:class:`~rag_otel.sdk.runtime.Runtime` the span API and instrumentors share, enables the
instrumentors whose libraries are installed, and starts the system metrics.

Decisions (see docs/sdk.md):
- Idempotent: a second call returns the first handle and ignores its arguments (with a warning
  when they differ), because libraries and apps both tend to call it.
- Providers the app already set are extended, not replaced: span and log processors are added
  to an SDK ``TracerProvider``/``LoggerProvider``; an SDK ``MeterProvider`` cannot take readers
  after creation, so it is used as is (our instruments export through the app's readers).
- An invalid configuration raises :class:`~rag_otel.config.ConfigError` from an explicit
  ``configure()`` (the developer is there to read it); ``configure(strict=False)``, used by the
  zero-code path, logs it and runs with defaults.  Nothing after validation ever raises.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, ConsoleLogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from rag_otel import __version__, semconv
from rag_otel.config import ConfigError, ModelObservation, load_config
from rag_otel.config import Telemetry as TelemetrySettings
from rag_otel.sdk import runtime
from rag_otel.sdk import shutdown as exit_hooks
from rag_otel.sdk.instrumentors import load_instrumentor

logger = logging.getLogger("rag_otel")

DISTRO_NAME = "rag-otel"
_SIGNAL_PATH = {"traces": "v1/traces", "metrics": "v1/metrics", "logs": "v1/logs"}
_CAPTURE_MODES = ("none", "scoring_only", "full")
_EXPORTERS = ("otlp", "console", "none")


@dataclass
class TelemetryHandle:
    """What ``configure()`` set up; ``shutdown()`` flushes and releases it."""

    config: ModelObservation
    runtime: runtime.Runtime
    tracer_provider: Any
    meter_provider: Any
    logger_provider: Any
    resource: Resource
    instrumented: list[str] = field(default_factory=list)
    owned: dict[str, bool] = field(default_factory=dict)  # which providers we created
    _span_processors: list[Any] = field(default_factory=list)
    _log_processors: list[Any] = field(default_factory=list)
    _instrumentors: list[Any] = field(default_factory=list)
    _system: Any = None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export what is buffered now (e.g. before a serverless function freezes)."""
        ok = True
        for p in (self.tracer_provider, self.meter_provider, self.logger_provider):
            flush = getattr(p, "force_flush", None)
            if flush is not None:
                try:
                    ok = bool(flush(timeout_millis)) and ok
                except Exception:
                    logger.warning("rag-otel: flush failed", exc_info=True)
                    ok = False
        return ok

    def shutdown(self, timeout_s: float | None = None) -> None:
        """Flush and stop what we created, within ``timeout_s`` (default: the exit bound, see
        sdk/shutdown.py); processors we added to the app's providers are stopped, the app's
        providers are left running.  ``configure()`` may be called again after."""
        global _handle
        with _lock:
            if _handle is self:
                _handle = None
        exit_hooks.uninstall(self)
        if self._system is not None:
            self._system.stop()
        for inst in self._instrumentors:
            try:
                inst.uninstrument()
            except Exception:
                logger.debug("rag-otel: uninstrument failed", exc_info=True)
        if timeout_s is None:
            timeout_s = exit_hooks.bound_seconds(self.config.telemetry.shutdown_timeout)
        exit_hooks.drain(self, timeout_s)
        if runtime._runtime is self.runtime:
            runtime.set_runtime(None)


_handle: TelemetryHandle | None = None
_lock = threading.RLock()


def configure(
    *,
    service_name: str | None = None,
    service_version: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: dict[str, str] | None = None,
    config: str | os.PathLike[str] | ModelObservation | None = None,
    capture: str | None = None,
    hash_user_id: bool | None = None,
    instrument: list[str] | None = None,
    system_metrics: bool | None = None,
    resource_attributes: dict[str, Any] | None = None,
    traces_exporter: str | None = None,
    metrics_exporter: str | None = None,
    logs_exporter: str | None = None,
    strict: bool = True,
) -> TelemetryHandle:
    """Turn rag-otel on; explicit arguments win over ``OTEL_*`` variables, which win over the file.

    ``config`` is a YAML path (default ``$RAG_OTEL_CONFIG``) or a ready ``ModelObservation``.
    Exporters are ``otlp`` / ``console`` / ``none`` (comma lists allowed), as in ``OTEL_*_EXPORTER``.
    """
    global _handle
    with _lock:
        if _handle is not None:
            if any(v is not None for v in (service_name, endpoint, protocol, config, capture, instrument)):
                logger.warning("rag-otel: configure() already ran; these arguments are ignored")
            return _handle
        cfg = _load(config, strict)
        t = cfg.telemetry
        for attr, value in (
            ("service_name", service_name), ("service_version", service_version), ("endpoint", endpoint),
            ("protocol", protocol), ("hash_user_id", hash_user_id), ("instrument", instrument),
            ("system_metrics", system_metrics), ("traces_exporter", traces_exporter),
            ("metrics_exporter", metrics_exporter), ("logs_exporter", logs_exporter),
        ):
            if value is not None:
                setattr(t, attr, value)
        if headers:
            t.headers.update(headers)
        if capture is not None:
            if capture not in _CAPTURE_MODES:
                _fail(strict, f"capture={capture!r}: use one of {', '.join(_CAPTURE_MODES)}")
            else:
                cfg.content.capture = capture  # type: ignore[assignment]
        if t.protocol not in ("grpc", "http/protobuf"):
            _fail(strict, f"protocol={t.protocol!r}: use grpc or http/protobuf")
            t.protocol = "grpc"
        for signal in ("traces", "metrics", "logs"):
            spec = getattr(t, f"{signal}_exporter")
            unknown = [n for n in _names(spec) if n not in _EXPORTERS]
            if unknown:
                _fail(strict, f"{signal} exporter {', '.join(unknown)!s}: use otlp, console or none")
                setattr(t, f"{signal}_exporter", ",".join(n for n in _names(spec) if n in _EXPORTERS) or "none")
        # the app's capture mode on its resource too: a trace with no rag.query root (an app run unmodified)
        # still tells the processor that its content was captured for scoring only
        extra = {semconv.RAG_CONTENT_CAPTURE: cfg.content.capture, **(resource_attributes or {})}
        _handle = _build(cfg, service_name is not None, extra)
        return _handle


def get_handle() -> TelemetryHandle | None:
    """The handle of the running configuration, if any."""
    return _handle


def _fail(strict: bool, msg: str) -> None:
    if strict:
        raise ConfigError(msg)
    logger.error("rag-otel: %s (ignored)", msg)


def _load(config: Any, strict: bool) -> ModelObservation:
    if isinstance(config, ModelObservation):
        return config.model_copy(deep=True)
    try:
        return load_config(config)
    except ConfigError as e:
        if strict:
            raise
        logger.error("rag-otel: %s\nrag-otel: running with the default configuration", e)
    try:
        return load_config(None, env={k: v for k, v in os.environ.items() if k != "RAG_OTEL_CONFIG"})
    except ConfigError:
        return ModelObservation()


def _resource(t: TelemetrySettings, explicit_name: bool, extra: dict[str, Any]) -> Resource:
    attrs: dict[str, Any] = {
        semconv.TELEMETRY_DISTRO_NAME: DISTRO_NAME,
        semconv.TELEMETRY_DISTRO_VERSION: __version__,
    }
    env_attrs = OTELResourceDetector().detect().attributes
    # A service.name in OTEL_RESOURCE_ATTRIBUTES beats our default, not an explicit choice.
    if explicit_name or os.environ.get("OTEL_SERVICE_NAME") or semconv.SERVICE_NAME not in env_attrs:
        attrs[semconv.SERVICE_NAME] = t.service_name
    if t.service_version:
        attrs[semconv.SERVICE_VERSION] = t.service_version
    if semconv.HOST_NAME not in env_attrs:
        with contextlib.suppress(OSError):
            attrs[semconv.HOST_NAME] = socket.gethostname()
    attrs.update(extra)
    return Resource.create(attrs)


def _names(spec: str) -> list[str]:
    return [n.strip().lower() for n in spec.split(",") if n.strip()]


def _otlp_kwargs(t: TelemetrySettings, signal: str) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if t.headers:
        kw["headers"] = dict(t.headers)
    # A per-signal endpoint variable is more specific than our one endpoint: let the exporter read it.
    if t.endpoint and not os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"):
        if t.protocol == "grpc":
            kw["endpoint"] = t.endpoint
        else:
            kw["endpoint"] = f"{t.endpoint.rstrip('/')}/{_SIGNAL_PATH[signal]}"
    return kw


def _exporter(signal: str, name: str, t: TelemetrySettings) -> Any | None:
    grpc = t.protocol == "grpc"
    if name == "console":
        return {"traces": ConsoleSpanExporter, "metrics": ConsoleMetricExporter, "logs": ConsoleLogRecordExporter}[
            signal
        ]()
    if name != "otlp":
        if name != "none":
            logger.warning("rag-otel: unknown %s exporter %r (use otlp, console or none)", signal, name)
        return None
    kw = _otlp_kwargs(t, signal)
    if signal == "traces":
        if grpc:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter(**kw)
    if signal == "metrics":
        if grpc:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        return OTLPMetricExporter(**kw)
    if grpc:
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    return OTLPLogExporter(**kw)


def _exporters(signal: str, spec: str, t: TelemetrySettings) -> list[Any]:
    out = []
    for name in _names(spec):
        try:
            exp = _exporter(signal, name, t)
        except Exception:
            logger.error("rag-otel: cannot create the %s %s exporter (skipped)", name, signal, exc_info=True)
            continue
        if exp is not None:
            out.append(exp)
    return out


def _build(cfg: ModelObservation, explicit_name: bool, extra_resource: dict[str, Any]) -> TelemetryHandle:
    t = cfg.telemetry
    resource = _resource(t, explicit_name, extra_resource)
    owned: dict[str, bool] = {}

    # --- traces
    span_processors = [BatchSpanProcessor(e) for e in _exporters("traces", t.traces_exporter, t)]
    current_tp = trace.get_tracer_provider()
    if isinstance(current_tp, TracerProvider):
        tp: Any = current_tp
        logger.info("rag-otel: adding our span processors to the app's TracerProvider")
    else:
        tp = TracerProvider(resource=resource)
        trace.set_tracer_provider(tp)
        if trace.get_tracer_provider() is not tp:  # the app set a non-SDK provider: keep it
            tp.shutdown()
            tp = trace.get_tracer_provider()
            logger.warning("rag-otel: the app's %s is kept; rag-otel exports no traces", type(tp).__name__)
        else:
            owned["traces"] = True
    if isinstance(tp, TracerProvider):
        for p in span_processors:
            tp.add_span_processor(p)

    # --- metrics
    current_mp = metrics.get_meter_provider()
    if isinstance(current_mp, MeterProvider):
        mp: Any = current_mp
        logger.info("rag-otel: an SDK MeterProvider is already set; our metrics export through its readers")
    else:
        interval_ms = None if os.environ.get("OTEL_METRIC_EXPORT_INTERVAL") else cfg.metrics_collection.interval * 1000
        readers: list[MetricReader] = [
            PeriodicExportingMetricReader(e, export_interval_millis=interval_ms)
            for e in _exporters("metrics", t.metrics_exporter, t)
        ]
        mp = MeterProvider(resource=resource, metric_readers=readers)
        metrics.set_meter_provider(mp)
        if metrics.get_meter_provider() is not mp:
            mp.shutdown()
            mp = metrics.get_meter_provider()
            logger.warning("rag-otel: the app's %s is kept", type(mp).__name__)
        else:
            owned["metrics"] = True

    # --- logs (feedback events)
    log_processors = [BatchLogRecordProcessor(e) for e in _exporters("logs", t.logs_exporter, t)]
    current_lp = _logs.get_logger_provider()
    if isinstance(current_lp, LoggerProvider):
        lp: Any = current_lp
    else:
        lp = LoggerProvider(resource=resource)
        _logs.set_logger_provider(lp)
        if _logs.get_logger_provider() is not lp:
            lp.shutdown()
            lp = _logs.get_logger_provider()
        else:
            owned["logs"] = True
    if isinstance(lp, LoggerProvider):
        for p in log_processors:
            lp.add_log_record_processor(p)

    rt = runtime.Runtime.create(cfg, tp, mp, lp)
    runtime.set_runtime(rt)
    handle = TelemetryHandle(
        cfg, rt, tp, mp, lp, resource, owned=owned,
        _span_processors=span_processors, _log_processors=log_processors,
    )
    _instrument(handle, t)
    exit_hooks.install(handle)  # export what is recorded before a signal or exit stops the app
    if t.system_metrics and "system_metrics" not in _disabled():
        try:
            from rag_otel.sdk import system_metrics

            handle._system = system_metrics.start(mp)
        except Exception:
            logger.warning("rag-otel: system metrics not started", exc_info=True)
    return handle


def _disabled() -> set[str]:
    """Names in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` (the variable opentelemetry-instrument reads)."""
    return set(_names(os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")))


def _instrument(handle: TelemetryHandle, t: TelemetrySettings) -> None:
    disabled = _disabled()
    wanted = list(dict.fromkeys([*t.instrument, "threading"]))  # context into executors: always
    for name in wanted:
        if name in disabled:
            continue
        try:
            inst = load_instrumentor(name)
            if inst is None:
                continue
            if inst.is_instrumented_by_opentelemetry:
                handle.instrumented.append(name)
                continue
            kwargs: dict[str, Any] = {
                "tracer_provider": handle.tracer_provider, "meter_provider": handle.meter_provider,
            }
            if name == "fastapi":
                from rag_otel.sdk.http_context import server_request_hook

                kwargs["server_request_hook"] = server_request_hook
                kwargs["exclude_spans"] = list(handle.config.telemetry.fastapi_exclude_spans) or None
            inst.instrument(**kwargs)
            if inst.is_instrumented_by_opentelemetry:
                handle.instrumented.append(name)
                handle._instrumentors.append(inst)
        except Exception:
            logger.warning("rag-otel: instrumenting %s failed (skipped)", name, exc_info=True)
