"""Realistic RAG apps of the common shapes, run unmodified under ``rag-otel instrument`` into a real
``rag-otel serve``: exactly one complete, correct query record per question.

Every field is checked against what really happened: the fake OpenAI server's own request log (what
was asked, with which model, how many tokens it billed) and what the app itself says it retrieved.
The apps capture content ``scoring_only``; serve's downstream is a real OTLP receiver, and the last
test searches every byte it received for that content (none may leave the processor).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from rag_otel.pricing import load_prices
from rag_otel.semconv import QUALITY_AXES
from tests.apps.harness import Stack, corpus, run_script, serve_stack, web_app
from tests.support.fake_openai import FakeOpenAI, answer_for, count_tokens, embedding_for, prompt_tokens_for
from tests.support.otlp_sink import OtlpSink

PRICES = load_prices(None)
MODEL = "gpt-4o-mini"
SNAPSHOT = "gpt-4o-mini-2024-07-18"
EMBED = "text-embedding-3-small"
EMBED_DIMS = FakeOpenAI().embedding_dims


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # the processor keeps the text in its store so the test can read it back; its own setting would also let
    # content go downstream, but the apps' scoring_only (on their resource when no rag.query span carries it)
    # must win: test_no_captured_content_reaches_downstream
    with FakeOpenAI(snapshots={MODEL: SNAPSHOT, EMBED: EMBED}) as fake, serve_stack(
            tmp_path_factory.mktemp("apps"), capture="full", trace_wait=0.3, fake=fake) as stack:
        yield stack


def chat_cost(prompt: int, completion: int) -> float:
    return PRICES.cost(MODEL, input_tokens=prompt, output_tokens=completion)


def embed_cost(tokens: int) -> float:
    return PRICES.cost(EMBED, input_tokens=tokens, output_tokens=0)


def usage_of(requests: list[dict[str, Any]]) -> tuple[int, int, float]:
    """(input tokens, output tokens, cost) the fake billed for ``requests``."""
    inp = out = 0
    cost = 0.0
    for r in requests:
        body = r["body"]
        if r["path"].endswith("/embeddings"):
            texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
            n = sum(count_tokens(t) for t in texts)
            inp += n
            cost += embed_cost(n)
        else:
            p, c = prompt_tokens_for(body["messages"]), count_tokens(answer_for(body["messages"]))
            inp, out = inp + p, out + c
            cost += chat_cost(p, c)
    return inp, out, cost


def top_k(docs: dict[str, str], query: str, k: int) -> list[str]:
    """What an in-memory vector store retrieves with the fake's embeddings (cosine similarity, best first)."""
    q = np.array(embedding_for(query, EMBED_DIMS))
    sims = {d: float(q @ np.array(embedding_for(t, EMBED_DIMS))) for d, t in docs.items()}
    return sorted(sims, key=lambda d: -sims[d])[:k]


def assert_record(rec: dict[str, Any], *, question: str, requests: list[dict[str, Any]],
                  sources: list[dict[str, Any]], user: str | None = None, session: str | None = None) -> None:
    """One record against the requests the app made for it and the documents it retrieved."""
    chats = [r for r in requests if r["path"].endswith("/chat/completions")]
    assert rec["query_text"] == question
    assert rec["answer_text"] == answer_for(chats[-1]["body"]["messages"])
    assert rec["model"] == MODEL and rec["models"] == [MODEL]
    assert rec["response_models"] == [SNAPSHOT]
    inp, out, cost = usage_of(requests)
    assert (rec["input_tokens"], rec["output_tokens"]) == (inp, out)
    assert rec["cost_usd"] == pytest.approx(cost, rel=1e-9) and rec["cost_complete"] is True
    got = [(s["id"], s.get("text")) for s in rec["sources"]]
    assert got == [(s["id"], s["text"]) for s in sources]
    for s, want in zip(rec["sources"], sources, strict=True):
        if want.get("score") is not None:
            assert s["score"] == pytest.approx(want["score"], abs=1e-5)
    assert rec["q_status"] == "scored"
    assert all(rec[f"q_{a}"] is not None for a in QUALITY_AXES)
    assert (rec["user_id"], rec["session_id"]) == (user, session)


def test_openai_faiss_fastapi_app(stack: Stack) -> None:
    """Passages pasted into the user turn under "Context:"; FAISS gives only ids and scores."""
    service = "faiss-api"
    docs = corpus()
    questions = ["How long do I have to return an opened item?", "Is limescale damage covered by the warranty?"]
    with web_app(stack, "openai_faiss_api", service) as url:
        answers = []
        for i, q in enumerate(questions):
            mark = len(stack.fake.requests)
            r = httpx.post(f"{url}/ask", json={"question": q},
                           headers={"x-user-id": f"user-{i}", "x-session-id": "s-1"}, timeout=30)
            answers.append((r.json(), list(stack.fake.requests)[mark:]))
        httpx.post(f"{url}/documents", json={"id": "gift-cards", "text": "Gift cards never expire."}, timeout=30)
        httpx.get(f"{url}/health", timeout=5)
    recs = stack.records(service, len(questions))
    assert len(recs) == len(questions), [r["query_text"] for r in recs]  # the index build and upload are not queries
    for i, (rec, q, (body, reqs)) in enumerate(zip(recs, questions, answers, strict=True)):
        sources = [{"id": s["id"], "score": s["score"], "text": docs[s["doc"]]} for s in body["sources"]]
        assert_record(rec, question=q, requests=reqs, sources=sources, user=f"user-{i}", session="s-1")
    ingestion = stack.analytics("model_usage_and_cost", service)["ingestion"]
    build = len(docs) and sum(count_tokens(t) for t in docs.values()) + count_tokens("Gift cards never expire.")
    assert ingestion["traces"] == 2 and ingestion["input_tokens"] == build
    assert ingestion["cost_usd"] == pytest.approx(embed_cost(build), rel=1e-9)


def test_keyword_script_without_a_server(stack: Stack) -> None:
    """No web server, no retrieval span: numbered sources in the system message, streamed answers."""
    service = "keyword-script"
    questions = ["How do I reset my password?", "How much does express shipping cost?"]
    mark = len(stack.fake.requests)
    printed = run_script(stack, "keyword_script.py", service, *questions)
    reqs = list(stack.fake.requests)[mark:]
    recs = stack.records(service, len(questions))
    assert len(recs) == len(questions)
    for rec, q, out, req in zip(recs, questions, printed, reqs, strict=True):
        sources = [{"id": str(n), "text": s["text"]} for n, s in enumerate(out["sources"], 1)]
        assert_record(rec, question=q, requests=[req], sources=sources)
        assert rec["answer_text"] == out["answer"]


def test_eval_loop_inside_one_span_gives_one_record_per_question(stack: Stack) -> None:
    """An eval script answers three questions inside its own ``eval-run`` span: one trace, three records, each
    with its own question (out of the "Context: ... Question:" template), answer, pasted sources, tokens, cost."""
    service = "eval-loop"
    questions = ["How do I reset my password?", "How much does express shipping cost?",
                 "Is limescale damage covered by the warranty?"]
    mark = len(stack.fake.requests)
    printed = run_script(stack, "eval_loop_script.py", service, *questions)
    reqs = list(stack.fake.requests)[mark + 1:]  # the first is the index build, a trace of its own (ingestion)
    recs = stack.records(service, len(questions))
    assert len(recs) == len(questions), [r["query_text"] for r in recs]
    assert len({r["trace_id"] for r in recs}) == 1
    for n, (rec, q, out) in enumerate(zip(recs, questions, printed, strict=True)):
        mine = reqs[2 * n:2 * n + 2]  # its embeddings call and its chat call, in loop order
        assert mine[0]["body"]["input"] == [q] and q in mine[1]["body"]["messages"][-1]["content"]
        sources = [{"id": str(k), "text": s["text"]} for k, s in enumerate(out["sources"], 1)]
        assert_record(rec, question=q, requests=mine, sources=sources)
        assert rec["answer_text"] == out["answer"]
    assert stack.analytics("model_usage_and_cost", service)["ingestion"]["traces"] == 1


def test_a_job_marking_each_question_with_rag_query_inside_one_span(stack: Stack) -> None:
    """Two ``rag_query`` spans under the job's own span: one trace, a record per question, each enriched on its
    own rag.query span and named by it."""
    service = "decorated-job"
    questions = ["How do I reset my password?", "How much does express shipping cost?"]
    mark = len(stack.fake.requests)
    printed = run_script(stack, "decorated_job_script.py", service, *questions)
    reqs = list(stack.fake.requests)[mark:]
    recs = stack.records(service, len(questions))
    assert len(recs) == len(questions), [r["query_text"] for r in recs]
    assert len({r["trace_id"] for r in recs}) == 1
    for rec, q, out, req in zip(recs, questions, printed, reqs, strict=True):
        sources = [{"id": str(n), "text": text} for n, text in enumerate(out["sources"], 1)]
        assert_record(rec, question=q, requests=[req], sources=sources)
        assert rec["query_id"] == f"{rec['trace_id']}-" + next(
            s["id"] for s in httpx.get(f"{stack.api}/api/v1/queries/{rec['query_id']}").json()["spans"]
            if s["name"] == "rag.query")


def test_langchain_lcel_conversational_chain_served_with_langserve(stack: Stack) -> None:
    """invoke and stream; the follow-up is condensed into a standalone question first."""
    service = "langchain-chat"
    docs = corpus()
    with web_app(stack, "langchain_chat_server", service) as url:
        hdr = {"x-user-id": "ana", "x-session-id": "chat-7"}
        mark = len(stack.fake.requests)
        first = httpx.post(f"{url}/chat/invoke", json={"input": {"question": "How do I descale my kettle?"}},
                           headers=hdr, timeout=30).json()["output"]
        reqs_first = list(stack.fake.requests)[mark:]
        mark = len(stack.fake.requests)
        history = [["How do I descale my kettle?", first]]
        with httpx.stream("POST", f"{url}/chat/stream", headers=hdr, timeout=30,
                          json={"input": {"question": "How often should I do it?", "chat_history": history}}) as r:
            streamed = "".join(r.iter_text())
        reqs_follow = list(stack.fake.requests)[mark:]
    assert "data" in streamed
    recs = stack.records(service, 2)
    assert len(recs) == 2, [r["query_text"] for r in recs]
    rec, follow = recs
    assert rec["query_text"] == "How do I descale my kettle?"
    assert rec["answer_text"] == first  # fails until the openai with_raw_response path records the answer
    assert [(s["id"], s["text"]) for s in rec["sources"]] == [(d, docs[d]) for d in top_k(docs, rec["query_text"], 2)]
    inp, out, cost = usage_of(reqs_first)
    assert (rec["input_tokens"], rec["output_tokens"]) == (inp, out)
    assert rec["cost_usd"] == pytest.approx(cost, rel=1e-9) and rec["cost_complete"] is True
    assert rec["model"] == MODEL and rec["response_models"] == [SNAPSHOT]
    assert (rec["user_id"], rec["session_id"]) == ("ana", "chat-7") and rec["q_status"] == "scored"
    # the follow-up: the question is the app's own standalone rewrite (what it retrieved with)
    chats = [r for r in reqs_follow if r["path"].endswith("/chat/completions")]
    assert follow["query_text"] == answer_for(chats[0]["body"]["messages"])
    inp, out, cost = usage_of(reqs_follow)
    assert (follow["input_tokens"], follow["output_tokens"]) == (inp, out)
    assert follow["model"] == MODEL and follow["response_models"] == [SNAPSHOT]
    assert follow["cost_complete"] is True and follow["q_status"] == "scored"


def test_langserve_batch_gives_one_record_per_question(stack: Stack) -> None:
    """One /chat/batch call, three questions (one a follow-up condensed first): one trace, three records, each
    with its own question, answer, sources, model, tokens and cost, matched to its own requests in the fake's log
    (LangChain runs the inputs in threads, so their calls interleave)."""
    service = "langchain-batch"
    docs = corpus()
    q1, q2, follow = "How do I descale my kettle?", "Is limescale damage covered by the warranty?", \
        "How often should I do it?"
    inputs = [{"question": q1}, {"question": q2},
              {"question": follow, "chat_history": [[q1, "Use vinegar and water."]]}]
    with web_app(stack, "langchain_chat_server", service) as url:
        mark = len(stack.fake.requests)
        out = httpx.post(f"{url}/chat/batch", json={"inputs": inputs}, headers={"x-user-id": "bo"},
                         timeout=60).json()["output"]
        reqs = list(stack.fake.requests)[mark:]
    assert len(out) == 3
    recs = stack.records(service, 3)
    assert len(recs) == 3, [r["query_text"] for r in recs]

    def last_user(r: dict[str, Any]) -> str | None:
        return next((m["content"] for m in reversed(r["body"].get("messages", [])) if m["role"] == "user"), None)

    def embedded(r: dict[str, Any]) -> list[str]:
        body = r["body"]
        return [body["input"]] if isinstance(body.get("input"), str) else list(body.get("input") or [])

    condense = next(r for r in reqs if "Follow Up Input: " + follow in (last_user(r) or ""))
    standalone = answer_for(condense["body"]["messages"])
    by_query = {rec["query_text"]: rec for rec in recs}
    assert set(by_query) == {q1, q2, standalone}
    assert len({rec["trace_id"] for rec in recs}) == 1  # one request, one trace
    assert len({rec["query_id"] for rec in recs}) == 3
    for question, searched, answer in ((q1, q1, out[0]), (q2, q2, out[1]), (follow, standalone, out[2])):
        mine = [r for r in reqs if (r is condense and question == follow)
                or (r["path"].endswith("/embeddings") and embedded(r) == [searched])
                or (r["path"].endswith("/chat/completions") and last_user(r) == question)]
        assert len(mine) == (3 if question == follow else 2)
        rec = by_query[searched]
        assert rec["answer_text"] == answer
        assert_record(rec, question=searched, requests=mine, user="bo",
                      sources=[{"id": d, "text": docs[d]} for d in top_k(docs, searched, 2)])
        detail = httpx.get(f"{stack.api}/api/v1/queries/{rec['query_id']}").json()
        assert detail["query_id"] == rec["query_id"] and detail["answer_text"] == answer
    # feedback on one question of the batch lands on that question only
    rated = by_query[q2]["query_id"]
    r = httpx.post(f"{stack.api}/api/v1/feedback", json={"trace_id": rated, "thumbs": "down", "user_id": "bo"})
    assert r.status_code == 201 and r.json()["query_id"] == rated
    for rec in recs:
        got = httpx.get(f"{stack.api}/api/v1/queries/{rec['query_id']}").json()["feedback"]
        assert [f["thumbs"] for f in got] == (["down"] if rec["query_id"] == rated else [])
    usage = stack.analytics("model_usage_and_cost", service)  # cost analytics count questions, not requests
    assert usage["queries"] == 3
    assert usage["total_cost_usd"] == pytest.approx(usage_of(reqs)[2], rel=1e-9)
    metrics = httpx.get(f"{stack.api}/metrics").text  # and so do the derived metrics
    counted = [float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("rag_processor_queries_total{") and f'service="{service}"' in line]
    assert sum(counted) == 3


def test_llamaindex_query_engine_and_chat_engine_over_chroma(stack: Stack) -> None:
    """The query engine opens its own rag.query; the chat engine does not: both give one record a question."""
    service = "llamaindex-chroma"
    hdr = {"x-user-id": "li", "x-session-id": "conv-1"}
    asked = []
    with web_app(stack, "llamaindex_chroma_api", service) as url:
        for path, q in (("query", "What does the warranty cover?"), ("chat", "How do I descale the kettle?"),
                        ("chat", "And how often?")):
            mark = len(stack.fake.requests)
            body = httpx.post(f"{url}/{path}", json={"question": q}, headers=hdr, timeout=60).json()
            asked.append((q, body, list(stack.fake.requests)[mark:]))
    recs = stack.records(service, 3)
    assert len(recs) == 3, [r["query_text"] for r in recs]  # the index build is ingestion
    for rec, (_q, body, reqs) in zip(recs, asked, strict=True):
        chats = [r for r in reqs if r["path"].endswith("/chat/completions")]
        assert rec["answer_text"] == body["answer"] == answer_for(chats[-1]["body"]["messages"])
        # each node once (the retriever over Chroma is one retrieval), with its score and text
        assert [(s["id"], s["text"]) for s in rec["sources"]] == [(s["id"], s["text"]) for s in body["sources"]]
        for got, want in zip(rec["sources"], body["sources"], strict=True):
            assert got["score"] == pytest.approx(want["score"], abs=1e-5)
        inp, out, cost = usage_of(reqs)
        assert (rec["input_tokens"], rec["output_tokens"]) == (inp, out)
        assert rec["cost_usd"] == pytest.approx(cost, rel=1e-9) and rec["cost_complete"] is True
        assert rec["model"] == MODEL and rec["response_models"] == [SNAPSHOT]
        assert (rec["user_id"], rec["session_id"]) == ("li", "conv-1") and rec["q_status"] == "scored"
    assert recs[0]["query_text"] == "What does the warranty cover?"
    assert recs[1]["query_text"] == "How do I descale the kettle?"
    # the follow-up: the chat engine's own standalone rewrite (what it retrieved with) or the user's words
    assert recs[2]["query_text"] in ("And how often?", answer_for(
        next(r for r in asked[2][2] if r["path"].endswith("/chat/completions"))["body"]["messages"]))


def test_llamaindex_chat_engine_replaying_two_turns_inside_one_span(stack: Stack) -> None:
    """A chat engine answers two turns inside the script's own span: one trace, two records (the follow-up,
    whose prompt carries the first turn as history, is a question of its own), each with its own answer,
    nodes, tokens and cost."""
    service = "llamaindex-replay"
    turns = ["How do I descale the kettle?", "And how often?"]
    mark = len(stack.fake.requests)
    printed = run_script(stack, "llamaindex_replay_script.py", service, *turns)
    reqs = list(stack.fake.requests)[mark:]
    recs = stack.records(service, len(turns))
    assert len(recs) == len(turns), [r["query_text"] for r in recs]
    assert len({r["trace_id"] for r in recs}) == 1
    # the turns ran one after the other: each turn's requests end with the chat call that answered it
    ends = [next(i for i, r in enumerate(reqs) if r["path"].endswith("/chat/completions")
                 and answer_for(r["body"]["messages"]) == out["answer"]) for out in printed]
    def index_build(r: dict[str, Any]) -> bool:  # the start-up embeddings of every document: a trace of its own
        return r["path"].endswith("/embeddings") and isinstance(r["body"]["input"], list) \
            and len(r["body"]["input"]) > 1

    per_turn = [[r for r in reqs[:ends[0] + 1] if not index_build(r)], reqs[ends[0] + 1:ends[1] + 1]]
    for rec, out, mine in zip(recs, printed, per_turn, strict=True):
        assert rec["answer_text"] == out["answer"]
        assert [(s["id"], s["text"]) for s in rec["sources"]] == [(s["id"], s["text"]) for s in out["sources"]]
        inp, outp, cost = usage_of(mine)
        assert (rec["input_tokens"], rec["output_tokens"]) == (inp, outp)
        assert rec["cost_usd"] == pytest.approx(cost, rel=1e-9) and rec["cost_complete"] is True
        assert rec["model"] == MODEL and rec["q_status"] == "scored"
    assert recs[0]["query_text"] == turns[0]
    condense = next(r for r in per_turn[1] if r["path"].endswith("/chat/completions"))
    assert recs[1]["query_text"] in (turns[1], answer_for(condense["body"]["messages"]))


def test_async_app_with_history_query_rewriting_hybrid_search_and_reranker(stack: Stack) -> None:
    """No retrieval query text (FAISS searches with a vector), so the question is the user's last turn in the
    first chat call (the rewrite's input: the user's own words); the sources are the reranked passages the
    model saw, not FAISS's four ids."""
    service = "async-hybrid"
    hdr = {"x-user-id": "kim", "x-session-id": "web-42"}
    asked = []
    with web_app(stack, "async_hybrid_api", service) as url:
        for msg in ("Can I return an opened kettle?", "Is there a fee for that?"):
            mark = len(stack.fake.requests)
            body = httpx.post(f"{url}/chat", json={"message": msg}, headers=hdr, timeout=30).json()
            asked.append((msg, body, list(stack.fake.requests)[mark:]))
    recs = stack.records(service, 2)
    assert len(recs) == 2, [r["query_text"] for r in recs]  # the start-up index build is ingestion
    for rec, (msg, body, reqs) in zip(recs, asked, strict=True):
        assert rec["query_text"] == msg  # the user's own words: the last user turn carries no template
        assert_record(rec, question=msg, requests=reqs, sources=body["sources"], user="kim", session="web-42")
    assert len([r for r in asked[1][2] if r["path"].endswith("/chat/completions")]) == 2  # rewrite + answer


def test_no_captured_content_reaches_downstream(stack: Stack) -> None:
    """Runs last: every byte serve exported for every app above (our openai, FAISS, Chroma, LangChain,
    LlamaIndex and FastAPI instrumentors; rag.source_documents; apps with and without a rag.query span)
    is searched for any 30-character piece of the questions, prompts, answers and documents."""
    if not stack.chat_requests():  # run alone: make some traffic first
        run_script(stack, "keyword_script.py", "strip-script", "How do I reset my password?")
    deadline = time.monotonic() + 10
    while stack.downstream is not None and b"chat gpt-4o-mini" not in exported_bytes(stack.downstream):
        assert time.monotonic() < deadline, "nothing reached downstream"
        time.sleep(0.2)
    time.sleep(1.0)  # the last exports
    wire = exported_bytes(stack.downstream)
    secrets = list(corpus().values())
    for r in stack.chat_requests():
        secrets += [str(m["content"]) for m in r["body"]["messages"] if m.get("content")]
        secrets.append(answer_for(r["body"]["messages"]))
    assert len(secrets) > len(corpus())
    for text in secrets:
        for i in range(0, max(1, len(text) - 30), 30):
            piece = text[i:i + 30].encode()
            assert piece not in wire, f"{piece!r} left the processor"


def exported_bytes(sink: OtlpSink) -> bytes:
    return b"".join(r.SerializeToString() for reqs in sink.requests.values() for r in reqs)
