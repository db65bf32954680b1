"""The zero-code distro: which entry-point instrumentors it loads, and the configurator's choice."""

from __future__ import annotations

import os
from importlib.metadata import EntryPoint

import pytest
from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

from rag_otel.sdk.distro import RagOtelDistro
from rag_otel.sdk.instrumentors.thread_context import ThreadContextInstrumentor as ThreadingInstrumentor


def ep(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group="opentelemetry_instrumentor")


def test_distro_selects_our_configurator_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_PYTHON_CONFIGURATOR", raising=False)
    RagOtelDistro().configure()
    assert os.environ["OTEL_PYTHON_CONFIGURATOR"] == "rag_otel"
    monkeypatch.setenv("OTEL_PYTHON_CONFIGURATOR", "theirs")
    RagOtelDistro().configure()
    assert os.environ["OTEL_PYTHON_CONFIGURATOR"] == "theirs"


def test_system_metrics_entry_point_is_left_to_configure() -> None:
    RagOtelDistro().load_instrumentor(
        ep("system_metrics", "opentelemetry.instrumentation.system_metrics:SystemMetricsInstrumentor"))
    assert not SystemMetricsInstrumentor().is_instrumented_by_opentelemetry


def test_other_entry_points_are_instrumented_once(caplog: pytest.LogCaptureFixture) -> None:
    threading_ep = ep("threading", "rag_otel.sdk.instrumentors.thread_context:ThreadContextInstrumentor")
    try:
        RagOtelDistro().load_instrumentor(threading_ep)
        assert ThreadingInstrumentor().is_instrumented_by_opentelemetry
        RagOtelDistro().load_instrumentor(threading_ep)  # e.g. configure() got there first
        assert "already instrumented" not in caplog.text
    finally:
        ThreadingInstrumentor().uninstrument()


def test_peer_instrumentors_of_libraries_we_cover_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    """A dev venv with OpenInference/OpenLLMetry installed: zero-code keeps rag-otel's openai spans."""
    peer = ep("openai", "openinference.instrumentation.openai:OpenAIInstrumentor")
    with caplog.at_level("INFO", logger="rag_otel"):
        RagOtelDistro().load_instrumentor(peer)
    assert "skipping openinference.instrumentation.openai:OpenAIInstrumentor" in caplog.text
    from openinference.instrumentation.openai import OpenAIInstrumentor as PeerInstrumentor

    assert not PeerInstrumentor().is_instrumented_by_opentelemetry


def test_a_peer_entry_point_spelt_with_a_dash_is_skipped_too(caplog: pytest.LogCaptureFixture) -> None:
    """OpenLLMetry names its LlamaIndex entry point ``llama-index`` (ours: ``llama_index``): it was loaded
    beside rag-otel's LlamaIndex instrumentor, doubling every query engine's spans."""
    peer = ep("llama-index", "opentelemetry.instrumentation.llamaindex:LlamaIndexInstrumentor")
    with caplog.at_level("INFO", logger="rag_otel"):
        RagOtelDistro().load_instrumentor(peer)
    assert "skipping opentelemetry.instrumentation.llamaindex:LlamaIndexInstrumentor" in caplog.text
    from opentelemetry.instrumentation.llamaindex import LlamaIndexInstrumentor as PeerInstrumentor

    assert not PeerInstrumentor().is_instrumented_by_opentelemetry
