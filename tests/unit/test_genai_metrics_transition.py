"""GenAI metric names follow the semantic-conventions transition: v1.41 names by default, the GenAI
v0.1.0 ones under ``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental``, both under ``.../dup``.

Real parts only: the openai SDK over a socket to tests/support/fake_openai.py, our instrumentor,
the span API's ``retrieve()``, the OTel SDK's InMemoryMetricReader (rag_otel.sdk.testing.capture).
Expected token counts come from the fake's word counts, not from the code under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from rag_otel import retrieve, semconv
from rag_otel.sdk import conventions
from rag_otel.sdk.testing import Captured, capture
from tests.support.fake_openai import FakeOpenAI, openai_instrumented

QUESTION = "How long does the warranty on the blender last?"
IN_TOKENS = len(QUESTION.split())
OUT_TOKENS = len(f"Deterministic answer to: {QUESTION}".split())
EMBED_TEXT = "warranty terms for kitchen appliances"

V1_41 = (semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION, semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE,
         semconv.METRIC_GEN_AI_CLIENT_TIME_TO_FIRST_CHUNK)
V0_1 = (semconv.METRIC_GEN_AI_INFERENCE_DURATION, semconv.METRIC_GEN_AI_INFERENCE_TIME_TO_FIRST_CHUNK,
        semconv.METRIC_GEN_AI_INFERENCE_INPUT_TOKENS, semconv.METRIC_GEN_AI_INFERENCE_OUTPUT_TOKENS,
        semconv.METRIC_GEN_AI_INFERENCE_OP_INPUT_TOKENS, semconv.METRIC_GEN_AI_INFERENCE_OP_OUTPUT_TOKENS,
        semconv.METRIC_GEN_AI_EMBEDDINGS_DURATION, semconv.METRIC_GEN_AI_EMBEDDINGS_OP_INPUT_TOKENS,
        semconv.METRIC_GEN_AI_RETRIEVAL_DURATION)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(chunks=3) as server:
        yield server


def run_app(fake: FakeOpenAI, opt_in: str | None, monkeypatch: pytest.MonkeyPatch) -> Captured:
    """One non-streamed and one streamed chat, one embeddings call and one retrieval, with the switch set."""
    if opt_in is None:
        monkeypatch.delenv(semconv.ENV_SEMCONV_STABILITY_OPT_IN, raising=False)
    else:
        monkeypatch.setenv(semconv.ENV_SEMCONV_STABILITY_OPT_IN, opt_in)
    conventions.metric_generations.cache_clear()
    try:
        with capture() as t, openai_instrumented():
            client = fake.client()
            msgs = [{"role": "user", "content": QUESTION}]
            client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
            stream = client.chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True,
                                                    stream_options={"include_usage": True})
            for _ in stream:
                pass
            client.embeddings.create(model="text-embedding-3-small", input=EMBED_TEXT)
            with retrieve("manuals", top_k=2) as r:
                r.set_documents(ids=["a", "b"], scores=[0.9, 0.8])
            return t
    finally:
        conventions.metric_generations.cache_clear()


def names(t: Captured) -> set[str]:
    data = t.metric_reader.get_metrics_data()
    return {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


def instrument(t: Captured, name: str) -> Any:
    data = t.metric_reader.get_metrics_data()
    (m,) = [m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == name]
    return m


def test_default_keeps_the_v1_41_names(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    t = run_app(fake, None, monkeypatch)
    got = names(t)
    assert set(V1_41) <= got
    assert not (set(V0_1) & got)
    usage = t.metric_points(semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE)
    chat_in = [p for p in usage if p.attributes[semconv.GEN_AI_TOKEN_TYPE] == "input"
               and p.attributes[semconv.GEN_AI_OPERATION_NAME] == "chat"]
    assert sum(p.sum for p in chat_in) == 2 * IN_TOKENS


def test_latest_experimental_emits_the_v0_1_metrics_only(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    t = run_app(fake, "http,gen_ai_latest_experimental", monkeypatch)
    got = names(t)
    assert set(V0_1) <= got
    assert not ({semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE, semconv.METRIC_GEN_AI_CLIENT_TIME_TO_FIRST_CHUNK} & got)
    # gen_ai.client.operation.duration stays for operations without a family of their own: none here
    assert semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION not in got

    # token totals are monotonic counters ({token}) without gen_ai.token.type, per model call kind
    for name, want in ((semconv.METRIC_GEN_AI_INFERENCE_INPUT_TOKENS, 2 * IN_TOKENS),
                       (semconv.METRIC_GEN_AI_INFERENCE_OUTPUT_TOKENS, 2 * OUT_TOKENS)):
        m = instrument(t, name)
        assert m.unit == "{token}" and m.data.is_monotonic
        (p,) = m.data.data_points
        assert p.value == want
        assert semconv.GEN_AI_TOKEN_TYPE not in p.attributes
        assert p.attributes[semconv.GEN_AI_OPERATION_NAME] == "chat"
        assert p.attributes[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    # per-operation histograms with the spec's token buckets; one value per call
    (op_in,) = instrument(t, semconv.METRIC_GEN_AI_INFERENCE_OP_INPUT_TOKENS).data.data_points
    assert (op_in.count, op_in.sum) == (2, 2 * IN_TOKENS)
    assert tuple(op_in.explicit_bounds) == tuple(float(b) for b in semconv.TOKEN_BUCKETS)
    # durations: inference and embeddings each their own histogram, seconds, the spec's duration buckets
    for name in (semconv.METRIC_GEN_AI_INFERENCE_DURATION, semconv.METRIC_GEN_AI_EMBEDDINGS_DURATION,
                 semconv.METRIC_GEN_AI_RETRIEVAL_DURATION):
        m = instrument(t, name)
        assert m.unit == "s"
        assert all(tuple(p.explicit_bounds) == semconv.DURATION_BUCKETS for p in m.data.data_points)
    assert sum(p.count for p in t.metric_points(semconv.METRIC_GEN_AI_INFERENCE_DURATION)) == 2
    (ttfc,) = t.metric_points(semconv.METRIC_GEN_AI_INFERENCE_TIME_TO_FIRST_CHUNK)
    assert ttfc.count == 1  # the streamed call only
    (emb,) = t.metric_points(semconv.METRIC_GEN_AI_EMBEDDINGS_OP_INPUT_TOKENS)
    assert (emb.count, emb.sum) == (1, len(EMBED_TEXT.split()))
    assert emb.attributes[semconv.GEN_AI_OPERATION_NAME] == "embeddings"
    (ret,) = t.metric_points(semconv.METRIC_GEN_AI_RETRIEVAL_DURATION)
    assert ret.count == 1
    assert ret.attributes == {semconv.GEN_AI_OPERATION_NAME: "retrieval", semconv.GEN_AI_DATA_SOURCE_ID: "manuals"}


def test_dup_emits_both_generations_with_the_same_totals(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    t = run_app(fake, "gen_ai_latest_experimental/dup", monkeypatch)
    got = names(t)
    assert set(V1_41) | set(V0_1) <= got
    old_out = sum(p.sum for p in t.metric_points(semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE)
                  if p.attributes[semconv.GEN_AI_TOKEN_TYPE] == "output")
    (new_out,) = t.metric_points(semconv.METRIC_GEN_AI_INFERENCE_OUTPUT_TOKENS)
    assert old_out == new_out.value == 2 * OUT_TOKENS


def test_an_auto_instrumented_vector_store_search_records_the_retrieval_duration(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """FAISS under rag-otel's instrumentor: one gen_ai.retrieval.duration point per search, a failed one
    with its error.type (the same attributes the retrieval span has)."""
    import faiss
    import numpy as np

    from rag_otel.sdk.instrumentors.faiss import FaissInstrumentor

    monkeypatch.setenv(semconv.ENV_SEMCONV_STABILITY_OPT_IN, "gen_ai_latest_experimental")
    conventions.metric_generations.cache_clear()
    index = faiss.IndexFlatL2(4)
    index.add(np.eye(4, dtype=np.float32))
    inst = FaissInstrumentor()
    try:
        with capture() as t:
            inst.instrument()
            index.search(np.eye(4, dtype=np.float32)[:1], 2)
            with pytest.raises(AssertionError):
                index.search(np.zeros((1, 5), dtype=np.float32), 2)  # faiss asserts the dimension
            points = {p.attributes.get(semconv.ERROR_TYPE): p for p in
                      t.metric_points(semconv.METRIC_GEN_AI_RETRIEVAL_DURATION)}
    finally:
        inst.uninstrument()
        conventions.metric_generations.cache_clear()
    assert set(points) == {None, "AssertionError"}
    ok = points[None]
    assert ok.count == 1
    assert ok.attributes == {semconv.GEN_AI_OPERATION_NAME: "retrieval", semconv.GEN_AI_PROVIDER_NAME: "faiss",
                             semconv.GEN_AI_DATA_SOURCE_ID: "IndexFlatL2"}
