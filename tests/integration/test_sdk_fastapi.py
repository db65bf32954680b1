"""A real FastAPI app served by uvicorn on a free port, queried over HTTP: server spans from
opentelemetry-instrumentation-fastapi are the parents of rag.query, and the identity headers
(configurable names) reach the query span, for async, sync (thread pool) and streaming endpoints."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import fastapi
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import rag_otel
from rag_otel import ModelObservation, configure, rag_query, retrieve, semconv
from rag_otel.sdk import setup
from tests.support.otel_globals import fresh_otel_globals

QUIET = {"traces_exporter": "none", "metrics_exporter": "none", "logs_exporter": "none", "system_metrics": False}


@pytest.fixture(autouse=True)
def fresh_globals(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("RAG_OTEL_CONFIG", raising=False)
    with fresh_otel_globals():
        yield


def build_app() -> FastAPI:
    app = fastapi.FastAPI()  # looked up now: configure() may have patched the class

    @retrieve("kb", top_k=1)
    def search(q: str) -> list[dict]:
        return [{"id": "doc-1", "score": 0.8}]

    @app.get("/ask")
    async def ask(q: str) -> dict:
        with rag_query(q) as r:
            search(q)
            await asyncio.sleep(0)
        return {"trace_id": f"{r.span.get_span_context().trace_id:032x}"}

    @app.get("/ask-sync")
    def ask_sync(q: str) -> dict:  # FastAPI runs it in its thread pool
        with rag_query(q):
            search(q)
        return {"ok": True}

    @rag_query(features=["streaming"])
    async def answer_stream(q: str):
        for word in ("Paris", " is", " nice"):
            await asyncio.sleep(0)
            yield word

    @app.get("/stream")
    async def stream(q: str) -> StreamingResponse:
        return StreamingResponse(answer_stream(q), media_type="text/plain")

    return app


class Server:
    """uvicorn on a socket bound to 127.0.0.1:0, in a thread; stopped by should_exit."""

    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])))

    def __enter__(self) -> Server:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            self.thread.join(0.025)
        raise RuntimeError("uvicorn did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def memory_spans(handle: setup.TelemetryHandle) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    handle.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def by_trace(exporter: InMemorySpanExporter) -> dict[int, dict[str, object]]:
    out: dict[int, dict[str, object]] = {}
    for s in exporter.get_finished_spans():
        out.setdefault(s.context.trace_id, {})[s.name] = s
    return out


def test_server_span_is_the_parent_and_headers_fill_the_query() -> None:
    h = configure(instrument=["fastapi"], **QUIET)
    spans = memory_spans(h)
    headers = {"x-user-id": "alice", "x-session-id": "s-1", "x-conversation-id": "c-9",
               "x-rag-features": "follow-up, citations"}
    with Server(build_app()) as srv, httpx.Client(base_url=srv.url) as client:
        r1 = client.get("/ask", params={"q": "hi"}, headers=headers)
        r2 = client.get("/ask", params={"q": "anonymous"})  # same keep-alive connection, no headers
        r3 = client.get("/ask-sync", params={"q": "sync"}, headers={"x-user-id": "bob"})
        r4 = client.get("/stream", params={"q": "stream"}, headers={"x-session-id": "s-2"})
    assert [r.status_code for r in (r1, r2, r3, r4)] == [200] * 4
    assert r4.text == "Paris is nice"
    traces = list(by_trace(spans).values())
    assert len(traces) == 4
    for tr in traces:
        server = next(s for s in tr.values() if s.kind == SpanKind.SERVER)
        root = tr["rag.query"]
        assert root.parent.span_id == server.context.span_id
        if "retrieval kb" in tr:  # the streaming endpoint does no retrieval
            assert tr["retrieval kb"].parent.span_id == root.context.span_id
    first = by_trace(spans)[int(r1.json()["trace_id"], 16)]["rag.query"]
    assert first.attributes[semconv.USER_ID] == "alice"
    assert first.attributes[semconv.SESSION_ID] == "s-1"
    assert first.attributes[semconv.GEN_AI_CONVERSATION_ID] == "c-9"
    assert tuple(first.attributes[semconv.RAG_FEATURES]) == ("follow-up", "citations")
    anon = by_trace(spans)[int(r2.json()["trace_id"], 16)]["rag.query"]
    assert semconv.USER_ID not in anon.attributes and semconv.SESSION_ID not in anon.attributes  # no leak
    roots = {s.attributes.get(semconv.USER_ID) or s.attributes.get(semconv.SESSION_ID): s
             for tr in traces for s in tr.values() if s.name == "rag.query"}
    assert "bob" in roots  # the sync endpoint, in the thread pool, saw its header
    streamed = roots["s-2"]
    assert tuple(streamed.attributes[semconv.RAG_FEATURES]) == ("streaming",)


def test_header_names_are_configurable() -> None:
    cfg = ModelObservation()
    cfg.telemetry.request_headers.user_id = "X-End-User"
    h = configure(config=cfg, instrument=["fastapi"], **QUIET)
    spans = memory_spans(h)
    with Server(build_app()) as srv, httpx.Client(base_url=srv.url) as client:
        r = client.get("/ask", params={"q": "hi"}, headers={"x-end-user": "carol", "x-user-id": "ignored"})
    root = by_trace(spans)[int(r.json()["trace_id"], 16)]["rag.query"]
    assert root.attributes[semconv.USER_ID] == "carol"


def test_instrument_app_for_an_app_created_before_configure() -> None:
    app = build_app()  # created first: the class-level patch of configure() cannot reach it
    h = configure(instrument=[], **QUIET)
    spans = memory_spans(h)
    rag_otel.instrument_app(app)
    with Server(app) as srv, httpx.Client(base_url=srv.url) as client:
        r = client.get("/ask", params={"q": "hi"}, headers={"x-user-id": "dave"})
    tr = by_trace(spans)[int(r.json()["trace_id"], 16)]
    server = next(s for s in tr.values() if s.kind == SpanKind.SERVER)
    assert tr["rag.query"].parent.span_id == server.context.span_id
    assert tr["rag.query"].attributes[semconv.USER_ID] == "dave"
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.uninstrument_app(app)


def test_headers_are_read_under_fastapis_own_telemetry_too() -> None:
    # FastAPI >= 0.16x traces requests itself when the instrumentation is not used; the query then
    # reads the identity headers from FastAPI's request telemetry.
    h = configure(instrument=[], **QUIET)
    spans = memory_spans(h)
    app = build_app()
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
    with Server(app) as srv, httpx.Client(base_url=srv.url) as client:
        r = client.get("/ask", params={"q": "hi"}, headers={"x-user-id": "erin", "x-rag-features": "citations"})
    tr = by_trace(spans)[int(r.json()["trace_id"], 16)]
    assert any(s.kind == SpanKind.SERVER for s in tr.values())  # FastAPI's own server span
    assert tr["rag.query"].attributes[semconv.USER_ID] == "erin"
    assert tuple(tr["rag.query"].attributes[semconv.RAG_FEATURES]) == ("citations",)


def _streamed_answer_spans(cfg: ModelObservation | None) -> list[str]:
    h = configure(config=cfg or ModelObservation(), instrument=["fastapi"], **QUIET)
    spans = memory_spans(h)
    app = fastapi.FastAPI()

    async def words():
        for i in range(40):
            await asyncio.sleep(0)
            yield f"word{i} "

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(words(), media_type="text/plain")

    with Server(app) as srv, httpx.Client(base_url=srv.url) as client:
        body = client.get("/stream").text
    assert body == "".join(f"word{i} " for i in range(40))
    names = [s.name for s in spans.get_finished_spans()]
    h.shutdown()
    return names


def test_streamed_response_has_no_per_chunk_send_spans_by_default() -> None:
    names = _streamed_answer_spans(None)
    assert "GET /stream" in names
    assert not [n for n in names if n.endswith(("http send", "http receive"))], names


def test_per_chunk_spans_come_back_when_configured() -> None:
    cfg = ModelObservation()
    cfg.telemetry.fastapi_exclude_spans = []
    names = _streamed_answer_spans(cfg)
    assert len([n for n in names if n.endswith("http send")]) >= 40  # one per chunk, as before
