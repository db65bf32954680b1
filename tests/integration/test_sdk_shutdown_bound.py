"""``shutdown()`` is bounded with the collector down, signal handlers are chained rather than
replaced, and a provider's absurd token count does not cost an export (issues 13.7 and 16).

Real OTLP exporters against a real receiver (tests/support/otlp_sink.py) or a closed port; real
signals sent to this process."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator

import pytest

from rag_otel import configure, generate, rag_query, record_feedback, semconv
from tests.support.fake_openai import FakeOpenAI
from tests.support.otel_globals import fresh_otel_globals
from tests.support.otlp_sink import OtlpSink

INT64_MAX = 2**63 - 1  # the largest integer OTLP carries


@pytest.fixture(autouse=True)
def fresh_globals(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("RAG_OTEL_CONFIG", "OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER",
                "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL",
                "OTEL_EXPORTER_OTLP_TIMEOUT", "RAG_OTEL_SHUTDOWN_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "60000")  # only the shutdown exports metrics
    with fresh_otel_globals():
        yield


def dead_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed when we return: nothing listens


def one_query() -> None:
    with rag_query("q", user_id="u1") as q, generate("gpt-4o-mini", provider="openai") as g:
        g.set_usage(input_tokens=120, output_tokens=30)
    record_feedback(q, thumbs=True)


def timed_shutdown(h: object) -> float:
    t0 = time.monotonic()
    h.shutdown()  # type: ignore[attr-defined]
    return time.monotonic() - t0


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_shutdown_with_the_collector_down_takes_at_most_the_otlp_timeout(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    """Spans, metrics and logs all wait to be exported; unbounded, each signal retried on its own
    (about 3 s each with a 4 s timeout, 11-23 s with the default 10 s)."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "4")
    h = configure(endpoint=dead_endpoint(), protocol=protocol, system_metrics=False, instrument=[])
    one_query()
    assert timed_shutdown(h) < 4 + 0.75


def test_a_configured_bound_cuts_the_exporters_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_OTEL_SHUTDOWN_TIMEOUT", "1")  # the exporters keep their 10 s timeout
    h = configure(endpoint=dead_endpoint(), system_metrics=False, instrument=[])
    one_query()
    assert timed_shutdown(h) < 1 + 0.75


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_a_hung_collector_is_abandoned_at_the_bound(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    """A collector that accepts connections and never answers: the export in flight would wait
    its full 10 s timeout; the drain leaves it at the bound."""
    monkeypatch.setenv("RAG_OTEL_SHUTDOWN_TIMEOUT", "1")
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)  # the kernel completes the handshakes; nobody reads
        h = configure(endpoint=f"http://127.0.0.1:{hung.getsockname()[1]}", protocol=protocol,
                      system_metrics=False, instrument=[])
        one_query()
        assert timed_shutdown(h) < 1 + 0.75


def test_shutdown_with_the_collector_up_exports_all_three_signals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_OTEL_SHUTDOWN_TIMEOUT", "5")
    with OtlpSink() as sink:
        h = configure(service_name="bounded", endpoint=sink.grpc_endpoint, system_metrics=False, instrument=[])
        one_query()
        assert timed_shutdown(h) < 2  # a healthy collector: nowhere near the bound
        assert {s.name for s in sink.spans()} == {"rag.query", "chat gpt-4o-mini"}
        assert {"rag.queries", "gen_ai.client.token.usage"} <= sink.metric_names()
        assert [r.event_name for r in sink.logs()] == ["rag.feedback"]


def test_app_signal_handlers_are_chained_not_replaced() -> None:
    """A handler the app installs after configure() (as uvicorn does) is the one called and the one
    ``getsignal`` shows; what it records before the stop starts exporting at the signal."""
    with OtlpSink() as sink:
        h = configure(service_name="chained", endpoint=sink.grpc_endpoint, system_metrics=False, instrument=[])
        seen: list[int] = []
        app_handler = lambda signum, frame: seen.append(signum)  # noqa: E731
        before = signal.signal(signal.SIGTERM, app_handler)
        try:
            assert signal.getsignal(signal.SIGTERM) is app_handler
            one_query()
            os.kill(os.getpid(), signal.SIGTERM)
            deadline = time.monotonic() + 5
            while not seen and time.monotonic() < deadline:
                time.sleep(0.01)
            assert seen == [signal.SIGTERM]
            # exported in the background from the signal on (the schedule would wait 5 s)
            assert {s.name for s in sink.wait_for_spans(count=2, timeout=3)} == {"rag.query", "chat gpt-4o-mini"}
        finally:
            assert signal.signal(signal.SIGTERM, before) is app_handler  # the app gets its own handler back
        assert signal.getsignal(signal.SIGTERM) is before
        h.shutdown()


def test_a_token_count_beyond_int64_is_clamped_and_costs_no_export() -> None:
    """A provider answering ``completion_tokens = 2**70`` through the real openai SDK: the value is
    clamped and counted, and the span and the metrics holding it are still exported."""
    with OtlpSink() as sink, FakeOpenAI() as fake:
        h = configure(service_name="clamp", endpoint=sink.grpc_endpoint, system_metrics=False, instrument=["openai"])
        client = fake.client()
        with rag_query("q", user_id="u1"):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                           extra_headers={"x-fake-output-tokens": str(2**70)})
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
        h.shutdown()
        chats = [s for s in sink.spans() if s.name == "chat gpt-4o-mini"]
        assert sorted(s.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] for s in chats) == [4, INT64_MAX]
        (clamped,) = [s for s in chats if s.attributes.get(semconv.RAG_USAGE_CLAMPED)]
        assert clamped.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == INT64_MAX
        (normal,) = [s for s in chats if s is not clamped]
        # no cost from a bogus count (it would swamp every cost total); the other call is billed
        assert semconv.GEN_AI_USAGE_COST not in clamped.attributes and normal.attributes[semconv.GEN_AI_USAGE_COST] > 0
        (root,) = [s for s in sink.spans() if s.name == "rag.query"]
        assert root.attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(normal.attributes[semconv.GEN_AI_USAGE_COST])
        (counter,) = [m for m in sink.metrics() if m.name == semconv.METRIC_RAG_USAGE_CLAMPED]
        reasons = [a[semconv.RAG_CLAMP_REASON] for a in counter.point_attributes()]
        assert reasons == ["above_int64_max"] and counter.points[0].as_int == 1
        (usage,) = [m for m in sink.metrics() if m.name == semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE]
        assert sum(p.count for p in usage.points) == 4  # input and output of both calls
