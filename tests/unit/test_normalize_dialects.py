"""Normalization: our spans, GenAI (current + deprecated), OpenInference and OpenLLMetry -> one record."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from rag_otel.pricing import load_prices
from rag_otel.processor.assembly import Origin, Trace
from rag_otel.processor.enrich import any_value
from rag_otel.processor.normalize import normalize

PRICES = load_prices()
T0 = 1_700_000_000_000_000_000
TRACE_ID = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")


def resource(service: str = "rag-app") -> Resource:
    return Resource(attributes=[KeyValue(key="service.name", value=any_value(service))])


ORIGIN = Origin(resource(), "", InstrumentationScope(name="test"), "")


def span(sid: int, name: str, attrs: dict[str, Any], parent: int = 0, start_ms: int = 0, end_ms: int = 100,
         error: bool = False) -> Span:
    s = Span(
        trace_id=TRACE_ID, span_id=sid.to_bytes(8, "big"), parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name=name, start_time_unix_nano=T0 + start_ms * 1_000_000, end_time_unix_nano=T0 + end_ms * 1_000_000,
        attributes=[KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()],
    )
    if error:
        s.status.code = Status.STATUS_CODE_ERROR
        s.status.message = "boom"
    return s


def trace_of(*spans: Span, root_seen: bool = True) -> Trace:
    return Trace(TRACE_ID, spans=[(ORIGIN, s) for s in spans], root_seen=root_seen)


def test_our_own_spans_with_content() -> None:
    docs = [{"id": "d1", "score": 0.9, "content": "Paris is the capital of France."}, {"id": "d2", "score": 0.5}]
    t = trace_of(
        span(1, "rag.query", {"rag.query.text": "What is the capital of France?", "rag.answer.text": "Paris.",
                              "user.id": "u1", "session.id": "s1", "gen_ai.conversation.id": "c1",
                              "rag.features": ["rerank", "hybrid"], "rag.content.capture": "scoring_only"},
             end_ms=1500),
        span(2, "retrieval faiss",
             {"gen_ai.operation.name": "retrieval", "gen_ai.retrieval.documents": json.dumps(docs)},
             parent=1, start_ms=10, end_ms=50),
        span(3, "embeddings text-embedding-3-small", {"gen_ai.operation.name": "embeddings",
             "gen_ai.request.model": "text-embedding-3-small", "gen_ai.usage.input_tokens": 1000}, parent=2,
             start_ms=11, end_ms=20),
        span(4, "chat gpt-4o-mini", {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
             "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
             "gen_ai.usage.input_tokens": 1_000_000, "gen_ai.usage.output_tokens": 100_000,
             "gen_ai.response.time_to_first_chunk": 0.25}, parent=1, start_ms=60, end_ms=1400),
    )
    n = normalize(t, PRICES)
    assert n is not None
    r = n.record
    assert (r.query_text, r.answer_text) == ("What is the capital of France?", "Paris.")
    assert [(s.id, s.score, s.content) for s in r.sources] == [
        ("d1", 0.9, "Paris is the capital of France."), ("d2", 0.5, None)]
    # the model as requested (one name per model); the dated snapshot the provider answered is a detail
    assert r.models == ["gpt-4o-mini"] and r.model == "gpt-4o-mini"
    assert r.response_models == ["gpt-4o-mini-2024-07-18"]
    assert r.provider == "openai"
    assert (r.input_tokens, r.output_tokens) == (1_001_000, 100_000)
    # 1M in * 0.15 + 100k out * 0.60/M + 1000 embedding tokens * 0.02/M
    assert r.cost_usd == pytest.approx(0.15 + 0.06 + 0.00002)
    assert r.duration_s == pytest.approx(1.5)
    assert (r.user_id, r.session_id, r.conversation_id) == ("u1", "s1", "c1")
    assert r.features == ["rerank", "hybrid"]
    assert r.time_to_first_chunk == 0.25
    assert r.service == "rag-app" and r.instrumentation == "rag_otel" and r.span_count == 4
    assert r.trace_id == TRACE_ID.hex() and r.root_span_id == (1).to_bytes(8, "big").hex()
    assert n.capture == "scoring_only"
    assert [u.model for u in n.usage] == ["text-embedding-3-small", "gpt-4o-mini"]


def test_cost_on_the_root_wins_and_unknown_models_leave_cost_unknown() -> None:
    chat = span(2, "chat x", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "no-such-model",
                              "gen_ai.usage.input_tokens": 10}, parent=1)
    n = normalize(trace_of(span(1, "rag.query", {}), chat), PRICES)
    assert n is not None and n.record.cost_usd is None
    n = normalize(trace_of(span(1, "rag.query", {"gen_ai.usage.cost": 0.5}), chat), PRICES)
    assert n is not None and n.record.cost_usd == 0.5


def test_deprecated_genai_names_and_messages_without_our_root() -> None:
    msgs_in = [{"role": "system", "parts": [{"type": "text", "content": "Use the context."}]},
               {"role": "user", "parts": [{"type": "text", "content": "How tall is Everest?"}]}]
    msgs_out = [{"role": "assistant", "parts": [{"type": "text", "content": "8,849 metres."}]}]
    t = trace_of(
        span(1, "POST /ask", {"http.route": "/ask"}, end_ms=900, error=True),
        span(2, "chat gpt-4o", {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
             "gen_ai.usage.prompt_tokens": 100, "gen_ai.usage.completion_tokens": 20,
             "gen_ai.input.messages": json.dumps(msgs_in), "gen_ai.output.messages": json.dumps(msgs_out)},
             parent=1, start_ms=5, end_ms=800),
    )
    n = normalize(t, PRICES)
    assert n is not None
    r = n.record
    assert r.instrumentation == "genai" and r.root_span_id == (1).to_bytes(8, "big").hex()
    assert (r.query_text, r.answer_text) == ("How tall is Everest?", "8,849 metres.")
    assert r.provider == "openai" and (r.input_tokens, r.output_tokens) == (100, 20)
    assert r.cost_usd == pytest.approx(100 * 2.5e-6 + 20 * 10e-6)
    assert r.status == "error" and r.error_type == "boom"


def test_openinference_attribute_set() -> None:
    t = trace_of(
        span(1, "query", {"openinference.span.kind": "CHAIN", "input.value": "Who wrote Hamlet?",
                          "output.value": "Shakespeare wrote Hamlet.", "session.id": "sess", "user.id": "alice"},
             end_ms=2000),
        span(2, "retrieve", {"openinference.span.kind": "RETRIEVER",
                             "retrieval.documents.0.document.id": "h1", "retrieval.documents.0.document.score": 0.8,
                             "retrieval.documents.0.document.content": "Hamlet is a tragedy by Shakespeare.",
                             "retrieval.documents.1.document.id": "h2", "retrieval.documents.1.document.score": 0.4},
             parent=1, start_ms=1),
        span(3, "llm", {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini", "llm.provider": "openai",
                        "llm.token_count.prompt": 200, "llm.token_count.completion": 10,
                        "llm.input_messages.0.message.role": "system",
                        "llm.input_messages.0.message.content": "Answer from context",
                        "llm.input_messages.1.message.role": "user",
                        "llm.input_messages.1.message.content": "Who wrote Hamlet?",
                        "llm.output_messages.0.message.role": "assistant",
                        "llm.output_messages.0.message.content": "Shakespeare."}, parent=1, start_ms=200),
    )
    n = normalize(t, PRICES)
    assert n is not None
    r = n.record
    assert r.instrumentation == "openinference"
    assert (r.query_text, r.answer_text) == ("Who wrote Hamlet?", "Shakespeare wrote Hamlet.")
    assert [(s.id, s.score, s.content) for s in r.sources] == [
        ("h1", 0.8, "Hamlet is a tragedy by Shakespeare."), ("h2", 0.4, None)]
    assert r.models == ["gpt-4o-mini"] and r.provider == "openai"
    assert (r.input_tokens, r.output_tokens) == (200, 10)
    assert (r.user_id, r.session_id) == ("alice", "sess")
    assert r.cost_usd == pytest.approx(200 * 0.15e-6 + 10 * 0.6e-6)


def test_openllmetry_attribute_set() -> None:
    t = trace_of(
        span(1, "rag_pipeline.workflow", {"traceloop.span.kind": "workflow",
             "traceloop.entity.input": json.dumps({"inputs": {"question": "Capital of Japan?"}}),
             "traceloop.entity.output": json.dumps({"outputs": {"answer": "Tokyo."}}),
             "traceloop.association.properties.user_id": "bob"}, end_ms=700),
        span(2, "openai.chat", {"llm.request.type": "chat", "gen_ai.system": "openai",
             "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini",
             "gen_ai.usage.prompt_tokens": 50, "gen_ai.usage.completion_tokens": 5,
             "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Capital of Japan?",
             "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "Tokyo is the capital."},
             parent=1, start_ms=10),
    )
    n = normalize(t, PRICES)
    assert n is not None
    r = n.record
    assert r.instrumentation == "openllmetry"
    assert (r.query_text, r.answer_text) == ("Capital of Japan?", "Tokyo.")
    assert r.user_id == "bob" and r.provider == "openai" and (r.input_tokens, r.output_tokens) == (50, 5)


def test_openllmetry_without_entity_io_reads_the_prompt_and_completion() -> None:
    t = trace_of(span(1, "openai.chat", {"llm.request.type": "chat", "gen_ai.request.model": "gpt-4o",
                                         "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Hi?",
                                         "gen_ai.completion.0.content": "Hello."}))
    n = normalize(t, PRICES)
    assert n is not None and (n.record.query_text, n.record.answer_text) == ("Hi?", "Hello.")


def test_trace_without_llm_or_retrieval_is_not_a_rag_query() -> None:
    t = trace_of(span(1, "GET /health", {"http.route": "/health"}), span(2, "SELECT", {"db.system": "postgresql"},
                                                                          parent=1))
    assert normalize(t, PRICES) is None


def test_incomplete_trace_uses_its_topmost_span_and_says_so() -> None:
    t = trace_of(span(3, "chat gpt-4o", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"},
                      parent=1, start_ms=50, end_ms=60), root_seen=False)
    n = normalize(t, PRICES)
    assert n is not None and not n.record.complete and n.record.root_span_id == (3).to_bytes(8, "big").hex()


def _chat(sid: int, parent: int, tokens: tuple[int, int], start_ms: int) -> Span:
    return span(sid, "chat gpt-4o-mini", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                                          "gen_ai.usage.input_tokens": tokens[0],
                                          "gen_ai.usage.output_tokens": tokens[1]},
                parent=parent, start_ms=start_ms, end_ms=start_ms + 50)


def test_a_model_span_wrapping_another_is_not_counted_twice() -> None:
    # the app's generate() span (set_usage too) around the auto-instrumented openai call, and a second,
    # sibling call later: the wrapper's usage is its child's, the sibling is a call of its own
    t = trace_of(
        span(1, "POST /ask", {"http.route": "/ask"}, end_ms=1000),
        span(2, "retrieval faiss", {"gen_ai.operation.name": "retrieval"}, parent=1),
        _chat(3, 1, (1000, 100), 100),
        _chat(4, 3, (1000, 100), 101),
        _chat(5, 1, (500, 50), 300),
    )
    n = normalize(t, PRICES)
    assert n is not None
    r = n.record
    assert (r.input_tokens, r.output_tokens) == (1500, 150)
    assert r.cost_usd == pytest.approx(1500 * 0.15e-6 + 150 * 0.6e-6)
    assert [(u.model, u.input_tokens) for u in n.usage] == [("gpt-4o-mini", 1000), ("gpt-4o-mini", 500)]


def test_openinference_langchain_llm_over_the_openai_llm_counts_once() -> None:
    llm = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini", "llm.provider": "openai",
           "llm.token_count.prompt": 200, "llm.token_count.completion": 10}
    t = trace_of(
        span(1, "RetrievalQA", {"openinference.span.kind": "CHAIN", "input.value": "Who wrote Hamlet?",
                                "output.value": "Shakespeare."}, end_ms=2000),
        span(2, "retrieve", {"openinference.span.kind": "RETRIEVER"}, parent=1, start_ms=1),
        span(3, "ChatOpenAI", llm, parent=1, start_ms=200),
        span(4, "ChatCompletion", llm, parent=3, start_ms=201),  # the openai instrumentor's span inside
    )
    n = normalize(t, PRICES)
    assert n is not None
    assert (n.record.input_tokens, n.record.output_tokens) == (200, 10)
    assert n.record.cost_usd == pytest.approx(200 * 0.15e-6 + 10 * 0.6e-6)
    assert len(n.usage) == 1


def test_an_llm_span_over_an_embeddings_span_keeps_both() -> None:
    # different kinds of call: an LLM step that embeds is two calls, both billed
    t = trace_of(
        span(1, "rag.query", {"rag.query.text": "q"}, end_ms=1000),
        _chat(2, 1, (1000, 100), 100),
        span(3, "embeddings text-embedding-3-small", {"gen_ai.operation.name": "embeddings",
             "gen_ai.request.model": "text-embedding-3-small", "gen_ai.usage.input_tokens": 1000}, parent=2,
             start_ms=101),
    )
    n = normalize(t, PRICES)
    assert n is not None
    assert n.record.input_tokens == 2000
    assert len(n.usage) == 2


def test_a_wrapper_whose_inner_call_has_no_usage_still_counts() -> None:
    # generate() with set_usage around a stream without include_usage: only the wrapper knows the tokens
    inner = span(3, "chat gpt-4o-mini", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"},
                 parent=2, start_ms=101)
    t = trace_of(span(1, "rag.query", {"rag.query.text": "q"}, end_ms=1000), _chat(2, 1, (1000, 100), 100), inner)
    n = normalize(t, PRICES)
    assert n is not None
    assert (n.record.input_tokens, n.record.output_tokens) == (1000, 100)
    assert n.record.cost_usd == pytest.approx(1000 * 0.15e-6 + 100 * 0.6e-6)
