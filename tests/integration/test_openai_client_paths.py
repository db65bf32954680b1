"""Every openai client path records the answer, usage, cost, response model, id and finish reasons:
``create``, ``with_raw_response`` (LangChain's ChatOpenAI path), ``with_streaming_response``,
``parse``, sync and async, chat and embeddings; and a call whose usage never arrives says so.

The real openai SDK talks to the fake OpenAI server over a socket; spans come from the OTel SDK's
in-memory exporter."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pydantic
import pytest

import rag_otel
from rag_otel import semconv
from rag_otel.config import Content, ModelObservation
from tests.integration.test_openai_support import Telemetry, telemetry
from tests.support.fake_openai import FakeOpenAI, openai_instrumented

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is OTel?"},
]
ANSWER = "Deterministic answer to: What is OTel?"
PROMPT_TOKENS = 3 + 3
COMPLETION_TOKENS = len(ANSWER.split())
COST = (PROMPT_TOKENS * 0.15 + COMPLETION_TOKENS * 0.60) / 1e6  # gpt-4o-mini in pricing.yaml


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(chunks=4) as server:
        yield server


@pytest.fixture
def tel() -> Iterator[Telemetry]:
    with telemetry(ModelObservation(content=Content(capture="full"))) as t, openai_instrumented():
        yield t


@pytest.fixture
def client(fake: FakeOpenAI) -> openai.OpenAI:
    return fake.client()


@pytest.fixture
def aclient(fake: FakeOpenAI) -> openai.AsyncOpenAI:
    return fake.async_client()


def assert_complete(tel: Telemetry, *, answer: str = ANSWER, completion_tokens: int = COMPLETION_TOKENS) -> None:
    """One chat span with everything a query record needs from it."""
    span = tel.one("chat ")
    a = span.attributes
    assert span.end_time is not None
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == completion_tokens
    assert a[semconv.GEN_AI_USAGE_COST] == pytest.approx(
        (PROMPT_TOKENS * 0.15 + completion_tokens * 0.60) / 1e6, rel=1e-9)
    assert a[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini"
    assert a[semconv.GEN_AI_RESPONSE_ID].startswith("chatcmpl-")
    assert a[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    (out,) = json.loads(a[semconv.GEN_AI_OUTPUT_MESSAGES])
    assert out["parts"] == [{"type": "text", "content": answer}]
    assert semconv.RAG_USAGE_MISSING not in a


# --- with_raw_response: LangChain's ChatOpenAI path ----------------------------------------------
def test_raw_response_create_records_usage_model_and_answer(tel, client):
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.headers["content-type"].startswith("application/json")  # the raw response, untouched
    assert raw.parse().choices[0].message.content == ANSWER
    assert_complete(tel)


def test_raw_response_recorded_even_if_never_parsed(tel, client):
    client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert_complete(tel)


async def test_async_raw_response_create(tel, aclient):
    raw = await aclient.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.parse().choices[0].message.content == ANSWER
    assert_complete(tel)


def test_raw_response_stream_records_usage_when_read(tel, client):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == ANSWER
    assert_complete(tel)


async def test_async_raw_response_stream(tel, aclient):
    raw = await aclient.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    text = ""
    async for c in raw.parse():
        text += (c.choices[0].delta.content or "") if c.choices else ""
    assert text == ANSWER
    assert_complete(tel)


def test_raw_response_of_a_failed_call_raises_and_marks_the_span(tel, client):
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.with_raw_response.create(model="error-429", messages=MESSAGES)
    a = tel.one("chat ").attributes
    assert a[semconv.ERROR_TYPE] == "429"
    assert semconv.RAG_USAGE_MISSING not in a  # nothing was answered, nothing billed


class _Answer(pydantic.BaseModel):
    answer: str


def test_raw_response_parse_structured_output(tel, client):
    # chat.completions.parse since openai 1.9x; beta.chat.completions.parse before
    parse = getattr(client.chat.completions.with_raw_response, "parse", None) \
        or client.beta.chat.completions.with_raw_response.parse
    raw = parse(model="gpt-4o-mini", messages=MESSAGES, response_format=_Answer)
    assert raw.parse().choices[0].message.parsed == _Answer(answer=ANSWER)
    body = json.dumps({"answer": ANSWER})
    assert_complete(tel, answer=body, completion_tokens=len(body.split()))
    assert tel.one("chat ").attributes[semconv.GEN_AI_OUTPUT_TYPE] == "json"


def test_embeddings_raw_response(tel, client):
    raw = client.embeddings.with_raw_response.create(model="text-embedding-3-small", input="two words",
                                                     encoding_format="float")
    assert len(raw.parse().data[0].embedding) == 8
    a = tel.one("embeddings ").attributes
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 2
    assert a[semconv.GEN_AI_RESPONSE_MODEL] == "text-embedding-3-small"
    assert a[semconv.GEN_AI_USAGE_COST] > 0


# --- with_streaming_response: the body is read only on demand --------------------------------------
def test_streaming_response_parse(tel, client):
    with client.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=MESSAGES) as r:
        assert r.parse().choices[0].message.content == ANSWER
    assert_complete(tel)


def test_streaming_response_read_as_json_still_gives_usage(tel, client):
    with client.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=MESSAGES) as r:
        assert r.json()["choices"][0]["message"]["content"] == ANSWER
    assert_complete(tel)


def test_streaming_response_never_read_says_usage_is_missing(tel, client):
    with client.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=MESSAGES) as r:
        assert r.status_code == 200
    a = tel.one("chat ").attributes
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in a
    assert a[semconv.RAG_USAGE_MISSING] is True


def test_streaming_response_of_a_stream(tel, client):
    with client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}) as r:
        text = "".join(c.choices[0].delta.content or "" for c in r.parse() if c.choices)
    assert text == ANSWER
    assert_complete(tel)


async def test_async_streaming_response(tel, aclient):
    async with aclient.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES) as r:
        completion = await r.parse()
    assert completion.choices[0].message.content == ANSWER
    assert_complete(tel)


async def test_async_streaming_response_of_a_stream(tel, aclient):
    async with aclient.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}) as r:
        text = ""
        async for c in await r.parse():
            text += (c.choices[0].delta.content or "") if c.choices else ""
    assert text == ANSWER
    assert_complete(tel)


def test_embeddings_streaming_response(tel, client):
    with client.embeddings.with_streaming_response.create(model="text-embedding-3-small", input="a b c",
                                                          encoding_format="float") as r:
        assert len(r.parse().data) == 1
    assert tel.one("embeddings ").attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 3


@pytest.mark.skipif(not hasattr(openai.OpenAI(api_key="k").beta, "chat"),
                    reason="this openai has no beta.chat (removed in openai 2): covered by chat.completions.parse")
def test_beta_parse(tel, client):
    r = client.beta.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=_Answer)
    assert r.choices[0].message.parsed.answer == ANSWER
    assert len(tel.finished("chat ")) == 1


# --- usage missing: the cost is incomplete, and the record can say so ------------------------------
def test_stream_without_include_usage_marks_span_and_query(client, fake):
    with rag_otel.capture() as cap, openai_instrumented():
        with rag_otel.rag_query("What is OTel?"):
            for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
                pass
        spans = cap.spans()
    chat = next(s for s in spans if s.name.startswith("chat "))
    root = next(s for s in spans if s.name == semconv.SPAN_RAG_QUERY)
    assert chat.attributes[semconv.RAG_USAGE_MISSING] is True
    assert chat.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)  # the rest is still there
    assert root.attributes[semconv.RAG_USAGE_MISSING] is True


def test_stream_left_early_without_usage_is_missing(tel, client):
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    next(iter(stream))
    stream.close()
    assert tel.one("chat ").attributes[semconv.RAG_USAGE_MISSING] is True


def test_complete_calls_are_not_marked(tel, client):
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True}):
        pass
    assert all(semconv.RAG_USAGE_MISSING not in s.attributes for s in tel.finished("chat "))


# --- request parameters, as the official openai instrumentation records them -----------------------
def test_seed_choice_count_and_stop_sequences(tel, client, fake):
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=42, n=2, stop="END",
                                   frequency_penalty=0.5, presence_penalty=0.25)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, n=1, stop=["a", "b"])
    first, second = tel.finished("chat ")
    assert fake.requests[-2]["body"]["seed"] == 42  # what was sent is what is recorded
    a = first.attributes
    assert a[semconv.GEN_AI_REQUEST_SEED] == 42
    assert a[semconv.GEN_AI_REQUEST_CHOICE_COUNT] == 2
    assert a[semconv.GEN_AI_REQUEST_STOP_SEQUENCES] == ("END",)
    assert a[semconv.GEN_AI_REQUEST_FREQUENCY_PENALTY] == 0.5
    assert a[semconv.GEN_AI_REQUEST_PRESENCE_PENALTY] == 0.25
    b = second.attributes
    assert semconv.GEN_AI_REQUEST_CHOICE_COUNT not in b  # n=1 is the default: not recorded
    assert semconv.GEN_AI_REQUEST_SEED not in b
    assert b[semconv.GEN_AI_REQUEST_STOP_SEQUENCES] == ("a", "b")


def test_numeric_parameters_as_given_booleans_ignored_and_max_completion_tokens_wins(tel, client):
    """Ints stay ints, floats floats; a bool is no number; both token limits given: the newer one."""
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0, top_p=0.9,
                                   max_tokens=7, max_completion_tokens=9, presence_penalty=True, seed=True)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_completion_tokens=9, max_tokens=7,
                                   temperature=True)
    first, second = tel.finished("chat ")
    a = first.attributes
    assert a[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0 and type(a[semconv.GEN_AI_REQUEST_TEMPERATURE]) is int
    assert a[semconv.GEN_AI_REQUEST_TOP_P] == 0.9
    assert a[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 9
    assert semconv.GEN_AI_REQUEST_PRESENCE_PENALTY not in a and semconv.GEN_AI_REQUEST_SEED not in a
    b = second.attributes
    assert b[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 9  # whatever order the caller wrote them in
    assert semconv.GEN_AI_REQUEST_TEMPERATURE not in b


# --- the Responses API ---------------------------------------------------------------------------
needs_responses = pytest.mark.skipif(not hasattr(openai.OpenAI(api_key="k"), "responses"),
                                     reason="the Responses API arrived in openai 1.66")


def assert_responses_span(tel: Telemetry, *, stream: bool) -> None:
    span = tel.one("chat ")
    a = span.attributes
    assert span.name == "chat gpt-4o-mini" and a[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert a[semconv.GEN_AI_REQUEST_STREAM] is stream
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == COMPLETION_TOKENS
    assert a[semconv.GEN_AI_USAGE_COST] == pytest.approx(COST, rel=1e-9)
    assert a[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini"
    assert a[semconv.GEN_AI_RESPONSE_ID].startswith("resp_")
    assert a[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert json.loads(a[semconv.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "You are terse."}]
    (msg,) = json.loads(a[semconv.GEN_AI_INPUT_MESSAGES])
    assert msg["parts"] == [{"type": "text", "content": "What is OTel?"}]
    (out,) = json.loads(a[semconv.GEN_AI_OUTPUT_MESSAGES])
    assert out["parts"] == [{"type": "text", "content": ANSWER}]
    if stream:
        assert a[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0


@needs_responses
def test_responses_create(tel, client, fake):
    r = client.responses.create(model="gpt-4o-mini", instructions="You are terse.", input="What is OTel?",
                                max_output_tokens=64)
    assert r.output_text == ANSWER
    assert fake.requests[-1]["path"] == "/v1/responses"
    assert_responses_span(tel, stream=False)


@needs_responses
def test_responses_stream(tel, client):
    text = ""
    for event in client.responses.create(model="gpt-4o-mini", instructions="You are terse.", max_output_tokens=64,
                                         input=[{"role": "user", "content": "What is OTel?"}], stream=True):
        if event.type == "response.output_text.delta":
            text += event.delta
    assert text == ANSWER
    assert_responses_span(tel, stream=True)


@needs_responses
async def test_async_responses_stream(tel, aclient):
    stream = await aclient.responses.create(model="gpt-4o-mini", instructions="You are terse.", input="What is OTel?",
                                            max_output_tokens=64, stream=True)
    async for _ in stream:
        pass
    assert_responses_span(tel, stream=True)


@needs_responses
def test_responses_raw_response(tel, client):
    raw = client.responses.with_raw_response.create(model="gpt-4o-mini", instructions="You are terse.",
                                                    input="What is OTel?", max_output_tokens=64)
    assert raw.parse().output_text == ANSWER
    assert_responses_span(tel, stream=False)


@needs_responses
def test_responses_stream_helper(tel, client):
    with client.responses.stream(model="gpt-4o-mini", instructions="You are terse.", input="What is OTel?",
                                 max_output_tokens=64) as stream:
        for _ in stream:
            pass
        assert stream.get_final_response().output_text == ANSWER
    assert_responses_span(tel, stream=True)


@needs_responses
def test_responses_parse_structured_output(tel, client):
    r = client.responses.parse(model="gpt-4o-mini", input="What is OTel?", text_format=_Answer)
    assert r.output_parsed == _Answer(answer=ANSWER)
    a = tel.one("chat ").attributes
    body = json.dumps({"answer": ANSWER})
    assert a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == len(body.split())
    assert a[semconv.GEN_AI_USAGE_COST] > 0
    assert json.loads(a[semconv.GEN_AI_OUTPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": body}]
