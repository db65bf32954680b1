"""The span API through the real OTel SDK with in-memory exporters (rag_otel.sdk.testing.capture)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from rag_otel import current_rag_query, current_rag_span, embed, generate, rag_query, rerank, retrieve, semconv
from rag_otel.config import ModelObservation
from rag_otel.sdk.identity import RequestIdentity, request_identity
from rag_otel.sdk.testing import Captured, capture

DOCS = [
    {"id": "d1", "score": 0.91, "text": "Paris is the capital of France."},
    {"id": "d2", "score": 0.52, "text": "x"},
]


@pytest.fixture
def t() -> Captured:
    """Content capture off (``none``), so tests see exactly what a privacy-strict app exports."""
    cfg = ModelObservation()
    cfg.content.capture = "none"
    with capture(cfg) as c:
        yield c


def full_capture(**content: object) -> ModelObservation:
    cfg = ModelObservation()
    cfg.content.capture = "full"
    for k, v in content.items():
        setattr(cfg.content, k, v)
    return cfg


def price(t: Captured, model: str, inp: int, out: int) -> float:
    p = t.runtime.prices.lookup(model)
    assert p is not None, f"{model} must be in pricing.yaml for this test"
    return p.cost(input_tokens=inp, output_tokens=out)


def counter_total(t: Captured, name: str, **attrs: str) -> float:
    return sum(p.value for p in t.metric_points(name) if all(p.attributes.get(k) == v for k, v in attrs.items()))


# --- structure ---------------------------------------------------------------------------------
def test_sync_query_tree_names_kinds_and_attributes(t: Captured) -> None:
    @retrieve("faiss", top_k=2)
    def search(q: str) -> list[dict]:
        return DOCS

    with rag_query("where is Paris?") as q:
        docs = search("where is Paris?")
        with rerank("bge-reranker", top_n=1) as r:
            r.set_documents(docs[:1])
        with embed("text-embedding-3-small", provider="openai") as e:
            e.set_usage(input_tokens=7)
        with generate("gpt-4o-mini", provider="openai") as g:
            g.set_usage(input_tokens=100, output_tokens=20)
            g.set_response(response_id="r-1", finish_reasons=["stop"])
            g.set_answer("Paris.")
        q.set_answer("Paris.")

    assert docs is DOCS  # the decorated function's result passes through untouched
    root = t.span("rag.query")
    assert root.kind == SpanKind.INTERNAL and root.parent is None
    children = {s.name: s for s in t.spans() if s is not root}
    assert set(children) == {"retrieval faiss", "rerank", "embeddings text-embedding-3-small", "chat gpt-4o-mini"}
    for s in children.values():
        assert s.parent.span_id == root.context.span_id
        assert s.context.trace_id == root.context.trace_id
    ret = children["retrieval faiss"]
    assert ret.kind == SpanKind.CLIENT
    assert ret.attributes[semconv.GEN_AI_OPERATION_NAME] == "retrieval"
    assert ret.attributes[semconv.GEN_AI_DATA_SOURCE_ID] == "faiss"
    assert ret.attributes[semconv.GEN_AI_RETRIEVAL_TOP_K] == 2
    assert json.loads(ret.attributes[semconv.GEN_AI_RETRIEVAL_DOCUMENTS]) == [
        {"id": "d1", "score": 0.91}, {"id": "d2", "score": 0.52},
    ]  # no content with capture: none
    assert children["rerank"].kind == SpanKind.INTERNAL
    assert children["rerank"].attributes[semconv.RAG_RERANK_MODEL] == "bge-reranker"
    assert children["rerank"].attributes[semconv.RAG_RERANK_TOP_N] == 1
    chat = children["chat gpt-4o-mini"]
    assert chat.kind == SpanKind.CLIENT
    assert chat.attributes[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert chat.attributes[semconv.GEN_AI_RESPONSE_ID] == "r-1"
    assert tuple(chat.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)
    assert semconv.GEN_AI_OUTPUT_MESSAGES not in chat.attributes
    assert root.attributes[semconv.RAG_CONTENT_CAPTURE] == "none"
    assert semconv.RAG_QUERY_TEXT not in root.attributes and semconv.RAG_ANSWER_TEXT not in root.attributes
    assert root.attributes[semconv.RAG_DOCUMENTS_COUNT] == 2  # the reranker's kept docs are not retrieval


def test_cost_on_each_model_span_and_summed_on_root(t: Captured) -> None:
    with rag_query():
        with embed("text-embedding-3-small") as e:
            e.set_usage(input_tokens=1000)
        with generate("gpt-4o-mini") as g:
            g.set_usage(input_tokens=1200, output_tokens=300)
        with generate("gpt-4o") as g:
            g.set_usage(input_tokens=500, output_tokens=50)
    emb = t.span("embeddings text-embedding-3-small").attributes[semconv.GEN_AI_USAGE_COST]
    c1 = t.span("chat gpt-4o-mini").attributes[semconv.GEN_AI_USAGE_COST]
    c2 = t.span("chat gpt-4o").attributes[semconv.GEN_AI_USAGE_COST]
    assert c1 == pytest.approx(price(t, "gpt-4o-mini", 1200, 300))
    assert c2 == pytest.approx(price(t, "gpt-4o", 500, 50))
    assert t.span("rag.query").attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(emb + c1 + c2)
    assert semconv.RAG_COST_UNKNOWN_MODEL not in t.span("rag.query").attributes
    assert counter_total(t, semconv.METRIC_RAG_COST) == pytest.approx(emb + c1 + c2)


def test_unknown_model_is_marked_warned_once_and_counted_once(t: Captured, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rag_otel")
    for _ in range(2):
        with rag_query():
            with generate("my-private-llm-7b") as g:
                g.set_usage(input_tokens=10, output_tokens=5)
            with generate("gpt-4o-mini") as g:
                g.set_usage(input_tokens=10, output_tokens=5)
    chats = t.spans("chat my-private-llm-7b")
    assert all(semconv.GEN_AI_USAGE_COST not in s.attributes for s in chats)  # no made-up cost
    assert all(s.attributes[semconv.RAG_COST_UNKNOWN_MODEL] is True for s in chats)
    for root in t.spans("rag.query"):
        assert root.attributes[semconv.RAG_COST_UNKNOWN_MODEL] is True
        assert root.attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(price(t, "gpt-4o-mini", 10, 5))
    assert len([r for r in caplog.records if "my-private-llm-7b" in r.getMessage()]) == 1
    assert counter_total(t, semconv.METRIC_RAG_COST_UNKNOWN_MODELS) == 1


def test_model_set_late_renames_span(t: Captured) -> None:
    with rag_query(), generate() as g:
        g.set_model("gpt-4o-mini", response_model="gpt-4o-mini-2024-07-18", provider="openai")
        g.set_usage(input_tokens=3, output_tokens=4)
    chat = t.span("chat gpt-4o-mini")
    assert chat.attributes[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert chat.attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(price(t, "gpt-4o-mini", 3, 4))


# --- function shapes -------------------------------------------------------------------------------
async def test_async_functions_nest_and_return_unchanged(t: Captured) -> None:
    @retrieve("chroma")
    async def search(q: str) -> list[tuple[str, float]]:
        await asyncio.sleep(0)
        return [("text one", 0.3)]

    @rag_query(features=["citations"])
    async def answer(q: str) -> str:
        await search(q)
        return "the answer"

    assert await answer("q") == "the answer"
    root, ret = t.span("rag.query"), t.span("retrieval chroma")
    assert ret.parent.span_id == root.context.span_id
    assert json.loads(ret.attributes[semconv.GEN_AI_RETRIEVAL_DOCUMENTS]) == [{"id": None, "score": 0.3}]
    assert tuple(root.attributes[semconv.RAG_FEATURES]) == ("citations",)


def test_generator_span_ends_when_stream_is_consumed(t: Captured) -> None:
    @generate("gpt-4o-mini")
    def stream():
        yield "Hel"
        yield "lo"
        current_rag_span().set_usage(input_tokens=5, output_tokens=2)

    with rag_query() as q:
        it = stream()
        assert next(it) == "Hel"
        assert t.spans("chat gpt-4o-mini") == []  # still streaming: not ended
        # between chunks the caller's context is the query, not the chat span
        assert trace.get_current_span() is q.span
        assert list(it) == ["lo"]
    chat = t.span("chat gpt-4o-mini")
    assert chat.attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert chat.attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] >= 0
    assert chat.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 2
    assert chat.status.status_code == StatusCode.UNSET


def test_generator_closed_early_ends_span_without_error(t: Captured) -> None:
    closed = []

    @generate("gpt-4o-mini")
    def stream():
        try:
            yield "a"
            yield "b"
        finally:
            closed.append(True)

    it = stream()
    next(it)
    it.close()
    assert closed == [True]
    chat = t.span("chat gpt-4o-mini")
    assert chat.status.status_code == StatusCode.UNSET and semconv.ERROR_TYPE not in chat.attributes


def test_generator_failure_mid_stream_is_recorded_and_reraised_unchanged(t: Captured) -> None:
    boom = ConnectionResetError("upstream closed")

    @rag_query
    def stream():
        yield "partial"
        raise boom

    with pytest.raises(ConnectionResetError) as info:
        list(stream())
    assert info.value is boom
    root = t.span("rag.query")
    assert root.status.status_code == StatusCode.ERROR
    assert root.attributes[semconv.ERROR_TYPE] == "ConnectionResetError"
    assert [e.name for e in root.events] == ["exception"]
    assert counter_total(t, semconv.METRIC_RAG_QUERIES, **{semconv.RAG_QUERY_STATUS: "error"}) == 1


def test_generator_send_and_return_value_pass_through(t: Captured) -> None:
    @retrieve("kb")
    def echo():
        got = yield "first"
        yield f"got {got}"
        return "done"

    def drive():
        g = echo()
        assert next(g) == "first"
        assert g.send("x") == "got x"
        result = yield from g
        return result

    d = drive()
    with pytest.raises(StopIteration) as stop:
        next(d)
    assert stop.value.value == "done"
    assert len(t.spans("retrieval kb")) == 1


async def test_async_generator_consumed_closed_and_failing(t: Captured) -> None:
    @generate("gpt-4o-mini")
    async def stream(n: int, fail: bool = False):
        for i in range(n):
            await asyncio.sleep(0)
            yield f"c{i}"
        if fail:
            raise TimeoutError("slow model")

    assert [c async for c in stream(3)] == ["c0", "c1", "c2"]
    agen = stream(5)
    assert await agen.__anext__() == "c0"
    await agen.aclose()
    with pytest.raises(TimeoutError):
        async for _ in stream(1, fail=True):
            pass
    spans = t.spans("chat gpt-4o-mini")
    assert len(spans) == 3
    assert [s.status.status_code for s in spans] == [StatusCode.UNSET, StatusCode.UNSET, StatusCode.ERROR]
    assert spans[2].attributes[semconv.ERROR_TYPE] == "TimeoutError"
    assert all(semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in s.attributes for s in spans)


def test_sync_error_sets_status_and_reraises_same_object(t: Captured) -> None:
    err = ValueError("bad question")

    @rag_query
    def ask() -> None:
        raise err

    with pytest.raises(ValueError) as info:
        ask()
    assert info.value is err
    root = t.span("rag.query")
    assert root.status.status_code == StatusCode.ERROR and "bad question" in root.status.description
    assert root.attributes[semconv.ERROR_TYPE] == "ValueError"
    assert counter_total(t, semconv.METRIC_RAG_QUERIES, **{semconv.RAG_QUERY_STATUS: "error"}) == 1
    assert [p.value for p in t.metric_points(semconv.METRIC_RAG_QUERIES_IN_FLIGHT)] == [0]


def test_query_metrics(t: Captured) -> None:
    @retrieve("kb")
    def search() -> list[dict]:
        return DOCS

    for _ in range(3):
        with rag_query():
            search()
            (in_flight,) = t.metric_points(semconv.METRIC_RAG_QUERIES_IN_FLIGHT)
            assert in_flight.value == 1
    assert counter_total(t, semconv.METRIC_RAG_QUERIES, **{semconv.RAG_QUERY_STATUS: "ok"}) == 3
    (dur,) = t.metric_points(semconv.METRIC_RAG_QUERY_DURATION)
    assert dur.count == 3 and tuple(dur.explicit_bounds) == semconv.DURATION_BUCKETS
    (docs,) = t.metric_points(semconv.METRIC_RAG_RETRIEVED_DOCUMENTS)
    assert docs.count == 3 and docs.sum == 6
    assert [p.value for p in t.metric_points(semconv.METRIC_RAG_QUERIES_IN_FLIGHT)] == [0]


def test_wraps_the_users_own_span() -> None:
    with capture() as t:
        tracer = t.tracer_provider.get_tracer("app")
        with tracer.start_as_current_span("handle_chat") as mine:
            with rag_query(span=mine, user_id="u9"), generate("gpt-4o-mini") as g:
                g.set_usage(input_tokens=10, output_tokens=10)
            assert mine.is_recording()  # rag-otel does not end a span it did not start
        assert [s.name for s in t.spans()] == ["chat gpt-4o-mini", "handle_chat"]
        root = t.span("handle_chat")
        assert root.attributes[semconv.USER_ID] == "u9"
        assert root.attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(price(t, "gpt-4o-mini", 10, 10))


# --- content, privacy, people ------------------------------------------------------------------------
def test_content_captured_redacted_and_capped_when_opted_in() -> None:
    cfg = full_capture(redact_patterns=[r"ACME-\d{6}"], max_chars=64)
    with capture(cfg) as t, rag_query("mail bob@example.com about ACME-123456") as q:
        with retrieve("kb") as r:
            r.set_query("order ACME-654321")
            r.set_documents([{"id": "d1", "score": 1.0, "text": "call +1 415 555 0100 now. " + "y" * 200}])
        q.set_answer("card 4111 1111 1111 1111")
    root, ret = t.span("rag.query"), t.span("retrieval kb")
    assert root.attributes[semconv.RAG_CONTENT_CAPTURE] == "full"
    assert root.attributes[semconv.RAG_QUERY_TEXT] == "mail [REDACTED:email] about [REDACTED:custom]"
    assert root.attributes[semconv.RAG_ANSWER_TEXT] == "card [REDACTED:card]"
    assert ret.attributes[semconv.GEN_AI_RETRIEVAL_QUERY_TEXT] == "order [REDACTED:custom]"
    (doc,) = json.loads(ret.attributes[semconv.GEN_AI_RETRIEVAL_DOCUMENTS])
    assert doc["content"].startswith("call [REDACTED:phone] now.") and len(doc["content"]) == 64
    assert ret.attributes[semconv.RAG_CONTENT_TRUNCATED] is True


def test_streamed_answer_is_captured_only_when_opted_in() -> None:
    @rag_query
    def stream():
        yield "Hello "
        yield "world"

    with capture(full_capture()) as t:
        list(stream())
        assert t.span("rag.query").attributes[semconv.RAG_ANSWER_TEXT] == "Hello world"
    with capture(ModelObservation(content={"capture": "none"})) as t:
        list(stream())
        assert semconv.RAG_ANSWER_TEXT not in t.span("rag.query").attributes


def test_generation_messages_in_semconv_shape() -> None:
    with capture(full_capture()) as t, generate("gpt-4o-mini") as g:
        g.set_messages([{"role": "user", "content": "hi"}], system_instructions="be brief")
        g.set_answer("hello")
    chat = t.span("chat gpt-4o-mini")
    assert json.loads(chat.attributes[semconv.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]}
    ]
    assert json.loads(chat.attributes[semconv.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == "hello"
    assert chat.attributes[semconv.GEN_AI_SYSTEM_INSTRUCTIONS] == "be brief"


def test_user_id_hashed_with_salt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_OTEL_USER_SALT", "pepper")
    cfg = ModelObservation()
    cfg.telemetry.hash_user_id = True
    with capture(cfg) as t, rag_query(user_id="alice@example.com", session_id="s1", conversation_id="c1"):
        pass
    attrs = t.span("rag.query").attributes
    assert semconv.USER_ID not in attrs
    assert attrs[semconv.USER_HASH] == hashlib.sha256(b"pepperalice@example.com").hexdigest()
    assert attrs[semconv.SESSION_ID] == "s1" and attrs[semconv.GEN_AI_CONVERSATION_ID] == "c1"


def test_people_and_features_from_request_headers_explicit_args_win(t: Captured) -> None:
    token = request_identity.set(RequestIdentity("hdr-user", "hdr-session", "hdr-conv", ("streaming",)))
    try:
        with rag_query(user_id="explicit", features=["follow-up"]) as q:
            q.add_features("citations", "streaming")
    finally:
        request_identity.reset(token)
    attrs = t.span("rag.query").attributes
    assert attrs[semconv.USER_ID] == "explicit"
    assert attrs[semconv.SESSION_ID] == "hdr-session" and attrs[semconv.GEN_AI_CONVERSATION_ID] == "hdr-conv"
    assert tuple(attrs[semconv.RAG_FEATURES]) == ("follow-up", "streaming", "citations")


def test_no_people_attributes_are_invented(t: Captured) -> None:
    with rag_query():
        pass
    attrs = t.span("rag.query").attributes
    for key in (semconv.USER_ID, semconv.USER_HASH, semconv.SESSION_ID, semconv.GEN_AI_CONVERSATION_ID):
        assert key not in attrs


# --- context propagation ----------------------------------------------------------------------------
async def test_context_and_cost_flow_across_gather(t: Captured) -> None:
    @generate("gpt-4o-mini")
    async def call(n: int) -> str:
        await asyncio.sleep(0.001 * n)
        assert current_rag_query() is not None
        current_rag_span().set_usage(input_tokens=100 * n, output_tokens=n)
        return "ok"

    async with rag_query() as q:
        await asyncio.gather(call(1), call(2), call(3))
    chats = t.spans("chat gpt-4o-mini")
    assert len(chats) == 3 and {c.parent.span_id for c in chats} == {q.span.get_span_context().span_id}
    expected = sum(price(t, "gpt-4o-mini", 100 * n, n) for n in (1, 2, 3))
    assert t.span("rag.query").attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(expected)


def test_context_and_cost_flow_into_thread_pool(t: Captured) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from rag_otel.sdk.instrumentors.thread_context import ThreadContextInstrumentor as ThreadingInstrumentor

    ThreadingInstrumentor().instrument()
    try:
        @embed("text-embedding-3-small")
        def embed_chunk(i: int) -> int:
            current_rag_span().set_usage(input_tokens=1000)
            return i

        with rag_query() as q, ThreadPoolExecutor(max_workers=2) as pool:
            assert sorted(pool.map(embed_chunk, range(4))) == [0, 1, 2, 3]
    finally:
        ThreadingInstrumentor().uninstrument()
    embs = t.spans("embeddings text-embedding-3-small")
    assert len(embs) == 4 and {s.parent.span_id for s in embs} == {q.span.get_span_context().span_id}
    one = embs[0].attributes[semconv.GEN_AI_USAGE_COST]
    assert t.span("rag.query").attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(4 * one)


# --- instrumentation must never break the host ------------------------------------------------------
def test_tracer_failure_does_not_break_the_call(t: Captured, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*a: object, **k: object) -> None:
        raise RuntimeError("tracer exploded")

    monkeypatch.setattr(t.runtime.tracer, "start_span", broken)

    @retrieve("kb")
    def search() -> list[dict]:
        return DOCS

    @rag_query
    async def never_mind() -> int:
        return 42

    assert search() is DOCS
    assert asyncio.run(never_mind()) == 42
    assert t.spans() == []


def test_content_policy_failure_is_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    with capture(full_capture()) as t:
        monkeypatch.setattr(t.runtime.content, "clean", lambda v: 1 / 0)

        @rag_query
        def ask(q: str) -> str:
            current_rag_query().set_query(q)
            return "answer"

        assert ask("hello") == "answer"
        assert t.span("rag.query").status.status_code == StatusCode.UNSET
        with rag_query("the query text fails to clean too"):
            pass
        assert len(t.spans("rag.query")) == 2  # ended, not leaked
        assert [p.value for p in t.metric_points(semconv.METRIC_RAG_QUERIES_IN_FLIGHT)] == [0]


def test_setters_accept_odd_inputs_without_raising(t: Captured) -> None:
    class Odd:
        score = "not a number"

    with retrieve("kb") as r:
        r.set_documents([Odd(), None, 3, ("text", float("nan"))])
        r.set_usage(input_tokens="many")  # swallowed: int("many") fails inside the setter
    ret = t.span("retrieval kb")
    assert json.loads(ret.attributes[semconv.GEN_AI_RETRIEVAL_DOCUMENTS]) == [
        {"id": None}, {"id": None}, {"id": None}, {"id": None},
    ]


def test_works_before_configure_over_the_global_provider() -> None:
    from rag_otel.sdk import runtime

    runtime.set_runtime(None)  # as in an app that never called configure()

    @rag_query
    def ask() -> str:
        with retrieve("kb") as r:
            r.set_documents(DOCS)
        return "fine"

    assert ask() == "fine"
    assert runtime.get_runtime().config == ModelObservation()


async def test_context_flows_into_run_in_executor_and_to_thread(t: Captured) -> None:
    from rag_otel.sdk.instrumentors.thread_context import ThreadContextInstrumentor as ThreadingInstrumentor

    @retrieve("kb")
    def search() -> list[dict]:
        assert current_rag_query() is not None
        return DOCS

    ThreadingInstrumentor().instrument()
    try:
        async with rag_query() as q:
            await asyncio.get_running_loop().run_in_executor(None, search)
            await asyncio.to_thread(search)
    finally:
        ThreadingInstrumentor().uninstrument()
    rets = t.spans("retrieval kb")
    assert len(rets) == 2 and {s.parent.span_id for s in rets} == {q.span.get_span_context().span_id}
    assert t.span("rag.query").attributes[semconv.RAG_DOCUMENTS_COUNT] == 4


def test_documents_json_is_capped_but_the_count_is_exact(t: Captured) -> None:
    with retrieve("kb") as r:
        r.set_documents(ids=[f"d{i}" for i in range(250)], scores=[1.0] * 250)
    ret = t.span("retrieval kb")
    assert len(json.loads(ret.attributes[semconv.GEN_AI_RETRIEVAL_DOCUMENTS])) == 100
    assert ret.attributes[semconv.RAG_DOCUMENTS_COUNT] == 250
    assert ret.attributes[semconv.RAG_RETRIEVAL_DOCUMENTS_OMITTED] == 150
    (docs,) = t.metric_points(semconv.METRIC_RAG_RETRIEVED_DOCUMENTS)
    assert docs.sum == 250


def test_retrieval_top_k_uses_the_genai_v0_1_name_and_dup_mode_adds_the_old_one(
        t: Captured, monkeypatch: pytest.MonkeyPatch) -> None:
    from rag_otel.sdk import conventions

    conventions.duplicate_old_names.cache_clear()
    with retrieve("kb", top_k=3):
        pass
    monkeypatch.setenv(semconv.ENV_SEMCONV_STABILITY_OPT_IN, "http, gen_ai_latest_experimental/dup")
    conventions.duplicate_old_names.cache_clear()
    try:
        with retrieve("kb", top_k=5):
            pass
    finally:
        conventions.duplicate_old_names.cache_clear()
    latest, dup = t.spans("retrieval kb")
    assert latest.attributes[semconv.GEN_AI_RETRIEVAL_TOP_K] == 3
    assert semconv.GEN_AI_REQUEST_TOP_K not in latest.attributes
    assert dup.attributes[semconv.GEN_AI_RETRIEVAL_TOP_K] == 5 and dup.attributes[semconv.GEN_AI_REQUEST_TOP_K] == 5


def test_default_capture_is_scoring_only_and_marks_the_root() -> None:
    """The default sends content for scoring only: the root says so, so the processor strips it."""
    with capture() as c, rag_query("What is the capital of France?") as q:
        q.set_answer("Paris.")
    root = c.span("rag.query")
    assert root.attributes[semconv.RAG_CONTENT_CAPTURE] == "scoring_only"
    assert root.attributes[semconv.RAG_QUERY_TEXT] == "What is the capital of France?"


def test_context_and_query_flow_into_a_plain_thread(t: Captured) -> None:
    """rag-otel's own thread_context instrumentor (configure() turns it on): a Thread started inside
    the query runs in the query's context, so its retrieval is a child and counts its documents."""
    import threading

    from rag_otel.sdk.instrumentors.thread_context import ThreadContextInstrumentor

    @retrieve("kb")
    def search() -> list[dict]:
        return DOCS

    inst = ThreadContextInstrumentor()
    inst.instrument()
    try:
        with rag_query() as q:
            worker = threading.Thread(target=search)
            worker.start()
            worker.join()
    finally:
        inst.uninstrument()
    (ret,) = t.spans("retrieval kb")
    assert ret.parent.span_id == q.span.get_span_context().span_id
    assert t.span("rag.query").attributes[semconv.RAG_DOCUMENTS_COUNT] == 2
    # uninstrumented: a new thread starts empty again (a separate trace)
    with rag_query():
        worker = threading.Thread(target=search)
        worker.start()
        worker.join()
    assert t.spans("retrieval kb")[-1].parent is None
