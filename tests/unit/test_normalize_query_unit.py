"""Traces with no rag.query root (an app nobody wrote for us): the inferred query record."""

from __future__ import annotations

import json

import pytest

from rag_otel.pricing import load_prices
from rag_otel.processor.normalize import normalize
from tests.unit.test_normalize_dialects import span, trace_of

PRICES = load_prices()
P1 = "Unopened items can be returned within 30 days of delivery for a full refund."
P2 = "Opened items can be returned within 14 days, minus a 10% restocking fee."
Q = "How long do I have to return an opened item?"


def server(attrs: dict | None = None) -> object:
    return span(1, "POST /ask", {"http.request.method": "POST", "http.route": "/ask", **(attrs or {})}, end_ms=900)


def chat(sid: int, user: str, system: str | None = None, answer: str = "Within 14 days.", parent: int = 1,
         start_ms: int = 100, **extra: object) -> object:
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
             "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.usage.input_tokens": 100,
             "gen_ai.usage.output_tokens": 10,
             "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": user}]}]),
             "gen_ai.output.messages": json.dumps([{"role": "assistant",
                                                    "parts": [{"type": "text", "content": answer}]}])}
    if system:
        attrs["gen_ai.system_instructions"] = json.dumps([{"type": "text", "content": system}])
    attrs.update(extra)
    return span(sid, "chat gpt-4o-mini", attrs, parent=parent, start_ms=start_ms, end_ms=start_ms + 300)


def embeddings(sid: int, parent: int = 1, tokens: int = 9, start_ms: int = 10) -> object:
    return span(sid, "embeddings text-embedding-3-small", {
        "gen_ai.operation.name": "embeddings", "gen_ai.request.model": "text-embedding-3-small",
        "gen_ai.usage.input_tokens": tokens}, parent=parent, start_ms=start_ms, end_ms=start_ms + 20)


def retrieval(sid: int, docs: list[dict], parent: int = 1, start_ms: int = 40, **extra: object) -> object:
    return span(sid, "retrieval", {"gen_ai.operation.name": "retrieval",
                                   "gen_ai.retrieval.documents": json.dumps(docs), **extra},
                parent=parent, start_ms=start_ms, end_ms=start_ms + 10)


def test_pasted_context_is_neither_the_question_nor_lost_faiss_ids_get_the_passage_text() -> None:
    prompt = f"Answer using only the context below.\n\nContext:\n{P1}\n\n{P2}\n\nQuestion: {Q}\nAnswer:"
    n = normalize(trace_of(server({"user.id": "u7", "session.id": "s1"}), embeddings(2),
                           retrieval(3, [{"id": "0", "score": 0.91}, {"id": "4", "score": 0.52}]),
                           chat(4, prompt)), PRICES)
    r = n.record
    assert n.ingestion is None
    assert r.query_text == Q and r.answer_text == "Within 14 days."
    assert [(s.id, s.score, s.content) for s in r.sources] == [("0", 0.91, P1), ("4", 0.52, P2)]
    assert (r.user_id, r.session_id) == ("u7", "s1")
    assert r.models == ["gpt-4o-mini"] and r.response_models == ["gpt-4o-mini-2024-07-18"]
    assert r.cost_complete is True
    assert r.cost_usd == pytest.approx(PRICES.cost("gpt-4o-mini", input_tokens=100, output_tokens=10)
                                       + PRICES.cost("text-embedding-3-small", input_tokens=9))


def test_no_retrieval_span_the_prompts_numbered_sources_are_the_sources() -> None:
    system = f"Cite the sources below like [1].\n\nSources:\n[1] {P1}\n[2] {P2}"
    r = normalize(trace_of(chat(1, Q, system=system, parent=0, start_ms=0)), PRICES).record
    assert r.query_text == Q
    assert [(s.id, s.content) for s in r.sources] == [("1", P1), ("2", P2)]


def test_the_retrieval_query_wins_over_the_prompt() -> None:
    prompt = f"Context:\n{P1}\n\nQuestion: what about opened ones?"
    r = normalize(trace_of(server(), retrieval(2, [{"id": "a", "score": 1.0, "content": P1}],
                                               **{"gen_ai.retrieval.query.text": Q}), chat(3, prompt)), PRICES).record
    assert r.query_text == Q


def test_an_index_build_or_upload_is_ingestion_not_a_query() -> None:
    n = normalize(trace_of(span(1, "POST /documents", {}, end_ms=200), embeddings(2, tokens=40),
                           embeddings(3, tokens=60, start_ms=50)), PRICES)
    assert n.ingestion is not None
    ing = n.ingestion
    assert (ing.input_tokens, ing.models, ing.cost_complete) == (100, ["text-embedding-3-small"], True)
    assert ing.cost_usd == pytest.approx(PRICES.cost("text-embedding-3-small", input_tokens=100))
    alone = normalize(trace_of(embeddings(1, parent=0, start_ms=0)), PRICES)
    assert alone.ingestion is not None  # a start-up index build: an embeddings call with no parent


def test_a_retriever_over_a_vector_store_is_one_retrieval() -> None:
    outer = [{"id": "d1", "score": 0.9, "content": P1}, {"id": "d2", "score": 0.7, "content": P2}]
    inner = [{"id": "d1", "score": 0.9}, {"id": "d2", "score": 0.7}]
    r = normalize(trace_of(server(), retrieval(2, outer), retrieval(3, inner, parent=2, start_ms=41),
                           chat(4, Q)), PRICES).record
    assert [(s.id, s.score, s.content) for s in r.sources] == [("d1", 0.9, P1), ("d2", 0.7, P2)]


def test_hybrid_search_keeps_each_document_once() -> None:
    kw = [{"id": "d1", "score": 3.2, "content": P1}]
    vec = [{"id": "d2", "score": 0.7, "content": P2}, {"id": "d1", "score": 0.6}]
    r = normalize(trace_of(server(), retrieval(2, kw), retrieval(3, vec, start_ms=45), chat(4, Q)), PRICES).record
    assert [s.id for s in r.sources] == ["d1", "d2"]


def test_a_call_without_usage_makes_the_cost_incomplete() -> None:
    no_usage = span(3, "chat gpt-4o-mini", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"},
                    parent=1, start_ms=100)
    r = normalize(trace_of(server(), embeddings(2), no_usage), PRICES).record
    assert r.cost_complete is False
    assert r.cost_usd == pytest.approx(PRICES.cost("text-embedding-3-small", input_tokens=9))  # what is known


def test_an_unpriced_model_makes_the_cost_incomplete() -> None:
    r = normalize(trace_of(server(), chat(2, Q, **{"gen_ai.request.model": "my-local-llm",
                                                  "gen_ai.response.model": "my-local-llm"})), PRICES).record
    assert r.cost_usd is None and r.cost_complete is False and r.models == ["my-local-llm"]


def test_reranked_to_fewer_passages_the_pasted_ones_are_the_sources() -> None:
    """FAISS gave four ids; the app reranked and pasted two, labelled with its own doc names."""
    system = f"Answer from the sources.\n\nSources:\n[returns] {P1}\n[refunds] {P2}"
    faiss = [{"id": str(i), "score": 1.0 - i / 10} for i in range(4)]
    r = normalize(trace_of(server(), retrieval(2, faiss), chat(3, Q, system=system)), PRICES).record
    assert [(s.id, s.score, s.content) for s in r.sources] == [("returns", None, P1), ("refunds", None, P2)]


def test_a_single_embeddings_input_before_generation_is_the_question() -> None:
    """OpenInference records what was embedded: the question the app searched with."""
    searched = "return window for opened items"  # the app's own rewrite, embedded to search
    emb = span(2, "embeddings", {"openinference.span.kind": "EMBEDDING",
                                 "embedding.model_name": "text-embedding-3-small",
                                 "embedding.embeddings.0.embedding.text": searched}, parent=1, start_ms=10, end_ms=30)
    prompt = f"Context:\n{P1}\n\nQuestion: {Q}"
    r = normalize(trace_of(server(), emb, chat(3, prompt)), PRICES).record
    assert r.query_text == searched


def test_the_user_and_session_on_the_server_span_are_the_records() -> None:
    r = normalize(trace_of(server({"user.id": "ana", "session.id": "s-9"}), chat(2, Q)), PRICES).record
    assert (r.user_id, r.session_id) == ("ana", "s-9")


def test_a_call_our_sdk_marks_as_answered_without_usage_makes_the_cost_incomplete() -> None:
    """A stream read without include_usage carries the embeddings' tokens but not the chat's: the SDK sets
    rag.usage.missing on that chat span, and the record's cost is then a lower bound, whatever else is known."""
    complete = normalize(trace_of(server(), embeddings(2), chat(3, Q)), PRICES).record
    partial = normalize(trace_of(server(), embeddings(2), chat(3, Q, **{"rag.usage.missing": True})), PRICES).record
    assert complete.cost_complete is True
    assert partial.cost_complete is False and partial.cost_usd == complete.cost_usd
