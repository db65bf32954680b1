"""One record per question asked, when one trace holds several (query_split; rules in docs/query-unit.md).

Whole traces in the shapes the apps really produce (span trees as our instrumentors and LangChain/LangServe
give them), normalized with the real normalizer: what splits (a batch, a loop, several rag.query spans) and
what must stay one question (query rewriting, an agent's steps, an LLM reranker, LangChain's nesting).
"""

from __future__ import annotations

import json

import pytest

from rag_otel.pricing import load_prices
from rag_otel.processor.normalize import normalize_units
from tests.unit.test_normalize_dialects import TRACE_ID, span, trace_of
from tests.unit.test_normalize_query_unit import chat, embeddings, retrieval, server

PRICES = load_prices()
Q1, Q2 = "How do I descale my kettle?", "Is limescale damage covered by the warranty?"
D1 = "Descale the kettle monthly with a 1:1 solution of white vinegar and water, then rinse twice."
D2 = "The two-year warranty covers manufacturing defects; limescale damage is not covered."
SYSTEM = "You are an assistant for question-answering tasks. Use the following pieces of retrieved context.\n\n{}"
A1, A2 = "Use vinegar and water once a month.", "No, limescale damage is not covered."


def chat_cost(inp: int = 100, out: int = 10) -> float:
    return PRICES.cost("gpt-4o-mini", input_tokens=inp, output_tokens=out)


def emb_cost(tokens: int = 9) -> float:
    return PRICES.cost("text-embedding-3-small", input_tokens=tokens)


def langserve_batch(docs1: str = D1, docs2: str = D2) -> list:
    """LangServe's /chat/batch of two questions: LangChain runs both inputs in threads under the request's span,
    and no chain span exists (only the retriever's, the embeddings' and the chat calls'): all siblings, interleaved."""
    return [
        server(),
        retrieval(2, [{"id": "descaling", "content": D1}], start_ms=10, **{"gen_ai.retrieval.query.text": Q1}),
        embeddings(3, parent=2, start_ms=11),
        retrieval(4, [{"id": "warranty", "content": D2}], start_ms=12, **{"gen_ai.retrieval.query.text": Q2}),
        embeddings(5, parent=4, start_ms=13),
        chat(6, Q1, system=SYSTEM.format(docs1), answer=A1, start_ms=100),
        chat(7, Q2, system=SYSTEM.format(docs2), answer=A2, start_ms=101, **{"gen_ai.usage.input_tokens": 120}),
    ]


def test_a_langserve_batch_of_two_questions_gives_two_records() -> None:
    units = normalize_units(trace_of(*langserve_batch()), PRICES)
    assert len(units) == 2
    one, two = (u.record for u in units)
    assert (one.query_text, one.answer_text) == (Q1, A1)
    assert (two.query_text, two.answer_text) == (Q2, A2)
    assert [(s.id, s.content) for s in one.sources] == [("descaling", D1)]
    assert [(s.id, s.content) for s in two.sources] == [("warranty", D2)]
    assert (one.input_tokens, one.output_tokens) == (109, 10) and (two.input_tokens, two.output_tokens) == (129, 10)
    assert one.cost_usd == pytest.approx(chat_cost() + emb_cost())
    assert two.cost_usd == pytest.approx(chat_cost(120) + emb_cost())
    assert one.models == two.models == ["gpt-4o-mini"] and one.cost_complete and two.cost_complete
    # named by trace and the answering call's span; each record enriches that span
    assert one.query_id == f"{TRACE_ID.hex()}-{(6).to_bytes(8, 'big').hex()}" and one.trace_id == TRACE_ID.hex()
    assert two.query_id == f"{TRACE_ID.hex()}-{(7).to_bytes(8, 'big').hex()}"
    assert [u.root.span_id for u in units] == [(6).to_bytes(8, "big"), (7).to_bytes(8, "big")]
    assert {s.span_id for s in one.spans} == {(n).to_bytes(8, "big") for n in (2, 3, 6)}
    # each question lasts from its retrieval's start to its answer's end
    assert (one.duration_s, two.duration_s) == (pytest.approx(0.39), pytest.approx(0.389))
    # the people of the request (on the server span) are each question's
    users = normalize_units(trace_of(server({"user.id": "ana"}), *langserve_batch()[1:]), PRICES)
    assert [u.record.user_id for u in users] == ["ana", "ana"]


def test_a_batch_whose_questions_retrieved_the_same_documents_still_splits_by_question() -> None:
    both = f"{D1}\n\n{D2}"
    units = normalize_units(trace_of(*langserve_batch(both, both)), PRICES)
    assert [(u.record.query_text, u.record.answer_text) for u in units] == [(Q1, A1), (Q2, A2)]


def test_a_batch_of_follow_ups_each_condensed_first() -> None:
    """Two inputs with history: each is condensed into a standalone question, retrieved with it, answered."""
    condense = "Given the following conversation and a follow up question, rephrase the follow up question to be " \
               "a standalone question.\n\nChat History:\nHuman: Hi\nAssistant: Hello\nFollow Up Input: {}\n" \
               "Standalone question:"
    s1, s2 = "How often should I descale my kettle?", "Does the warranty cover limescale damage?"
    units = normalize_units(trace_of(
        server(),
        chat(2, condense.format("How often?"), answer=s1, start_ms=10),
        chat(3, condense.format("And limescale?"), answer=s2, start_ms=11),
        retrieval(4, [{"id": "descaling"}], start_ms=320, **{"gen_ai.retrieval.query.text": s1}),
        retrieval(5, [{"id": "warranty"}], start_ms=321, **{"gen_ai.retrieval.query.text": s2}),
        chat(6, "How often?", system=SYSTEM.format(D1), answer=A1, start_ms=400),
        chat(7, "And limescale?", system=SYSTEM.format(D2), answer=A2, start_ms=401),
    ), PRICES)
    assert [(u.record.query_text, u.record.answer_text) for u in units] == [(s1, A1), (s2, A2)]
    assert [len(u.record.spans) for u in units] == [3, 3]
    assert [u.record.input_tokens for u in units] == [200, 200]  # the condense call counts for its question


def test_an_app_calling_rag_query_twice_under_one_server_span() -> None:
    def query(sid: int, q: str, a: str, start: int) -> list:
        return [span(sid, "rag.query", {"rag.query.text": q, "rag.answer.text": a}, parent=1, start_ms=start,
                     end_ms=start + 400),
                retrieval(sid + 1, [{"id": q[:5], "content": D1}], parent=sid, start_ms=start + 10),
                chat(sid + 2, q, answer=a, parent=sid, start_ms=start + 50)]
    units = normalize_units(trace_of(server(), *query(10, Q1, A1, 10), *query(20, Q2, A2, 450)), PRICES)
    assert [(u.record.query_text, u.record.answer_text, u.record.root_span_id) for u in units] == [
        (Q1, A1, (10).to_bytes(8, "big").hex()), (Q2, A2, (20).to_bytes(8, "big").hex())]
    assert [u.record.instrumentation for u in units] == ["rag_otel", "rag_otel"]
    # a rag.query nested in another is still the outer one's question
    nested = normalize_units(trace_of(server(), *query(10, Q1, A1, 10),
                                      span(30, "rag.query", {}, parent=10, start_ms=20)), PRICES)
    assert len(nested) == 1


def test_a_model_call_outside_every_rag_query_counts_in_the_next_question() -> None:
    """A request that classifies the message with one chat call, then answers two questions in rag.query
    blocks: the classifier's tokens and cost belong to the first question (they counted in no record)."""
    def query(sid: int, q: str, a: str, start: int) -> list:  # the SDK's root sums the cost of its own calls
        return [span(sid, "rag.query", {"rag.query.text": q, "rag.answer.text": a, "gen_ai.usage.cost": chat_cost()},
                     parent=1, start_ms=start, end_ms=start + 400),
                chat(sid + 2, q, answer=a, parent=sid, start_ms=start + 50)]
    classify = chat(5, "Route this message: " + Q1 + " " + Q2, answer="support", start_ms=2,
                    **{"gen_ai.usage.input_tokens": 40, "gen_ai.usage.output_tokens": 2})
    units = normalize_units(trace_of(server(), classify, *query(10, Q1, A1, 10), *query(20, Q2, A2, 450)), PRICES)
    assert [u.record.query_text for u in units] == [Q1, Q2]
    assert [u.record.input_tokens for u in units] == [140, 100]
    assert [u.record.cost_usd for u in units] == pytest.approx([chat_cost(40, 2) + chat_cost(), chat_cost()])


def test_a_script_looping_over_questions_inside_one_span() -> None:
    """No server: a root span around a loop; each question embeds, then asks with numbered sources."""
    main = span(1, "main", {}, end_ms=2000)
    units = normalize_units(trace_of(
        main,
        embeddings(2, start_ms=10), chat(3, Q1, system=f"Sources:\n[1] {D1}", answer=A1, start_ms=40),
        embeddings(4, start_ms=400), chat(5, Q2, system=f"Sources:\n[1] {D2}", answer=A2, start_ms=420),
    ), PRICES)
    assert [(u.record.query_text, u.record.answer_text) for u in units] == [(Q1, A1), (Q2, A2)]
    assert [[s.content for s in u.record.sources] for u in units] == [[D1], [D2]]
    assert [u.record.cost_usd for u in units] == pytest.approx([chat_cost() + emb_cost()] * 2)


def test_a_chat_engine_answering_two_turns_inside_one_span() -> None:
    """The second turn carries the first in its history: still two questions."""
    history = [{"role": "user", "content": Q1}, {"role": "assistant", "content": A1}]
    second = json.dumps([{"role": "system", "content": SYSTEM.format(D2)}, *history,
                         {"role": "user", "content": Q2}])
    units = normalize_units(trace_of(
        span(1, "conversation", {}, end_ms=2000),
        retrieval(2, [{"id": "descaling", "content": D1}], start_ms=10, **{"gen_ai.retrieval.query.text": Q1}),
        chat(3, Q1, system=SYSTEM.format(D1), answer=A1, start_ms=40),
        retrieval(4, [{"id": "warranty", "content": D2}], start_ms=400, **{"gen_ai.retrieval.query.text": Q2}),
        chat(5, Q2, answer=A2, start_ms=420, **{"gen_ai.input.messages": second}),
    ), PRICES)
    assert [(u.record.query_text, [s.id for s in u.record.sources]) for u in units] == [
        (Q1, ["descaling"]), (Q2, ["warranty"])]


# --- what must stay one question ------------------------------------------------------------------

def one_record(*spans: object) -> object:
    units = normalize_units(trace_of(*spans), PRICES)
    assert len(units) == 1, [u.record.query_text for u in units]
    return units[0].record


def test_query_rewriting_then_retrieval_then_the_answer_is_one_question() -> None:
    rewritten = "descaling frequency for a kettle"
    r = one_record(
        server(),
        chat(2, f"Rewrite this question as a search query: {Q1}", answer=rewritten, start_ms=10),
        retrieval(3, [{"id": "descaling", "content": D1}], start_ms=320,
                  **{"gen_ai.retrieval.query.text": rewritten}),
        chat(4, f"Context:\n{D1}\n\nQuestion: {Q1}\nAnswer:", answer=A1, start_ms=400),
    )
    assert (r.query_text, r.answer_text, r.input_tokens) == (rewritten, A1, 200)


def test_a_rewrite_whose_output_is_the_answers_question_is_one_question() -> None:
    """No search query recorded (FAISS searches with a vector): the rewrite's output is the answer call's question."""
    rewritten = "How often should I descale my kettle?"
    r = one_record(
        server(),
        chat(2, "How often?", answer=rewritten, start_ms=10),
        retrieval(3, [{"id": "0"}], start_ms=320),
        chat(4, f"Context:\n{D1}\n\nQuestion: {rewritten}\nAnswer:", answer=A1, start_ms=400),
    )
    assert r.answer_text == A1 and len(r.spans) == 4


def test_an_agent_calling_the_model_around_a_retrieval_is_one_question() -> None:
    tool_call = json.dumps([{"role": "assistant", "parts": [{"type": "tool_call", "name": "search"}]}])
    steps = json.dumps([{"role": "user", "content": Q1}, {"role": "assistant", "content": ""},
                        {"role": "tool", "content": D1}])
    r = one_record(
        server(),
        chat(2, Q1, answer="", start_ms=10, **{"gen_ai.output.messages": tool_call}),
        retrieval(3, [{"id": "descaling", "content": D1}], start_ms=320),
        chat(4, Q1, answer=A1, start_ms=400, **{"gen_ai.input.messages": steps}),
    )
    assert (r.query_text, r.answer_text, r.input_tokens) == (Q1, A1, 200)


def test_an_llm_reranker_scoring_each_document_is_one_question() -> None:
    r = one_record(
        server(),
        retrieval(2, [{"id": "descaling", "content": D1}, {"id": "warranty", "content": D2}], start_ms=10),
        chat(3, f"Query: {Q1}\nDocument: {D1}\nIs the document relevant? Answer yes or no.", answer="yes",
             start_ms=100),
        chat(4, f"Query: {Q1}\nDocument: {D2}\nIs the document relevant? Answer yes or no.", answer="no",
             start_ms=101),
        chat(5, f"Context:\n{D1}\n\nQuestion: {Q1}\nAnswer:", answer=A1, start_ms=400),
    )
    assert (r.answer_text, r.input_tokens) == (A1, 300)


def test_langchain_nesting_a_retrieval_and_its_generation_under_chains_is_one_question() -> None:
    """OpenInference's LangChain spans: a chain per runnable, the retriever and the LLM under their own chains."""
    r = one_record(
        server(),
        span(2, "RunnableSequence", {"openinference.span.kind": "CHAIN"}, parent=1, start_ms=5, end_ms=800),
        span(3, "RunnableParallel", {"openinference.span.kind": "CHAIN"}, parent=2, start_ms=6, end_ms=90),
        retrieval(4, [{"id": "descaling", "content": D1}], parent=3, start_ms=10,
                  **{"gen_ai.retrieval.query.text": Q1}),
        chat(5, Q1, system=SYSTEM.format(D1), answer=A1, parent=2, start_ms=100),
        chat(6, Q1, system=SYSTEM.format(D1), answer=A1, parent=5, start_ms=101),  # the openai call under it
    )
    assert (r.query_text, r.answer_text) == (Q1, A1)


def test_without_captured_prompts_a_batch_cannot_be_told_apart_and_stays_one_record() -> None:
    bare = [span(6, "chat gpt-4o-mini", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                                         "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10},
                 parent=1, start_ms=100),
            span(7, "chat gpt-4o-mini", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                                         "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10},
                 parent=1, start_ms=101)]
    r = one_record(server(), retrieval(2, [{"id": "a"}]), retrieval(4, [{"id": "b"}], start_ms=12), *bare)
    assert r.input_tokens == 200 and r.query_id == r.trace_id


def test_the_pipeline_scores_and_enriches_each_question_on_its_own_span() -> None:
    """Through the real pipeline: two records, each scored with its own question and sources; each answering
    call's span gets that question's quality attributes and evaluation events, the request's span none; the
    content captured for scoring leaves no span; derived metrics count two queries."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from tests.unit.test_processor_pipeline import attrs, make, recent_ns, wait_spans

    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    shift = recent_ns() - 1_700_000_000_000_000_000
    for s in langserve_batch():
        s.start_time_unix_nano += shift
        s.end_time_unix_nano += shift
        ss.spans.append(s)
    p, down, scorer = make()
    records = []
    p.on_record.append(records.append)
    p.offer_traces(req)
    wait_spans(p, down, 7)
    p.shutdown(2)
    assert sorted(scorer.calls) == [(Q1, A1, [D1]), (Q2, A2, [D2])]
    assert sorted(r.query_text for r in records) == [Q1, Q2] and p.stats.records == 2
    by_id = {s.span_id: s for s in down.spans}
    for sid in (6, 7):
        answering = by_id[sid.to_bytes(8, "big")]
        a = attrs(answering)
        assert a["rag.quality.status"] == "scored" and a["rag.quality.overall"] == 0.9
        assert [e.name for e in answering.events] == ["gen_ai.evaluation.result"] * 4
        assert a["gen_ai.usage.input_tokens"] in (100, 120)  # the call's own usage, untouched
        assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a
    request = attrs(by_id[(1).to_bytes(8, "big")])
    assert not any(k.startswith("rag.quality") for k in request) and not by_id[(1).to_bytes(8, "big")].events
    for sid in (2, 4):
        docs = json.loads(attrs(by_id[sid.to_bytes(8, "big")])["gen_ai.retrieval.documents"])
        assert all("content" not in d for d in docs)


def test_a_hand_written_multi_query_search_is_one_question() -> None:
    """The model writes three search queries (one a line), each searched; the answer uses what they found."""
    lines = ["kettle descaling steps", "how to remove limescale from a kettle", "vinegar kettle cleaning"]
    r = one_record(
        server(),
        chat(2, f"Write three search queries for: {Q1}", answer="\n".join(lines), start_ms=10),
        *[retrieval(3 + n, [{"id": f"d{n}", "content": D1 if n == 0 else D2}], start_ms=320 + n,
                    **{"gen_ai.retrieval.query.text": q}) for n, q in enumerate(lines)],
        chat(9, f"Context:\n{D1}\n\nQuestion: {Q1}\nAnswer:", answer=A1, start_ms=400),
    )
    assert r.answer_text == A1 and r.input_tokens == 200


def test_a_trace_the_splitter_cannot_read_stays_one_record(monkeypatch: pytest.MonkeyPatch) -> None:
    from rag_otel.processor import query_split

    def broken(*args: object, **kwargs: object) -> list:
        raise RuntimeError("a bug")

    monkeypatch.setattr(query_split, "split", broken)
    units = normalize_units(trace_of(*langserve_batch()), PRICES)
    assert len(units) == 1 and units[0].record.input_tokens == 238 and units[0].record.query_id == TRACE_ID.hex()


def test_an_openinference_langchain_batch_splits_by_its_chain_per_input() -> None:
    """With OpenInference's LangChain instrumentation each batch input is its own chain under the request's span
    (sibling subtrees, each with its retriever and LLM): each chain is a question and the record's root."""
    def chain(sid: int, q: str, doc: str, answer: str, start: int) -> list:
        llm = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini", "llm.provider": "openai",
               "llm.token_count.prompt": 100, "llm.token_count.completion": 10,
               "llm.input_messages.0.message.role": "system",
               "llm.input_messages.0.message.content": SYSTEM.format(doc),
               "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": q,
               "llm.output_messages.0.message.role": "assistant", "llm.output_messages.0.message.content": answer}
        return [span(sid, "RunnableSequence", {"openinference.span.kind": "CHAIN", "input.value": q,
                                               "output.value": answer}, parent=1, start_ms=start, end_ms=start + 500),
                span(sid + 1, "VectorStoreRetriever", {
                    "openinference.span.kind": "RETRIEVER", "input.value": q,
                    "retrieval.documents.0.document.id": doc[:8], "retrieval.documents.0.document.content": doc},
                    parent=sid, start_ms=start + 5, end_ms=start + 50),
                span(sid + 2, "ChatOpenAI", llm, parent=sid, start_ms=start + 60, end_ms=start + 400)]
    units = normalize_units(trace_of(server(), *chain(10, Q1, D1, A1, 10), *chain(20, Q2, D2, A2, 11)), PRICES)
    assert [(u.record.query_text, u.record.answer_text, [s.content for s in u.record.sources]) for u in units] == [
        (Q1, A1, [D1]), (Q2, A2, [D2])]
    assert [u.root.span_id for u in units] == [(10).to_bytes(8, "big"), (20).to_bytes(8, "big")]
    assert [u.record.instrumentation for u in units] == ["openinference"] * 2
    assert [u.record.cost_usd for u in units] == pytest.approx([chat_cost()] * 2)
    assert not any(u.root_is_call for u in units)  # a chain span: the question's cost may go on it
