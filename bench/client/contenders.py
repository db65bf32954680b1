"""Worker-side setup of each contender: instrument the process, return its hooks.

Hooks are what a workload calls: ``root``/``retrieve`` (context managers) and ``chat``/``stream``/
``embed``. Auto-instrumented contenders call the openai client directly; contenders whose library
only instruments openai (the peers) get the hand-made root and retrieval spans, as a user of that
library would have to write them. Content capture is OFF for every contender (rag-otel's default),
so nobody pays for serialising prompts and answers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from client.sdk_setup import Sdk


class Retrieval(Protocol):
    def documents(self, docs: list[tuple[str, float]]) -> None: ...


class Hooks(Protocol):
    def root(self, question: str) -> AbstractContextManager[Any]: ...
    def retrieve(self, data_source: str, top_k: int) -> AbstractContextManager[Retrieval]: ...
    def chat(self, client: Any, **kw: Any) -> Any: ...
    def stream(self, client: Any, **kw: Any) -> Iterator[Any]: ...
    def embed(self, client: Any, **kw: Any) -> Any: ...


class _NoRetrieval:
    def documents(self, docs: list[tuple[str, float]]) -> None:
        pass


class Plain:
    """No spans of its own: the openai calls as the app writes them (baseline, and auto-instrumented)."""

    @contextmanager
    def root(self, question: str) -> Iterator[None]:
        yield

    @contextmanager
    def retrieve(self, data_source: str, top_k: int) -> Iterator[Retrieval]:
        yield _NoRetrieval()

    def chat(self, client: Any, **kw: Any) -> Any:
        return client.chat.completions.create(**kw)

    def stream(self, client: Any, **kw: Any) -> Iterator[Any]:
        return client.chat.completions.create(**kw)

    def embed(self, client: Any, **kw: Any) -> Any:
        return client.embeddings.create(**kw)


class PeerHooks(Plain):
    """A peer's auto-instrumented openai calls, plus hand-made root and retrieval spans."""

    def __init__(self) -> None:
        from client.handmade import HandMade

        hm = HandMade()
        self.root = hm.root  # type: ignore[method-assign]
        self.retrieve = hm.retrieve  # type: ignore[method-assign]


def _none(sdk: Sdk) -> Hooks:
    return Plain()


def _handmade(sdk: Sdk) -> Hooks:
    from client.handmade import HandMade

    return HandMade()


def _rag_otel(sdk: Sdk) -> Hooks:
    from client.rag_otel_hooks import setup

    return setup(sdk)


def _genai_openai(sdk: Sdk) -> Hooks:
    from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

    os.environ.pop("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", None)
    OpenAIInstrumentor().instrument(
        tracer_provider=sdk.tracer_provider, meter_provider=sdk.meter_provider, logger_provider=sdk.logger_provider
    )
    return PeerHooks()


def _openllmetry(sdk: Sdk) -> Hooks:
    os.environ["TRACELOOP_TRACE_CONTENT"] = "false"  # its default is to capture content
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(
        tracer_provider=sdk.tracer_provider, meter_provider=sdk.meter_provider, logger_provider=sdk.logger_provider
    )
    return PeerHooks()


def _openinference(sdk: Sdk) -> Hooks:
    from openinference.instrumentation import TraceConfig
    from openinference.instrumentation.openai import OpenAIInstrumentor

    # Its default captures inputs and outputs; hide them like everyone else's content.
    OpenAIInstrumentor().instrument(
        tracer_provider=sdk.tracer_provider, config=TraceConfig(hide_inputs=True, hide_outputs=True)
    )
    return PeerHooks()


SETUP: dict[str, Callable[[Sdk], Hooks]] = {
    "none": _none,
    "none-aa": _none,
    "handmade": _handmade,
    "rag-otel": _rag_otel,
    "genai-openai": _genai_openai,
    "openllmetry": _openllmetry,
    "openinference": _openinference,
}
