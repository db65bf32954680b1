"""Realistic OTLP trace requests from a RAG app, for benchmarks: reusable, deterministic.

Each trace has 6 spans as our SDK (plus FastAPI instrumentation) emits them: ``POST /ask``
(SERVER) -> ``rag.query`` -> ``retrieval faiss`` -> ``embeddings ...``, ``rerank``,
``chat gpt-4o-mini``; content captured (``scoring_only``); texts are random words so no cache
helps.  ``make_requests`` returns serialized ``ExportTraceServiceRequest`` bodies, the way an
SDK's batch processor sends them (one resource, one scope, many traces per request).
"""

from __future__ import annotations

import json
import random
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans, Span

SPANS_PER_TRACE = 6
T0 = 1_700_000_000_000_000_000
WORDS = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "paris", "france", "capital", "river",
    "city", "museum", "train", "ticket", "refund", "policy", "account", "password", "invoice", "order", "shipping",
    "warranty", "battery", "screen", "model", "price", "plan", "storage", "upgrade", "cancel", "support", "email",
    "phone", "address", "weekend", "holiday", "office", "hours",
]


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)) + "."


def add_trace(ss: ScopeSpans, rng: random.Random, trace_no: int, server: ScopeSpans | None = None,
              server_attrs: dict[str, Any] | None = None) -> None:
    """Append one 6-span RAG trace (ids derived from ``trace_no``) to ``ss``; its server span goes to
    ``server`` instead when given (the web framework's instrumentation scope), with ``server_attrs`` added."""
    tid = trace_no.to_bytes(16, "big")

    def span(n: int, parent: int, name: str, kind: int, ms: int, attrs: dict[str, Any]) -> None:
        (server if server is not None and n == 1 else ss).spans.append(Span(
            trace_id=tid, span_id=(trace_no * 8 + n).to_bytes(8, "big"),
            parent_span_id=(trace_no * 8 + parent).to_bytes(8, "big") if parent else b"",
            name=name, kind=kind, start_time_unix_nano=T0, end_time_unix_nano=T0 + ms * 1_000_000,
            attributes=[_kv(k, v) for k, v in attrs.items()]))

    docs = json.dumps([{"id": f"d{i}", "score": round(rng.random(), 3), "content": _text(rng, 60)} for i in range(3)])
    span(3, 2, "retrieval faiss", 3, 40, {"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "faiss",
                                          "gen_ai.request.top_k": 3, "gen_ai.retrieval.documents": docs})
    span(4, 3, "embeddings text-embedding-3-small", 3, 20, {
        "gen_ai.operation.name": "embeddings", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "text-embedding-3-small", "gen_ai.usage.input_tokens": 14})
    span(5, 2, "rerank", 1, 30, {"rag.rerank.model": "bge-reranker", "rag.rerank.top_n": 3})
    span(6, 2, "chat gpt-4o-mini", 3, 900, {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 900, "gen_ai.usage.output_tokens": 60,
        "gen_ai.response.finish_reasons": "stop", "server.address": "api.example", "server.port": 443})
    span(2, 1, "rag.query", 1, 1000, {"rag.query.text": _text(rng, 10), "rag.answer.text": _text(rng, 30),
                                      "rag.content.capture": "scoring_only", "user.id": f"u{rng.randrange(50)}",
                                      "session.id": "s1", "rag.documents.count": 3})
    span(1, 0, "POST /ask", 2, 1010, {"http.request.method": "POST", "http.route": "/ask",
                                      "http.response.status_code": 200, "url.scheme": "http",
                                      **(server_attrs or {})})


def make_requests(n_requests: int, traces_per_request: int = 50, seed: int = 7) -> list[bytes]:
    """Serialized ExportTraceServiceRequests of ``traces_per_request`` 6-span traces each."""
    rng = random.Random(seed)
    bodies = []
    trace_no = 1
    for _ in range(n_requests):
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.attributes.extend([_kv("service.name", "rag-app"), _kv("service.version", "1.2.3"),
                                       _kv("host.name", "app-1"), _kv("telemetry.sdk.language", "python")])
        ss = rs.scope_spans.add()
        ss.scope.name = "rag_otel"
        for _ in range(traces_per_request):
            add_trace(ss, rng, trace_no)
            trace_no += 1
        bodies.append(req.SerializeToString())
    return bodies


# --- the realistic mix: the same RAG work inside a real web app's trace --------------------------------------

PLUMBING_PER_TRACE = 20  # non-GenAI spans per mixed trace (the server span included)
MIXED_SPANS_PER_TRACE = SPANS_PER_TRACE - 1 + PLUMBING_PER_TRACE
_SCOPES = ("rag_otel", "opentelemetry.instrumentation.fastapi", "opentelemetry.instrumentation.httpx",
           "opentelemetry.instrumentation.sqlalchemy", "opentelemetry.instrumentation.redis")
_SQL = ("SELECT conversations.id, conversations.user_id, conversations.created_at FROM conversations "
        "WHERE conversations.session_id = %(session_id)s ORDER BY conversations.created_at DESC LIMIT %(limit)s")


def add_mixed_trace(scopes: list[ScopeSpans], rng: random.Random, trace_no: int) -> None:
    """One RAG trace as a FastAPI app streaming its answer emits it: the six-span RAG trace with its
    server span in the FastAPI scope (people from the request headers on it), plus 19 more non-GenAI
    spans: 13 per-chunk ``http send`` and one ``http receive`` (FastAPI), 2 HTTP client calls (httpx),
    2 database queries (SQLAlchemy), 1 cache read (redis)."""
    ours, web, http, db, cache = scopes
    tid = trace_no.to_bytes(16, "big")
    server_id = (trace_no * 8 + 1).to_bytes(8, "big")
    add_trace(ours, rng, trace_no, server=web, server_attrs={
        "url.path": "/ask", "server.address": "rag.internal", "network.protocol.version": "1.1",
        "client.address": "10.0.3.17", "user_agent.original": "python-httpx/0.27.0",
        "user.id": f"u{rng.randrange(50)}", "session.id": f"s{rng.randrange(20)}"})
    n = 0

    def span(ss: ScopeSpans, name: str, kind: int, ms: int, attrs: dict[str, Any]) -> None:
        nonlocal n
        n += 1
        ss.spans.append(Span(
            trace_id=tid, span_id=((1 << 62) | trace_no * 32 + n).to_bytes(8, "big"), parent_span_id=server_id,
            name=name, kind=kind, start_time_unix_nano=T0 + n * 1_000_000, end_time_unix_nano=T0 + (n + ms) * 1_000_000,
            attributes=[_kv(k, v) for k, v in attrs.items()]))

    span(web, "POST /ask http receive", 1, 1, {"asgi.event.type": "http.request"})
    span(cache, "GET", 3, 1, {"db.system": "redis", "db.statement": f"GET session:{trace_no}",
                               "db.redis.database_index": 0, "net.peer.name": "redis", "net.peer.port": 6379})
    for _ in range(2):
        span(db, "SELECT app", 3, 3, {"db.system": "postgresql", "db.name": "app", "db.statement": _SQL,
                                      "db.user": "app", "net.peer.name": "postgres", "net.peer.port": 5432})
    for path in ("/v1/flags", "/v1/audit"):
        span(http, "POST", 3, 8, {"http.request.method": "POST", "url.full": f"http://internal.example{path}",
                                  "server.address": "internal.example", "server.port": 80,
                                  "http.response.status_code": 200, "network.protocol.version": "1.1"})
    span(web, "POST /ask http send", 1, 0, {"asgi.event.type": "http.response.start", "http.response.status_code": 200})
    for _ in range(12):
        span(web, "POST /ask http send", 1, 0, {"asgi.event.type": "http.response.body"})


def make_mixed_requests(n_requests: int, traces_per_request: int = 20, seed: int = 7) -> list[bytes]:
    """Serialized requests of ``traces_per_request`` mixed traces (25 spans each: 5 RAG, 20 not), one
    ScopeSpans per instrumentation scope, as an SDK's batch processor groups them."""
    rng = random.Random(seed)
    bodies = []
    trace_no = 1
    for _ in range(n_requests):
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.attributes.extend([_kv("service.name", "rag-app"), _kv("service.version", "1.2.3"),
                                       _kv("host.name", "app-1"), _kv("telemetry.sdk.language", "python")])
        scopes = []
        for name in _SCOPES:
            ss = rs.scope_spans.add()
            ss.scope.name = name
            scopes.append(ss)
        for _ in range(traces_per_request):
            add_mixed_trace(scopes, rng, trace_no)
            trace_no += 1
        bodies.append(req.SerializeToString())
    return bodies
