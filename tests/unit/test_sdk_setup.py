"""configure(): providers, resource, idempotence, adding to the app's providers, config errors.

OTel providers are set-once process globals; opentelemetry-test-utils' reset helpers (the
OTel project's own test utilities) give each test a fresh process state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rag_otel import ConfigError, configure, rag_query, semconv
from rag_otel.sdk import runtime, setup
from tests.support.otel_globals import fresh_otel_globals

QUIET = {"traces_exporter": "none", "metrics_exporter": "none", "logs_exporter": "none", "system_metrics": False,
         "instrument": []}


@pytest.fixture(autouse=True)
def fresh_globals(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("RAG_OTEL_CONFIG", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_EXPORTER",
                "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"):
        monkeypatch.delenv(var, raising=False)
    with fresh_otel_globals():
        yield


def test_configure_sets_sdk_providers_and_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging,team=search")
    h = configure(service_name="answers", service_version="1.2.3", **QUIET)
    assert trace.get_tracer_provider() is h.tracer_provider and isinstance(h.tracer_provider, TracerProvider)
    assert metrics.get_meter_provider() is h.meter_provider and isinstance(h.meter_provider, MeterProvider)
    assert _logs.get_logger_provider() is h.logger_provider
    attrs = h.resource.attributes
    assert attrs["service.name"] == "answers" and attrs["service.version"] == "1.2.3"
    assert attrs["telemetry.distro.name"] == "rag-otel"
    assert attrs["deployment.environment"] == "staging" and attrs["team"] == "search"
    assert runtime.get_runtime() is h.runtime


def test_service_name_from_resource_attributes_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-env")
    assert configure(**QUIET).resource.attributes["service.name"] == "from-env"


def test_otel_service_name_beats_the_config_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "svc-env")
    assert configure(**QUIET).resource.attributes["service.name"] == "svc-env"


def test_second_call_is_a_no_op_returning_the_same_handle(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rag_otel")
    first = configure(**QUIET)
    assert configure() is first
    assert configure(service_name="other") is first
    assert any("already ran" in r.getMessage() for r in caplog.records)
    assert first.resource.attributes["service.name"] != "other"


def test_adds_to_the_apps_tracer_provider_instead_of_replacing_it() -> None:
    app_spans = InMemorySpanExporter()
    app_tp = TracerProvider()
    app_tp.add_span_processor(SimpleSpanProcessor(app_spans))
    trace.set_tracer_provider(app_tp)
    app_reader = InMemoryMetricReader()
    app_mp = MeterProvider(metric_readers=[app_reader])
    metrics.set_meter_provider(app_mp)

    h = configure(**{**QUIET, "traces_exporter": "console"})
    assert h.tracer_provider is app_tp and h.meter_provider is app_mp
    assert not h.owned.get("traces") and not h.owned.get("metrics")
    assert len(h._span_processors) == 1  # our console exporter, added to the app's provider
    with rag_query():
        pass
    assert [s.name for s in app_spans.get_finished_spans()] == ["rag.query"]  # app's exporter still gets it
    names = {m.name for rm in app_reader.get_metrics_data().resource_metrics
             for sm in rm.scope_metrics for m in sm.metrics}
    assert semconv.METRIC_RAG_QUERIES in names  # our metrics flow through the app's readers
    h.shutdown()
    assert trace.get_tracer_provider() is app_tp  # the app's provider survives our shutdown
    with app_tp.get_tracer("app").start_as_current_span("after"):
        pass
    assert app_spans.get_finished_spans()[-1].name == "after"


def test_invalid_config_file_raises_naming_the_key(tmp_path) -> None:
    bad = tmp_path / "rag-otel.yaml"
    bad.write_text("model_observation:\n  metrics_collection: {intervall: 1}\n")
    with pytest.raises(ConfigError, match=r"metrics_collection\.intervall"):
        configure(config=bad, **QUIET)
    assert setup.get_handle() is None


def test_invalid_config_non_strict_logs_and_runs_with_defaults(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="rag_otel")
    bad = tmp_path / "rag-otel.yaml"
    bad.write_text("model_observation:\n  content: {capture: everything}\n")
    h = configure(config=bad, strict=False, **QUIET)
    assert h.config.content.capture == "scoring_only"  # the default
    assert any("content.capture" in r.getMessage() for r in caplog.records)


def test_explicit_arguments_reach_the_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "false")
    h = configure(capture="scoring_only", hash_user_id=True, **QUIET)
    assert h.runtime.content.capture == "scoring_only"  # explicit argument beats the env
    assert h.runtime.users is not None and h.runtime.users.enabled
    h.shutdown()
    with pytest.raises(ConfigError, match="capture"):
        configure(capture="all", **QUIET)


def test_instrumentors_enabled_skipped_and_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "threading")
    h = configure(**{**QUIET, "instrument": ["fastapi", "no_such_library"]})
    assert h.instrumented == ["fastapi"]
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    assert FastAPIInstrumentor().is_instrumented_by_opentelemetry
    h.shutdown()
    assert not FastAPIInstrumentor().is_instrumented_by_opentelemetry


def test_shutdown_allows_configure_again() -> None:
    first = configure(**QUIET)
    first.shutdown()
    assert setup.get_handle() is None
    second = configure(**QUIET)
    assert second is not first and second.tracer_provider is first.tracer_provider  # reused, not replaced


def test_unknown_exporter_is_a_config_error_or_skipped_when_not_strict(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ConfigError, match="traces exporter jaeger"):
        configure(**{**QUIET, "traces_exporter": "jaeger"})
    caplog.set_level(logging.ERROR, logger="rag_otel")
    h = configure(strict=False, **{**QUIET, "traces_exporter": "jaeger,console"})
    assert h.config.telemetry.traces_exporter == "console" and len(h._span_processors) == 1
    assert any("jaeger" in r.getMessage() for r in caplog.records)
