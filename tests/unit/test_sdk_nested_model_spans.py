"""An app's ``generate()``/``embed()`` around a model call of the same kind counts its tokens and
cost once: the innermost call (which saw the provider's usage) is the one counted.

Real parts only: the openai SDK over a socket to tests/support/fake_openai.py, our instrumentor,
the OTel SDK with in-memory exporters and reader (rag_otel.sdk.testing.capture).  Expected costs
come from the fake's word counts times pricing.yaml's prices, not from the code under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan

from rag_otel import current_rag_span, embed, generate, rag_query, semconv
from rag_otel.sdk.runtime import QueryState, current_query
from rag_otel.sdk.testing import Captured, capture
from tests.support.fake_openai import FakeOpenAI, openai_instrumented

CHAT_IN, CHAT_OUT, EMBED_IN = 0.15, 0.60, 0.02  # pricing.yaml: gpt-4o-mini, text-embedding-3-small, USD / 1M
CHAT, EMBED = "gpt-4o-mini", "text-embedding-3-small"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(chunks=3) as server:
        yield server


@pytest.fixture
def t() -> Iterator[Captured]:
    with capture() as c, openai_instrumented():
        yield c


@pytest.fixture
def client(fake: FakeOpenAI) -> openai.OpenAI:
    return fake.client()


@pytest.fixture
def aclient(fake: FakeOpenAI) -> openai.AsyncOpenAI:
    return fake.async_client()


# --- expectations, independent of the code under test ---------------------------------------------
def chat_tokens(question: str) -> tuple[int, int]:
    return len(question.split()), len(f"Deterministic answer to: {question}".split())


def chat_cost(inp: int, out: int) -> float:
    return (inp * CHAT_IN + out * CHAT_OUT) / 1e6


def msgs(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


# --- reading what came out ---------------------------------------------------------------------
def tokens_metric(t: Captured, token_type: str, operation: str = "chat") -> tuple[int, int]:
    """(sum, count) of gen_ai.client.token.usage for one token type and operation."""
    points = [p for p in t.metric_points(semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE)
              if p.attributes[semconv.GEN_AI_TOKEN_TYPE] == token_type
              and p.attributes[semconv.GEN_AI_OPERATION_NAME] == operation]
    return int(sum(p.sum for p in points)), sum(p.count for p in points)


def cost_metric(t: Captured) -> float:
    return sum(p.value for p in t.metric_points(semconv.METRIC_RAG_COST))


def model_spans(t: Captured, name: str) -> tuple[ReadableSpan, ...]:
    """The spans named ``name`` in start order (a wrapper before what it wraps)."""
    return tuple(sorted(t.spans(name), key=lambda s: s.start_time))


def assert_wrapper(span: ReadableSpan, inp: int | None, out: int | None) -> None:
    """The user's usage stays on the wrapper, marked, with no cost of its own."""
    a = span.attributes
    assert a[semconv.RAG_USAGE_COUNTED_BY_CHILD] is True
    assert a.get(semconv.GEN_AI_USAGE_INPUT_TOKENS) == inp
    assert a.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS) == out
    assert semconv.GEN_AI_USAGE_COST not in a


def assert_counted(span: ReadableSpan, cost: float) -> None:
    assert span.attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(cost)
    assert semconv.RAG_USAGE_COUNTED_BY_CHILD not in span.attributes


def root_cost(t: Captured) -> float:
    return t.span(semconv.SPAN_RAG_QUERY).attributes[semconv.GEN_AI_USAGE_COST]


# --- chat ----------------------------------------------------------------------------------------
def test_sync_generate_around_instrumented_chat_counts_once(t: Captured, client: openai.OpenAI) -> None:
    question = "what is nested cost"
    inp, out = chat_tokens(question)

    @generate(CHAT, provider="openai")
    def answer(q: str) -> str:
        resp = client.chat.completions.create(model=CHAT, messages=msgs(q))
        current_rag_span().set_usage(input_tokens=resp.usage.prompt_tokens,  # the app says it too
                                     output_tokens=resp.usage.completion_tokens)
        return resp.choices[0].message.content

    with rag_query(question):
        state: QueryState = current_query.get()
        assert answer(question) == f"Deterministic answer to: {question}"

    outer, inner = model_spans(t, f"chat {CHAT}")
    assert inner.parent.span_id == outer.context.span_id
    assert_wrapper(outer, inp, out)
    assert_counted(inner, chat_cost(inp, out))
    assert root_cost(t) == pytest.approx(chat_cost(inp, out))
    assert (state.input_tokens, state.output_tokens) == (inp, out)
    assert tokens_metric(t, "input") == (inp, 1)
    assert tokens_metric(t, "output") == (out, 1)
    assert cost_metric(t) == pytest.approx(chat_cost(inp, out))
    durations = t.metric_points(semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION)
    assert sum(p.count for p in durations) == 2  # both are operations the app waited on


async def test_async_with_generate_and_a_plain_generate_beside_it(t: Captured, aclient: openai.AsyncOpenAI) -> None:
    """The wrapper is not counted; a generate() with no model call under it still is."""
    question = "async nested question here"
    inp, out = chat_tokens(question)

    async with rag_query(question):
        state: QueryState = current_query.get()
        async with generate(CHAT) as g:
            resp = await aclient.chat.completions.create(model=CHAT, messages=msgs(question))
            g.set_usage(input_tokens=resp.usage.prompt_tokens, output_tokens=resp.usage.completion_tokens)
        with generate("gpt-4o") as own:  # a client we do not instrument: the app's word is all there is
            own.set_usage(input_tokens=1000, output_tokens=100)

    own_cost = (1000 * 2.50 + 100 * 10.00) / 1e6  # pricing.yaml: gpt-4o
    outer, inner = model_spans(t, f"chat {CHAT}")
    assert_wrapper(outer, inp, out)
    assert_counted(inner, chat_cost(inp, out))
    assert_counted(t.span("chat gpt-4o"), own_cost)
    assert root_cost(t) == pytest.approx(chat_cost(inp, out) + own_cost)
    assert (state.input_tokens, state.output_tokens) == (inp + 1000, out + 100)
    assert tokens_metric(t, "input") == (inp + 1000, 2)
    assert tokens_metric(t, "output") == (out + 100, 2)
    assert cost_metric(t) == pytest.approx(chat_cost(inp, out) + own_cost)


def test_generate_streaming_an_instrumented_stream(t: Captured, client: openai.OpenAI) -> None:
    """A decorated generator relaying an instrumented stream (usage in its last chunk)."""
    question = "stream me the nested answer"
    inp, out = chat_tokens(question)

    @generate(CHAT, stream=True)
    def answer(q: str) -> Iterator[str]:
        stream = client.chat.completions.create(model=CHAT, messages=msgs(q), stream=True,
                                                stream_options={"include_usage": True})
        for chunk in stream:
            if chunk.usage is not None:
                current_rag_span().set_usage(input_tokens=chunk.usage.prompt_tokens,
                                             output_tokens=chunk.usage.completion_tokens)
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content

    with rag_query(question):
        state: QueryState = current_query.get()
        assert "".join(answer(question)) == f"Deterministic answer to: {question}"

    outer, inner = model_spans(t, f"chat {CHAT}")
    assert_wrapper(outer, inp, out)
    assert outer.attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert_counted(inner, chat_cost(inp, out))
    assert root_cost(t) == pytest.approx(chat_cost(inp, out))
    assert (state.input_tokens, state.output_tokens) == (inp, out)
    assert tokens_metric(t, "input") == (inp, 1)
    assert cost_metric(t) == pytest.approx(chat_cost(inp, out))


async def test_async_generator_generate_and_a_call_in_a_thread(t: Captured, aclient: openai.AsyncOpenAI,
                                                               client: openai.OpenAI) -> None:
    """An async-generator generate() whose model call runs in a worker thread (asyncio.to_thread
    carries the context), next to one whose inner stream reports no usage (the app's counts)."""
    q1, q2 = "threaded nested call", "no usage in this stream"
    in1, out1 = chat_tokens(q1)

    @generate(CHAT)
    async def threaded(q: str) -> Any:
        resp = await asyncio.to_thread(client.chat.completions.create, model=CHAT, messages=msgs(q))
        current_rag_span().set_usage(input_tokens=in1, output_tokens=out1)
        yield resp.choices[0].message.content

    @generate("gpt-4o")
    async def without_usage(q: str) -> Any:
        stream = await aclient.chat.completions.create(model="gpt-4o", messages=msgs(q), stream=True)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content
        current_rag_span().set_usage(input_tokens=50, output_tokens=5)  # e.g. counted with a tokenizer

    async with rag_query(q1):
        state: QueryState = current_query.get()
        assert [c async for c in threaded(q1)] == [f"Deterministic answer to: {q1}"]
        assert "".join([c async for c in without_usage(q2)]) == f"Deterministic answer to: {q2}"

    own_cost = (50 * 2.50 + 5 * 10.00) / 1e6
    outer1, inner1 = model_spans(t, f"chat {CHAT}")
    assert_wrapper(outer1, in1, out1)
    assert_counted(inner1, chat_cost(in1, out1))
    outer2, inner2 = model_spans(t, "chat gpt-4o")
    assert_counted(outer2, own_cost)
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in inner2.attributes
    assert root_cost(t) == pytest.approx(chat_cost(in1, out1) + own_cost)
    assert (state.input_tokens, state.output_tokens) == (in1 + 50, out1 + 5)
    assert tokens_metric(t, "input") == (in1 + 50, 2)
    assert cost_metric(t) == pytest.approx(chat_cost(in1, out1) + own_cost)


def test_generate_in_generate_counts_the_innermost(t: Captured, client: openai.OpenAI) -> None:
    """Three levels over one instrumented call, then two app-made levels with no client call:
    only the innermost usage of each chain is counted, and every wrapper is marked."""
    question = "deeply nested"
    inp, out = chat_tokens(question)

    with rag_query(question):
        state: QueryState = current_query.get()
        with generate(CHAT) as top:
            with generate(CHAT):  # no set_usage: still a wrapper of a counted call
                client.chat.completions.create(model=CHAT, messages=msgs(question))
            top.set_usage(input_tokens=inp, output_tokens=out)
        with generate("gpt-4o") as agent:
            with generate("gpt-4o") as step:
                step.set_usage(input_tokens=300, output_tokens=30)
            agent.set_usage(input_tokens=300, output_tokens=30)

    step_cost = (300 * 2.50 + 30 * 10.00) / 1e6
    top_span, mid_span, call = model_spans(t, f"chat {CHAT}")
    assert_wrapper(top_span, inp, out)
    assert_wrapper(mid_span, None, None)
    assert_counted(call, chat_cost(inp, out))
    agent_span, step_span = model_spans(t, "chat gpt-4o")
    assert_wrapper(agent_span, 300, 30)
    assert_counted(step_span, step_cost)
    assert root_cost(t) == pytest.approx(chat_cost(inp, out) + step_cost)
    assert (state.input_tokens, state.output_tokens) == (inp + 300, out + 30)
    assert tokens_metric(t, "input") == (inp + 300, 2)
    assert cost_metric(t) == pytest.approx(chat_cost(inp, out) + step_cost)


def test_stream_handed_out_of_the_block_still_counts_once(t: Captured, client: openai.OpenAI) -> None:
    """The inner stream is still open when the wrapper ends: its usage will come, so the wrapper's
    is not counted; the stream, read after the block, counts it."""
    question = "stream read later"
    inp, out = chat_tokens(question)

    with rag_query(question):
        state: QueryState = current_query.get()
        with generate(CHAT) as g:
            stream = client.chat.completions.create(model=CHAT, messages=msgs(question), stream=True,
                                                    stream_options={"include_usage": True})
            g.set_usage(input_tokens=inp, output_tokens=out)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    assert text == f"Deterministic answer to: {question}"
    outer, inner = model_spans(t, f"chat {CHAT}")
    assert_wrapper(outer, inp, out)
    assert_counted(inner, chat_cost(inp, out))
    assert root_cost(t) == pytest.approx(chat_cost(inp, out))
    assert (state.input_tokens, state.output_tokens) == (inp, out)
    assert tokens_metric(t, "output") == (out, 1)


def test_failed_inner_call_leaves_the_wrappers_usage_counted(t: Captured, client: openai.OpenAI) -> None:
    """An inner call that failed recorded no usage: the app's own count stands (and the error passes
    through unchanged); a wrapped call that succeeded in the same query still counts once."""
    question = "one ok one failed"
    inp, out = chat_tokens(question)

    with rag_query(question):
        state: QueryState = current_query.get()
        with generate(CHAT) as ok:
            client.chat.completions.create(model=CHAT, messages=msgs(question))
            ok.set_usage(input_tokens=inp, output_tokens=out)
        with pytest.raises(openai.InternalServerError), generate("gpt-4o") as failing:
            failing.set_usage(input_tokens=40, output_tokens=0)
            client.chat.completions.create(model="error-500", messages=msgs(question))

    failed_cost = 40 * 2.50 / 1e6
    outer, _ = model_spans(t, f"chat {CHAT}")
    assert_wrapper(outer, inp, out)
    assert_counted(t.span("chat gpt-4o"), failed_cost)
    assert t.span("chat error-500").attributes[semconv.ERROR_TYPE] == "500"
    assert root_cost(t) == pytest.approx(chat_cost(inp, out) + failed_cost)
    assert (state.input_tokens, state.output_tokens) == (inp + 40, out)


# --- embeddings ----------------------------------------------------------------------------------
async def test_embed_around_instrumented_embeddings(t: Captured, aclient: openai.AsyncOpenAI) -> None:
    """embed() over the instrumented call counts once; an embed() alone, and a generate() over an
    embeddings call (another kind: two calls), are counted."""
    text = "five words to embed here"
    n = len(text.split())

    @embed(EMBED, provider="openai")
    async def vectorize(s: str) -> list[float]:
        resp = await aclient.embeddings.create(model=EMBED, input=s, encoding_format="float")
        current_rag_span().set_usage(input_tokens=resp.usage.prompt_tokens)
        return resp.data[0].embedding

    async with rag_query(text):
        state: QueryState = current_query.get()
        assert len(await vectorize(text)) == 8
        with embed(EMBED) as local:  # a local model we do not instrument
            local.set_usage(input_tokens=1000)
        with generate("gpt-4o") as g:  # a chat wrapper: the embeddings call under it is not its usage
            await aclient.embeddings.create(model=EMBED, input=text, encoding_format="float")
            g.set_usage(input_tokens=10, output_tokens=2)

    chat_own = (10 * 2.50 + 2 * 10.00) / 1e6
    wrapper, inner, local_span, under_chat = model_spans(t, f"embeddings {EMBED}")
    assert inner.parent.span_id == wrapper.context.span_id
    assert_wrapper(wrapper, n, None)
    assert_counted(inner, n * EMBED_IN / 1e6)
    assert_counted(local_span, 1000 * EMBED_IN / 1e6)
    assert_counted(under_chat, n * EMBED_IN / 1e6)
    assert_counted(t.span("chat gpt-4o"), chat_own)
    expected = (2 * n + 1000) * EMBED_IN / 1e6 + chat_own
    assert root_cost(t) == pytest.approx(expected)
    assert state.input_tokens == 2 * n + 1000 + 10
    assert tokens_metric(t, "input", "embeddings") == (2 * n + 1000, 3)
    assert cost_metric(t) == pytest.approx(expected)
