"""The exit bound's settings and the signal chaining's bookkeeping (sdk/shutdown.py); the real
stops are in tests/integration/test_sdk_shutdown_signals.py."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag_otel import configure, rag_query
from rag_otel.sdk import shutdown
from tests.support.otel_globals import fresh_otel_globals


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("RAG_OTEL_SHUTDOWN_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT", "RAG_OTEL_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    for var in ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER"):
        monkeypatch.setenv(var, "none")
    with fresh_otel_globals():
        yield


def test_the_bound_is_the_otlp_timeout_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert shutdown.bound_seconds(None) == 10.0  # the OTLP exporters' own default
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "4")
    assert shutdown.bound_seconds(None) == 4.0
    assert shutdown.bound_seconds(2.5) == 2.5  # telemetry.shutdown_timeout
    monkeypatch.setenv("RAG_OTEL_SHUTDOWN_TIMEOUT", "1.5")
    assert shutdown.bound_seconds(2.5) == 1.5


def test_a_bad_bound_is_reported_and_the_next_setting_applies(monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("RAG_OTEL_SHUTDOWN_TIMEOUT", "ten")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "3")
    assert shutdown.bound_seconds(None) == 3.0
    assert "RAG_OTEL_SHUTDOWN_TIMEOUT='ten' is not a number of seconds" in caplog.text


def test_the_config_key_bounds_handle_shutdown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER"):
        monkeypatch.setenv(var, "otlp")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once closed
    cfg = tmp_path / "rag-otel.yaml"
    cfg.write_text(f"model_observation:\n  telemetry: {{shutdown_timeout: 0.5, endpoint: '{dead}'}}\n")
    h = configure(config=cfg, system_metrics=False, instrument=[])
    with rag_query("q", user_id="u"):
        pass
    t0 = time.monotonic()
    h.shutdown()  # the exporters would retry for up to 10 s
    assert time.monotonic() - t0 < 1.2


def test_the_app_keeps_seeing_its_own_handlers() -> None:
    configure(system_metrics=False, instrument=[])
    # Python's own SIGINT handler is left as it is (Ctrl-C's KeyboardInterrupt ends in the exit drain)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # ours runs first, the app sees the default
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN  # ignored stays ignored
    finally:
        signal.signal(signal.SIGHUP, before)
    # signals we do not stop on pass straight through
    handler = lambda *_: None  # noqa: E731
    before = signal.signal(signal.SIGUSR1, handler)
    try:
        assert signal.getsignal(signal.SIGUSR1) is handler
    finally:
        signal.signal(signal.SIGUSR1, before)


def test_configure_outside_the_main_thread_does_not_fail() -> None:
    """Handlers can only be set from the main thread: the ones set later are still chained."""
    result: list[object] = []
    t = threading.Thread(target=lambda: result.append(configure(system_metrics=False, instrument=[])))
    t.start()
    t.join(10)
    assert result and result[0] is not None
    errors: list[BaseException] = []

    def set_from_thread() -> None:
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        except ValueError as e:  # the app's own mistake is reported as Python reports it
            errors.append(e)

    t = threading.Thread(target=set_from_thread)
    t.start()
    t.join(10)
    assert len(errors) == 1 and "main thread" in str(errors[0])
