"""Spans of HTTP/database instrumentations pass through the processor unread and byte-identical (issue 15).

Real OTel SDK spans are not needed to show this: the spans are built as the FastAPI, SQLAlchemy and
httpx instrumentations write them (scope names, kinds, attribute names) and fed to a real Pipeline.
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from rag_otel.pricing import load_prices
from rag_otel.processor.assembly import TraceAssembler
from rag_otel.processor.enrich import any_value
from rag_otel.processor.normalize import normalize
from rag_otel.processor.passthrough import ASGI_MESSAGES, PASS_OVER, READ, scope_rule
from rag_otel.records import QueryRecord
from tests.unit.test_processor_pipeline import T0, attrs, make, wait_spans

FASTAPI, SQLALCHEMY, HTTPX = ("opentelemetry.instrumentation." + n for n in ("fastapi", "sqlalchemy", "httpx"))
OPENAI = "opentelemetry.instrumentation.openai_v2"
SERVER, INTERNAL, CLIENT, CONSUMER = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_INTERNAL, Span.SPAN_KIND_CLIENT, 5


def app_request(top: tuple[str, int, str, dict[str, Any]] = (FASTAPI, SERVER, "POST /ask", {})) -> Any:
    """One trace of a FastAPI app without a rag.query span: server span (people from the request headers),
    a streamed answer's http send spans, a database query, an HTTP client call, a retrieval and a chat call."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name", value=any_value("app"))
    scopes: dict[str, Any] = {}

    def add(scope: str, sid: int, parent: int, name: str, kind: int, a: dict[str, Any]) -> None:
        if scope not in scopes:
            scopes[scope] = rs.scope_spans.add()
            scopes[scope].scope.name = scope
        scopes[scope].spans.append(Span(
            trace_id=b"\x01" * 16, span_id=sid.to_bytes(8, "big"), parent_span_id=parent.to_bytes(8, "big") if parent
            else b"", name=name, kind=kind, start_time_unix_nano=T0 + sid * 1000, end_time_unix_nano=T0 + 10 ** 9,
            attributes=[KeyValue(key=k, value=any_value(v)) for k, v in a.items()]))

    scope, kind, name, extra = top
    add(scope, 1, 0, name, kind, {"http.request.method": "POST", "http.route": "/ask", "user.id": "u7",
                                  "session.id": "s3", **extra})
    add(SQLALCHEMY, 2, 1, "SELECT app", CLIENT, {"db.system": "postgresql", "db.statement": "SELECT 1 FROM users"})
    add(HTTPX, 3, 1, "POST", CLIENT, {"http.request.method": "POST", "url.full": "http://flags.internal/v1"})
    add("rag_otel", 4, 1, "retrieval faiss", INTERNAL, {
        "gen_ai.operation.name": "retrieval", "gen_ai.retrieval.query.text": "Capital of France?",
        "gen_ai.retrieval.documents": json.dumps([{"id": "d1", "score": 0.9, "content": "Paris is the capital."}])})
    add(OPENAI, 5, 1, "chat gpt-4o-mini", CLIENT, {
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 10, "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
            {"type": "text", "content": "Paris."}]}])})
    for sid in (6, 7, 8):
        add(FASTAPI, sid, 1, "POST /ask http send", INTERNAL, {"asgi.event.type": "http.response.body"})
    return req


def test_plumbing_spans_leave_byte_identical_and_the_trace_still_makes_its_record() -> None:
    p, down, scorer = make()
    records: list[QueryRecord] = []
    p.on_record.append(records.append)
    req = app_request()
    received = {s.span_id: s.SerializeToString() for ss in req.resource_spans[0].scope_spans for s in ss.spans
                if ss.scope.name in (SQLALCHEMY, HTTPX) or s.name.endswith("http send")}
    assert len(received) == 5
    assert not p.offer_traces(req).full
    wait_spans(p, down, 8)
    p.shutdown(2)
    out = {s.span_id: s for s in down.spans}
    assert {sid: out[sid].SerializeToString() for sid in received} == received
    (rec,) = records
    assert (rec.query_text, rec.answer_text) == ("Capital of France?", "Paris.")
    assert (rec.user_id, rec.session_id) == ("u7", "s3")  # from the server span: read, not passed over
    assert rec.root_span_id == (1).to_bytes(8, "big").hex() and rec.span_count == 8
    assert {s.name for s in rec.spans} >= {"SELECT app", "POST", "POST /ask http send"}  # the trace's shape stays
    assert scorer.calls == [("Capital of France?", "Paris.", ["Paris is the capital."])]
    root = attrs(out[(1).to_bytes(8, "big")])
    assert root["rag.quality.status"] == "scored"
    retrieval = attrs(out[(4).to_bytes(8, "big")])
    assert json.loads(retrieval["gen_ai.retrieval.documents"]) == [{"id": "d1", "score": 0.9}]  # still stripped


def traces_of(req: Any) -> Any:
    asm = TraceAssembler(0.0, 30.0, 100)
    asm.add_request(req.resource_spans)
    (trace,) = asm.expire(1e18)
    return trace


def test_normalize_does_not_index_plumbing_spans_for_stripping() -> None:
    norm = normalize(traces_of(app_request()), load_prices())
    assert norm is not None
    indexed = {span.name for span, *_ in norm.indexes}
    assert indexed == {"POST /ask", "retrieval faiss", "chat gpt-4o-mini"}


def test_a_plumbing_span_that_is_the_topmost_is_read_as_the_root() -> None:
    # a partial trace whose topmost span is one that is otherwise passed over (an ASGI message span, an HTTP
    # client call): it is the root, so it is read after all (people, content to strip)
    for top in ((FASTAPI, INTERNAL, "POST /ask http receive"), (HTTPX, CLIENT, "POST")):
        norm = normalize(traces_of(app_request((*top, {"user.id": "u9"}))), load_prices())
        assert norm is not None and norm.record.root_span_id == (1).to_bytes(8, "big").hex()
        assert (norm.record.user_id, norm.record.session_id) == ("u9", "s3")
        assert top[2] in {span.name for span, *_ in norm.indexes}


def test_content_an_app_sets_on_a_span_wrapping_its_code_is_stripped() -> None:
    # the app's code runs under these spans, so `trace.get_current_span().set_attribute(...)` lands on them: a
    # FastAPI request span that is INTERNAL (an outer ASGI middleware made the SERVER span) and a Celery task
    # (CONSUMER) the request handed its question to; neither may leave with the content it was given
    req = app_request()
    rs = req.resource_spans[0]
    nested = rs.scope_spans.add()
    nested.scope.name = FASTAPI
    celery = rs.scope_spans.add()
    celery.scope.name = "opentelemetry.instrumentation.celery"
    for ss, sid, name, kind, key in ((nested, 9, "POST /ask", INTERNAL, "gen_ai.prompt"),
                                     (celery, 10, "run/answer_question", CONSUMER, "rag.answer.text")):
        ss.spans.append(Span(trace_id=b"\x01" * 16, span_id=sid.to_bytes(8, "big"), parent_span_id=(1).to_bytes(
            8, "big"), name=name, kind=kind, start_time_unix_nano=T0 + 50_000, end_time_unix_nano=T0 + 10 ** 9,
            attributes=[KeyValue(key=key, value=any_value("secret text")), KeyValue(key="app.step", value=any_value(
                "answer"))]))
    p, down, _ = make()
    assert not p.offer_traces(req).full
    wait_spans(p, down, 10)
    p.shutdown(2)
    out = {s.span_id: attrs(s) for s in down.spans}
    assert out[(9).to_bytes(8, "big")] == {"app.step": "answer"}
    assert out[(10).to_bytes(8, "big")] == {"app.step": "answer"}
    assert all("secret text" not in str(a) for a in out.values())


def test_genai_scopes_are_never_passed_over() -> None:
    assert scope_rule(SQLALCHEMY) == PASS_OVER and scope_rule(FASTAPI) == ASGI_MESSAGES
    for scope in ("celery", "asyncio", "threading", "click", "kafka", "jinja2", "flask", "django"):  # app code runs
        assert scope_rule("opentelemetry.instrumentation." + scope) == READ, scope  # under their spans
    for scope in (OPENAI, "opentelemetry.instrumentation.botocore",  # Bedrock GenAI spans
                  "opentelemetry.instrumentation.langchain", "opentelemetry.instrumentation.chromadb",  # OpenLLMetry
                  "openinference.instrumentation.llama_index", "rag_otel", "my_app"):
        assert scope_rule(scope) == READ, scope
