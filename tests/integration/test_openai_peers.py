"""When another openai instrumentation is installed and active, rag-otel steps aside: exactly one
LLM span per call and tokens counted once, whichever instrumented first.  The peers are the real
packages (dev extra): the official ``opentelemetry-instrumentation-genai-openai`` and
``openinference-instrumentation-openai``."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import openai
import pytest
from openinference.instrumentation.openai import OpenAIInstrumentor as OpenInferenceInstrumentor
from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor as OfficialInstrumentor

from rag_otel import semconv
from rag_otel.sdk.instrumentors.openai import OpenAIInstrumentor, peer_instrumentation
from tests.integration.test_openai_support import Telemetry, telemetry
from tests.support.fake_openai import FakeOpenAI

MESSAGES = [{"role": "user", "content": "What is OTel?"}]
PROMPT_TOKENS = 3
OFFICIAL = "opentelemetry-instrumentation-genai-openai"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(chunks=3) as server:
        yield server


@pytest.fixture
def client(fake: FakeOpenAI) -> openai.OpenAI:
    return fake.client()


@pytest.fixture
def tel() -> Iterator[Telemetry]:
    with telemetry() as t:
        yield t


@pytest.fixture(autouse=True)
def pristine_openai() -> Iterator[None]:
    """Put the SDK's own methods back after each test: a peer's ``unwrap`` takes the outermost
    wrapper, whoever owns it, so a stacked chain can outlive both instrumentors."""
    import openai.resources.chat.completions as chat
    import openai.resources.embeddings as emb

    owners = [(chat.Completions, "create"), (chat.AsyncCompletions, "create"),
              (chat.Completions, "parse"), (chat.AsyncCompletions, "parse"),
              (emb.Embeddings, "create"), (emb.AsyncEmbeddings, "create"),
              (openai.OpenAI, "request"), (openai.AsyncOpenAI, "request")]
    saved = [(o, n, o.__dict__.get(n)) for o, n in owners]
    yield
    for owner, name, original in saved:
        if original is None:
            if name in owner.__dict__:
                delattr(owner, name)
        else:
            setattr(owner, name, original)


def run_query(tel: Telemetry, client: openai.OpenAI) -> str | None:
    """A query with a plain call, a stream with usage and an embeddings call; the root's marker."""
    with tel.query() as q:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                                stream_options={"include_usage": True}):
            pass
        client.embeddings.create(model="text-embedding-3-small", input="alpha", encoding_format="float")
        assert q.cost == 0  # nothing of ours summed: the peer's spans carry the usage
    return tel.one(semconv.SPAN_RAG_QUERY).attributes.get(semconv.RAG_INSTRUMENTATION_SKIPPED)


def llm_spans(tel: Telemetry) -> list:
    return [s for s in tel.finished() if s.name != semconv.SPAN_RAG_QUERY]


def assert_only_peer_spans(tel: Telemetry, peer_scope_prefix: str) -> None:
    spans = llm_spans(tel)
    assert spans, "the peer produced no spans"
    scopes = {s.instrumentation_scope.name for s in spans}
    assert all(sc.startswith(peer_scope_prefix) for sc in scopes), scopes  # none of ours (rag_otel)


@pytest.mark.parametrize("ours_first", [False, True], ids=["peer-then-ours", "ours-then-peer"])
def test_official_genai_instrumentation_is_not_duplicated(tel, client, caplog, ours_first):
    ours, peer = OpenAIInstrumentor(), OfficialInstrumentor()
    first, second = (ours, peer) if ours_first else (peer, ours)
    for inst in (first, second):
        inst.instrument(tracer_provider=tel.tracer_provider, meter_provider=tel.meter_provider)
    try:
        with caplog.at_level(logging.WARNING, logger="rag_otel"):
            marker = run_query(tel, client)
        assert peer_instrumentation(client.chat.completions) == OFFICIAL
    finally:
        second.uninstrument()  # outermost first, as wrapt stacks expect
        first.uninstrument()
    assert marker == f"openai:{OFFICIAL}"
    assert_only_peer_spans(tel, "opentelemetry.instrumentation.genai.openai")
    chat = [s for s in llm_spans(tel) if s.name.startswith("chat")]
    assert len(chat) == 2  # one per call: the plain one and the stream
    # tokens are counted once, by the peer; our own GenAI metrics stayed silent
    assert tel.points(semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE, scope="rag_otel") == []
    assert tel.points(semconv.METRIC_RAG_COST) == []
    peer_input = [p for p in tel.points(semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE)
                  if p.attributes.get(semconv.GEN_AI_TOKEN_TYPE) == "input"
                  and p.attributes.get(semconv.GEN_AI_OPERATION_NAME) == "chat"]
    assert sum(p.sum for p in peer_input) == 2 * PROMPT_TOKENS


def test_step_aside_is_logged_once(tel, client, caplog):
    peer, ours = OfficialInstrumentor(), OpenAIInstrumentor()
    peer.instrument(tracer_provider=tel.tracer_provider)
    ours.instrument()
    import rag_otel.sdk.instrumentors.openai as mod

    mod._announced.discard(OFFICIAL)
    try:
        with caplog.at_level(logging.WARNING, logger="rag_otel"):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        peer.uninstrument()
        ours.uninstrument()
    said = [r for r in caplog.records if "already instrumented" in r.getMessage()]
    assert len(said) == 1 and OFFICIAL in said[0].getMessage()


def test_openinference_request_hook_is_detected(tel, client):
    peer, ours = OpenInferenceInstrumentor(), OpenAIInstrumentor()
    ours.instrument()
    peer.instrument(tracer_provider=tel.tracer_provider)
    try:
        marker = run_query(tel, client)
    finally:
        peer.uninstrument()
        ours.uninstrument()
    assert marker == "openai:openinference-instrumentation-openai"
    assert_only_peer_spans(tel, "openinference.instrumentation.openai")
    assert len(llm_spans(tel)) == 3  # chat, streamed chat, embeddings: one span each


def test_uninstrument_removes_only_our_wrapper(tel, client):
    ours, peer = OpenAIInstrumentor(), OfficialInstrumentor()
    ours.instrument()
    peer.instrument(tracer_provider=tel.tracer_provider)  # wraps on top of ours
    try:
        ours.uninstrument()
        create = openai.resources.chat.completions.Completions.__dict__["create"]
        assert create._self_wrapper.__module__.startswith("opentelemetry.instrumentation.genai.openai")
        assert not hasattr(create.__wrapped__, "_self_wrapper")  # ours is gone from the chain
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        peer.uninstrument()
    assert len(llm_spans(tel)) == 1  # the peer still works


def test_after_the_peer_leaves_we_instrument_again(tel, client):
    peer, ours = OfficialInstrumentor(), OpenAIInstrumentor()
    ours.instrument()
    peer.instrument(tracer_provider=tel.tracer_provider)
    try:
        peer.uninstrument()
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        ours.uninstrument()
    (span,) = llm_spans(tel)
    assert span.instrumentation_scope.name == "rag_otel"
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS


def test_a_stale_inactive_peer_wrapper_does_not_silence_us(tel, client):
    """Peer first, ours on top, peer uninstrumented: its unwrap removes *our* wrapper and leaves
    its own (now pass-through) one.  Instrumenting again must produce our spans."""
    peer, ours = OfficialInstrumentor(), OpenAIInstrumentor()
    peer.instrument(tracer_provider=tel.tracer_provider)
    ours.instrument()
    peer.uninstrument()
    ours.uninstrument()
    ours.instrument()
    try:
        assert peer_instrumentation(client.chat.completions) is None
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        ours.uninstrument()
    (span,) = llm_spans(tel)
    assert span.instrumentation_scope.name == "rag_otel"
