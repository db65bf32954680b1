"""The openai instrumentation inside rag-otel's public span API: a ``rag_query`` root sums the
cost of the auto-instrumented calls under it, also when queries run concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import openai
import pytest

import rag_otel
from rag_otel import rag_query, semconv
from tests.support.fake_openai import FakeOpenAI, openai_instrumented

# pricing.yaml, USD per 1M tokens
GPT_4O_MINI_IN, GPT_4O_MINI_OUT, EMBED_IN = 0.15, 0.60, 0.02


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(chunks=4) as server:
        yield server


@pytest.fixture
def captured() -> Iterator[rag_otel.sdk.testing.Captured]:
    with rag_otel.capture() as c, openai_instrumented():
        yield c


def expected_cost(question: str) -> float:
    """Independent of the code under test: the fake's word counts times the listed prices."""
    words = len(question.split())
    answer_words = len(f"Deterministic answer to: {question}".split())
    return (words * EMBED_IN + words * GPT_4O_MINI_IN + answer_words * GPT_4O_MINI_OUT) / 1e6


async def answer(client: openai.AsyncOpenAI, question: str) -> str:
    @rag_query(features=["streaming"])
    async def run(q: str) -> str:
        await client.embeddings.create(model="text-embedding-3-small", input=q, encoding_format="float")
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": q}], stream=True,
            stream_options={"include_usage": True},
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    return await run(question)


async def test_root_query_sums_the_auto_instrumented_costs(captured, fake):
    client = fake.async_client()
    text = await answer(client, "how do spans nest")
    assert text == "Deterministic answer to: how do spans nest"
    root = captured.span(semconv.SPAN_RAG_QUERY)
    children = [s for s in captured.spans() if s.name != semconv.SPAN_RAG_QUERY]
    assert sorted(s.name for s in children) == ["chat gpt-4o-mini", "embeddings text-embedding-3-small"]
    assert all(s.parent.span_id == root.context.span_id for s in children)
    assert root.attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(expected_cost("how do spans nest"))


async def test_concurrent_queries_keep_their_own_costs(captured, fake):
    client = fake.async_client()
    questions = ["short one", "a much longer question with many more words in it"]
    await asyncio.gather(*(answer(client, q) for q in questions))
    roots = captured.spans(semconv.SPAN_RAG_QUERY)
    assert len(roots) == 2
    by_trace = {r.context.trace_id: r for r in roots}
    for s in captured.spans():
        if s.name != semconv.SPAN_RAG_QUERY:
            assert s.parent.span_id == by_trace[s.context.trace_id].context.span_id
    costs = sorted(r.attributes[semconv.GEN_AI_USAGE_COST] for r in roots)
    assert costs == pytest.approx(sorted(expected_cost(q) for q in questions))
