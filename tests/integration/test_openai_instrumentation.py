"""The real openai SDK (sync, async, Azure) against the fake OpenAI server over a real socket,
instrumented by ``OpenAIInstrumentor``; spans and metrics read from the OTel SDK's in-memory
exporters."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator

import openai
import pydantic
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from rag_otel import semconv
from rag_otel.config import Content, ModelObservation, load_config
from rag_otel.sdk.instrumentors.openai import OpenAIInstrumentor
from tests.integration.test_openai_support import Telemetry, telemetry
from tests.support.fake_openai import FakeOpenAI, embedding_for, openai_instrumented

CACHED, REASONING = 2, 3
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is OTel? Mail me at jane@example.com"},
]
PROMPT_TOKENS = 3 + 7  # the fake counts words of every message
ANSWER = "Deterministic answer to: What is OTel? Mail me at jane@example.com"
COMPLETION_TOKENS = len(ANSWER.split()) + REASONING
# gpt-4o-mini in pricing.yaml, USD per 1M tokens: input 0.15, cached input 0.075, output 0.60.
EXPECTED_COST = (
    (PROMPT_TOKENS - CACHED) * 0.15 + CACHED * 0.075 + COMPLETION_TOKENS * 0.60
) / 1e6


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(chunks=5, cached_tokens=CACHED, reasoning_tokens=REASONING) as server:
        yield server


@pytest.fixture
def tel() -> Iterator[Telemetry]:
    with telemetry(ModelObservation(content=Content(capture="none"))) as t, openai_instrumented():
        yield t


@pytest.fixture
def client(fake: FakeOpenAI) -> openai.OpenAI:
    return fake.client()


@pytest.fixture
def aclient(fake: FakeOpenAI) -> openai.AsyncOpenAI:
    return fake.async_client()


def assert_chat_usage(span, *, model: str = "gpt-4o-mini") -> None:
    a = span.attributes
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == COMPLETION_TOKENS
    assert a[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == CACHED
    assert a[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == REASONING
    assert a[semconv.GEN_AI_USAGE_COST] == pytest.approx(EXPECTED_COST, rel=1e-9)
    assert a[semconv.GEN_AI_RESPONSE_MODEL] == model
    assert a[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[semconv.GEN_AI_RESPONSE_ID].startswith("chatcmpl-")


def test_sync_chat_span_is_a_client_child_of_the_query_with_usage_and_cost(tel, client, fake):
    with tel.query() as q:
        r = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, temperature=0.2, top_p=0.9, max_tokens=64
        )
    assert r.choices[0].message.content == ANSWER  # the result is the SDK's, untouched
    span, root = tel.one("chat "), tel.one(semconv.SPAN_RAG_QUERY)
    assert span.name == "chat gpt-4o-mini" and span.kind is SpanKind.CLIENT
    assert span.parent.span_id == root.context.span_id
    a = span.attributes
    assert a[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert a[semconv.GEN_AI_PROVIDER_NAME] == "openai_compatible"  # 127.0.0.1 names no provider
    assert a[semconv.SERVER_ADDRESS] == "127.0.0.1" and a[semconv.SERVER_PORT] == fake.port
    assert a[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert a[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert a[semconv.GEN_AI_REQUEST_TOP_P] == 0.9
    assert a[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert a[semconv.GEN_AI_REQUEST_STREAM] is False
    assert a[semconv.GEN_AI_RESPONSE_ID] == r.id
    assert_chat_usage(span)
    assert q.cost == pytest.approx(EXPECTED_COST, rel=1e-9)  # summed on the root query
    assert (q.input_tokens, q.output_tokens) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    # no content unless the user opts in
    assert not any(k in a for k in (semconv.GEN_AI_INPUT_MESSAGES, semconv.GEN_AI_OUTPUT_MESSAGES,
                                    semconv.GEN_AI_SYSTEM_INSTRUCTIONS))


def test_chat_metrics_duration_tokens_by_type_and_cost(tel, client):
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    (duration,) = tel.points(semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION)
    assert duration.count == 1 and 0 < duration.sum < 5
    assert duration.attributes[semconv.GEN_AI_PROVIDER_NAME] == "openai_compatible"
    assert duration.attributes[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert tuple(duration.explicit_bounds) == semconv.DURATION_BUCKETS
    tokens = {p.attributes[semconv.GEN_AI_TOKEN_TYPE]: p for p in tel.points(semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE)}
    assert tokens["input"].sum == PROMPT_TOKENS and tokens["output"].sum == COMPLETION_TOKENS
    (cost,) = tel.points(semconv.METRIC_RAG_COST)
    assert cost.value == pytest.approx(EXPECTED_COST, rel=1e-9)
    assert tel.points(semconv.METRIC_GEN_AI_CLIENT_TIME_TO_FIRST_CHUNK) == []  # not a stream


async def test_async_chat(tel, aclient):
    with tel.query() as q:
        r = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert r.choices[0].message.content == ANSWER
    span, root = tel.one("chat "), tel.one(semconv.SPAN_RAG_QUERY)
    assert span.parent.span_id == root.context.span_id
    assert_chat_usage(span)
    assert q.cost == pytest.approx(EXPECTED_COST, rel=1e-9)


def test_stream_with_usage_ends_when_consumed(tel, client):
    with tel.query() as q:
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        assert isinstance(stream, openai.Stream)  # the proxy passes for the SDK's own type
        assert stream.response.status_code == 200  # attribute access is forwarded
        assert tel.finished("chat ") == []  # still open while the stream is read
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == ANSWER
    span = tel.one("chat ")
    assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert_chat_usage(span)
    ttfc = span.attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    assert 0 < ttfc <= (span.end_time - span.start_time) / 1e9
    (point,) = tel.points(semconv.METRIC_GEN_AI_CLIENT_TIME_TO_FIRST_CHUNK)
    assert point.count == 1 and point.sum == pytest.approx(ttfc)
    assert q.cost == pytest.approx(EXPECTED_COST, rel=1e-9)


def test_stream_without_usage_reports_no_tokens_and_no_cost(tel, client):
    with tel.query() as q:
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        chunks = list(stream)
    assert len(chunks) == 6  # 5 content chunks + the finish chunk
    a = tel.one("chat ").attributes
    assert a[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini"
    assert semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in a
    for unknown in (semconv.GEN_AI_USAGE_INPUT_TOKENS, semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
                    semconv.GEN_AI_USAGE_COST, semconv.RAG_COST_UNKNOWN_MODEL):
        assert unknown not in a  # unknown is not zero: nothing is invented
    assert tel.points(semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE) == []
    assert q.cost == 0 and q.input_tokens == 0


async def test_async_stream_with_async_with(tel, aclient):
    stream = await aclient.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    async with stream as s:
        text = "".join([c.choices[0].delta.content or "" async for c in s if c.choices])
    assert text == ANSWER
    span = tel.one("chat ")
    assert_chat_usage(span)
    assert span.attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0


def test_close_mid_stream_ends_span_once_without_error(tel, client):
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True})
    first = next(stream)
    assert first.choices[0].delta.content
    stream.close()
    stream.close()  # a second close is harmless and does not end the span again
    span = tel.one("chat ")
    assert span.status.status_code is not StatusCode.ERROR
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes  # usage never arrived
    assert span.attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert sum(p.count for p in tel.points(semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION)) == 1


async def test_async_close_mid_stream(tel, aclient):
    stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    await stream.__anext__()
    await stream.close()
    assert tel.one("chat ").status.status_code is not StatusCode.ERROR


def test_leaving_a_for_loop_early_ends_the_span(tel, client):
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    first = next(stream)  # explicit next() and a for loop read the same stream
    for _ in stream:
        break
    assert first.choices[0].delta.role == "assistant"
    span = tel.one("chat ")
    assert span.status.status_code is not StatusCode.ERROR
    stream.close()
    assert len(tel.finished("chat ")) == 1  # ended once


async def test_close_after_leaving_an_async_for_loop_ends_the_span_once(tel, aclient):
    stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    async for _ in stream:
        break
    await stream.close()
    assert len(tel.finished("chat ")) == 1


def test_abandoned_stream_ends_when_garbage_collected(tel, client):
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    next(stream)
    del stream
    gc.collect()
    assert len(tel.finished("chat ")) == 1


def test_exception_mid_stream_reaches_the_caller_and_marks_the_span(tel, client):
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                            extra_headers={"x-fake-fail-after": "2"})
    got = []
    with pytest.raises(openai.APIError, match="injected stream failure"):
        for c in stream:
            got.append(c)
    assert len(got) == 2
    span = tel.one("chat ")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "APIError"
    (duration,) = tel.points(semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION)
    assert duration.attributes[semconv.ERROR_TYPE] == "APIError"


@pytest.mark.parametrize(("model", "exc", "status"), [
    ("error-429", openai.RateLimitError, "429"),
    ("error-500", openai.InternalServerError, "500"),
])
def test_http_errors_pass_through_with_error_type(tel, client, model, exc, status):
    with tel.query(), pytest.raises(exc) as info:
        client.chat.completions.create(model=model, messages=MESSAGES)
    assert info.value.status_code == int(status)
    span = tel.one("chat ")
    assert span.name == f"chat {model}"
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == status
    assert any(e.name == "exception" for e in span.events)
    (duration,) = tel.points(semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION)
    assert duration.attributes[semconv.ERROR_TYPE] == status


async def test_async_error_passes_through(tel, aclient):
    with pytest.raises(openai.RateLimitError):
        await aclient.chat.completions.create(model="error-429", messages=MESSAGES)
    assert tel.one("chat ").attributes[semconv.ERROR_TYPE] == "429"


def test_embeddings_sync_span_tokens_cost_and_untouched_vectors(tel, client):
    with tel.query() as q:
        r = client.embeddings.create(model="text-embedding-3-small", input=["alpha beta", "gamma"],
                                     encoding_format="float", dimensions=8)
    assert r.data[0].embedding == pytest.approx(embedding_for("alpha beta", 8))
    span, root = tel.one("embeddings "), tel.one(semconv.SPAN_RAG_QUERY)
    assert span.name == "embeddings text-embedding-3-small" and span.kind is SpanKind.CLIENT
    assert span.parent.span_id == root.context.span_id
    a = span.attributes
    assert a[semconv.GEN_AI_OPERATION_NAME] == "embeddings"
    assert a[semconv.GEN_AI_REQUEST_ENCODING_FORMATS] == ("float",)
    assert a[semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == 8
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 3
    assert a[semconv.GEN_AI_USAGE_COST] == pytest.approx(3 * 0.02 / 1e6)
    assert q.cost == pytest.approx(3 * 0.02 / 1e6)
    tokens = tel.points(semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE)
    assert [p.attributes[semconv.GEN_AI_TOKEN_TYPE] for p in tokens] == ["input"]


async def test_embeddings_async_default_base64(tel, aclient):
    r = await aclient.embeddings.create(model="text-embedding-3-small", input="alpha")
    assert r.data[0].embedding == pytest.approx(embedding_for("alpha", 8), abs=1e-6)
    a = tel.one("embeddings ").attributes
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1


def test_azure_client_is_azure_provider(tel, fake):
    az = openai.AzureOpenAI(azure_endpoint=fake.azure_endpoint, api_key="k", api_version="2024-10-21",
                            max_retries=0)
    r = az.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert r.choices[0].message.content == ANSWER
    a = tel.one("chat ").attributes
    assert a[semconv.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"
    assert a[semconv.GEN_AI_USAGE_COST] == pytest.approx(EXPECTED_COST, rel=1e-9)


def test_unknown_model_is_marked_not_priced(tel, client):
    with tel.query() as q:
        client.chat.completions.create(model="my-finetune-xyz", messages=MESSAGES)
    a = tel.one("chat ").attributes
    assert a[semconv.RAG_COST_UNKNOWN_MODEL] is True
    assert semconv.GEN_AI_USAGE_COST not in a
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS  # tokens are still known
    assert q.cost_known is False
    (unknown,) = tel.points(semconv.METRIC_RAG_COST_UNKNOWN_MODELS)
    assert unknown.value == 1


def test_content_captured_redacted_when_opted_in(client):
    cfg = ModelObservation(content=Content(capture="full"))
    with telemetry(cfg) as tel:
        inst = OpenAIInstrumentor()
        inst.instrument()
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
            for _ in stream:
                pass
        finally:
            inst.uninstrument()
        plain, streamed = tel.finished("chat ")
    for span in (plain, streamed):
        a = span.attributes
        assert json.loads(a[semconv.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "You are terse."}]
        (msg,) = json.loads(a[semconv.GEN_AI_INPUT_MESSAGES])
        assert msg["role"] == "user"
        assert msg["parts"][0]["content"] == "What is OTel? Mail me at [REDACTED:email]"
        (out,) = json.loads(a[semconv.GEN_AI_OUTPUT_MESSAGES])
        assert out["role"] == "assistant" and out["finish_reason"] == "stop"
        assert out["parts"][0]["content"] == ANSWER.replace("jane@example.com", "[REDACTED:email]")


def test_uninstrument_stops_spans(client):
    with telemetry() as tel:
        inst = OpenAIInstrumentor()
        inst.instrument()
        inst.uninstrument()
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert tel.finished() == []
        for owner, method in ((openai.resources.chat.completions.Completions, "create"),
                              (openai.resources.chat.completions.AsyncCompletions, "parse"),
                              (openai.resources.embeddings.AsyncEmbeddings, "create")):
            assert not hasattr(owner.__dict__[method], "_self_wrapper")


class _BrokenTracer:
    """Stands in for a buggy tracer (no real one fails on demand): every span start raises."""

    def start_span(self, *args, **kwargs):
        raise RuntimeError("tracer bug")


def test_broken_instrumentation_never_reaches_the_app(client):
    with telemetry() as tel:
        tel.runtime.tracer = _BrokenTracer()
        inst = OpenAIInstrumentor()
        inst.instrument()
        try:
            r = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            text = "".join(c.choices[0].delta.content or "" for c in
                           client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
                           if c.choices)
            vec = client.embeddings.create(model="text-embedding-3-small", input="a", encoding_format="float")
            with pytest.raises(openai.RateLimitError):  # the SDK's own errors still reach the app
                client.chat.completions.create(model="error-429", messages=MESSAGES)
        finally:
            inst.uninstrument()
    assert r.choices[0].message.content == ANSWER and text == ANSWER
    assert vec.data[0].embedding == pytest.approx(embedding_for("a", 8))


def test_failure_while_recording_usage_still_ends_the_span(tel, client):
    tel.runtime.prices = None  # price lookup now raises inside record_model_call
    r = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert r.choices[0].message.content == ANSWER
    span = tel.one("chat ")
    assert span.end_time is not None
    assert span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)


def test_durations_follow_the_servers_latency(tel, client):
    """200 ms before the first byte, then 5 chunks 40 ms apart: TTFC ~0.2 s, duration ~0.36 s."""
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True,
        extra_headers={"x-fake-latency-ms": "200", "x-fake-chunk-delay-ms": "40"},
    )
    for _ in stream:
        pass
    a = tel.one("chat ").attributes
    ttfc = a[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    (duration,) = tel.points(semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION)
    assert 0.2 <= ttfc < 1.0
    assert duration.sum >= ttfc + 4 * 0.04


def test_unreadable_messages_with_capture_on_still_give_a_complete_span(client):
    """Content capture chokes on a malformed tool_calls value: the call, its span and usage go on."""
    odd = [{"role": "user", "content": "What is OTel?", "tool_calls": "not-a-list"}]
    with telemetry(ModelObservation(content=Content(capture="full"))) as tel:
        inst = OpenAIInstrumentor()
        inst.instrument()
        try:
            r = client.chat.completions.create(model="gpt-4o-mini", messages=odd)
        finally:
            inst.uninstrument()
        span = tel.one("chat ")
    assert r.choices[0].message.content == "Deterministic answer to: What is OTel?"
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 3
    assert semconv.GEN_AI_INPUT_MESSAGES not in span.attributes
    assert span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]  # the answer side still captured


async def test_async_exception_mid_stream(tel, aclient):
    stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                                   extra_headers={"x-fake-fail-after": "1"})
    with pytest.raises(openai.APIError, match="injected stream failure"):
        async for _ in stream:
            pass
    span = tel.one("chat ")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "APIError"


def test_tool_calls_are_captured_as_output_parts(client):
    with telemetry(ModelObservation(content=Content(capture="full"))) as tel:
        inst = OpenAIInstrumentor()
        inst.instrument()
        try:
            r = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                               extra_headers={"x-fake-tool-call": "search_docs"})
        finally:
            inst.uninstrument()
        a = tel.one("chat ").attributes
    call = r.choices[0].message.tool_calls[0]
    assert a[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    (out,) = json.loads(a[semconv.GEN_AI_OUTPUT_MESSAGES])
    assert out["parts"] == [{"type": "tool_call", "id": call.id, "name": "search_docs",
                             "arguments": call.function.arguments.replace("jane@example.com", "[REDACTED:email]")}]


def test_capture_env_var_turns_content_on(client):
    cfg = load_config(env={semconv.ENV_CAPTURE_MESSAGE_CONTENT: "true"})
    with telemetry(cfg) as tel:
        inst = OpenAIInstrumentor()
        inst.instrument()
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        finally:
            inst.uninstrument()
        assert semconv.GEN_AI_INPUT_MESSAGES in tel.one("chat ").attributes


async def test_async_azure_client(tel, fake):
    az = openai.AsyncAzureOpenAI(azure_endpoint=fake.azure_endpoint, api_key="k", api_version="2024-10-21",
                                 max_retries=0)
    stream = await az.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                              stream_options={"include_usage": True})
    async for _ in stream:
        pass
    span = tel.one("chat ")
    assert span.attributes[semconv.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"
    assert_chat_usage(span)


def test_stream_read_after_the_query_block_still_costs_that_query(tel, client):
    """A web app returns the stream and its server reads it after the handler (and its context)
    has gone: the cost goes to the query that made the call, not to whatever is current then."""
    with tel.query() as q:
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                                stream_options={"include_usage": True})
    with tel.query() as other:
        for _ in stream:
            pass
    assert q.cost == pytest.approx(EXPECTED_COST, rel=1e-9)
    assert other.cost == 0


def test_raw_response_calls_are_recorded_in_full(tel, client):
    """LangChain's ChatOpenAI path (``with_raw_response``): once recorded without usage (issue 10)."""
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.parse().choices[0].message.content == ANSWER
    assert_chat_usage(tel.one("chat "))  # more paths: test_openai_client_paths.py


def test_embeddings_error(tel, client):
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model="error-500", input="a")
    span = tel.one("embeddings ")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "500"


def test_stream_helper_goes_through_create(tel, client):
    """``chat.completions.stream()`` calls ``create(stream=True)`` inside: one span, with usage."""
    with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES,
                                        stream_options={"include_usage": True}) as s:
        final = s.get_final_completion()
    assert final.choices[0].message.content == ANSWER
    assert_chat_usage(tel.one("chat "))


class _Answer(pydantic.BaseModel):
    answer: str


def test_parse_structured_output(tel, client):
    with tel.query() as q:
        r = client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=_Answer)
    assert r.choices[0].message.parsed == _Answer(answer=ANSWER)
    span = tel.one("chat ")
    assert span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    tokens = span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS]
    assert tokens == len(json.dumps({"answer": ANSWER}).split()) + REASONING
    assert q.cost == pytest.approx(span.attributes[semconv.GEN_AI_USAGE_COST])


async def test_async_parse(tel, aclient):
    r = await aclient.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=_Answer)
    assert r.choices[0].message.parsed.answer == ANSWER
    assert tel.one("chat ").attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
