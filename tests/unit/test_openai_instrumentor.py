"""Pure parts of the openai instrumentation: provider naming, error types, peer detection on real
wrapt chains, the stream accumulator's refusal to raise, and the captured messages' shape."""

from __future__ import annotations

import json
import types
from typing import Any

import pytest
import wrapt
from opentelemetry.sdk.trace import TracerProvider

from rag_otel import semconv
from rag_otel.config import Content, ModelObservation
from rag_otel.sdk.instrumentors import _openai_stream
from rag_otel.sdk.instrumentors.openai import _capture_input, _error_type, _peer_in_chain, provider_for_host
from rag_otel.sdk.runtime import Runtime, set_runtime


@pytest.mark.parametrize(("host", "azure", "expected"), [
    ("api.openai.com", False, "openai"),
    ("API.OpenAI.com.", False, "openai"),
    ("myres.openai.azure.com", False, "azure.ai.openai"),
    ("gateway.internal", True, "azure.ai.openai"),  # an AzureOpenAI client behind a proxy
    ("myres.services.ai.azure.com", False, "azure.ai.inference"),
    ("api.groq.com", False, "groq"),
    ("api.deepseek.com", False, "deepseek"),
    ("generativelanguage.googleapis.com", False, "gcp.gemini"),
    ("api.together.xyz", False, "together"),
    ("openrouter.ai", False, "openrouter"),
    ("llm.example.co.uk", False, "example"),
    ("vllm", False, "vllm"),  # a compose service name
    ("localhost", False, "openai_compatible"),
    ("127.0.0.1", False, "openai_compatible"),
    ("::1", False, "openai_compatible"),
    ("", False, "openai_compatible"),
])
def test_provider_from_host(host, azure, expected):
    assert provider_for_host(host, azure) == expected


def test_error_type_is_status_or_class_name():
    class Fake429(Exception):
        status_code = 429

    assert _error_type(Fake429()) == "429"
    assert _error_type(TimeoutError()) == "TimeoutError"


class _Owner:
    def create(self) -> str:
        return "ok"


def _wrapper_from(module: str) -> Any:
    """A real wrapt wrapper function whose ``__module__`` claims to come from ``module``."""

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return wrapped(*args, **kwargs)

    wrapper.__module__ = module
    return wrapper


def test_peer_detected_anywhere_in_the_chain():
    inner = wrapt.FunctionWrapper(_Owner.create, _wrapper_from("opentelemetry.instrumentation.openai.shared"))
    outer = wrapt.FunctionWrapper(inner, _wrapper_from("rag_otel.sdk.instrumentors.openai"))
    assert _peer_in_chain(outer) == "opentelemetry-instrumentation-openai (OpenLLMetry)"
    assert _peer_in_chain(inner) == "opentelemetry-instrumentation-openai (OpenLLMetry)"


def test_unrelated_wrappers_and_plain_functions_are_not_peers():
    assert _peer_in_chain(_Owner.create) is None
    assert _peer_in_chain(None) is None
    mine = wrapt.FunctionWrapper(_Owner.create, _wrapper_from("myapp.retry"))
    assert _peer_in_chain(mine) is None
    # a name that merely starts like a peer's module is not that peer
    lookalike = wrapt.FunctionWrapper(_Owner.create, _wrapper_from("openlitmus.tools"))
    assert _peer_in_chain(lookalike) is None


def test_stream_state_swallows_unreadable_chunks_and_ends_once():
    ended: list[BaseException | None] = []
    state = _openai_stream.StreamState(lambda s, e: ended.append(e), capture=True)
    state.on_chunk(object())  # no .id/.choices: logged once, never raised
    good = types.SimpleNamespace(
        id="c1", model="m", usage=None,
        choices=[types.SimpleNamespace(index=0, finish_reason="stop", delta=types.SimpleNamespace(content="hi"))],
    )
    state.on_chunk(good)
    assert state.finish_reasons == {0: "stop"} and state.texts == {0: ["hi"]}
    state.end(None)
    state.end(RuntimeError("late"))
    assert ended == [None]


def test_stream_state_end_never_raises():
    def broken(state: Any, error: Any) -> None:
        raise RuntimeError("bug in on_end")

    _openai_stream.StreamState(broken, capture=False).end(None)  # logged, not raised


def test_input_messages_take_the_spec_shape():
    tp = TracerProvider()
    set_runtime(Runtime.create(ModelObservation(content=Content(capture="full")), tp))
    try:
        span = tp.get_tracer("t").start_span("s")
        _capture_input(span, [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Weather "}, {"type": "text", "text": "in Oslo?"}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "4°C"},
        ])
        span.end()
    finally:
        set_runtime(None)
    a = span.attributes
    assert json.loads(a[semconv.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be brief."}]
    assert json.loads(a[semconv.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Oslo?"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "weather",
                                         "arguments": '{"city": "Oslo"}'}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "4°C"}]},
    ]
