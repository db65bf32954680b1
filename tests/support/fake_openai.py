"""A real, local, OpenAI-compatible HTTP server for tests, the demo and the benchmarks.

The real ``openai`` SDK talks to it over a socket on 127.0.0.1, so everything between the SDK and
the wire (request building, SSE parsing, retries, errors) is the real thing.  Answers, token
counts and embedding vectors are deterministic, so tests can assert exact values.

Usage::

    with FakeOpenAI(chunks=5) as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=0)

    # or as a pytest fixture (import it into a test module or conftest):
    from tests.support.fake_openai import fake_openai  # yields a started FakeOpenAI

Endpoints: ``POST /v1/chat/completions`` (JSON or SSE stream, honouring
``stream_options.include_usage``), ``POST /v1/responses`` (the Responses API, JSON or typed SSE
events) and ``POST /v1/embeddings`` (float or base64).
Azure-style paths (``/openai/deployments/{name}/...``) are served too, the deployment name
standing in for the model.

Behaviour knobs: constructor defaults, overridable per request by headers
(``extra_headers={"x-fake-chunks": "25"}``):

==========================  ===================================================================
``x-fake-chunks``           content chunks in a stream (default ``chunks``)
``x-fake-latency-ms``       delay before the response starts (default ``latency``)
``x-fake-chunk-delay-ms``   delay between streamed chunks (default ``chunk_delay``)
``x-fake-cached-tokens``    ``usage.prompt_tokens_details.cached_tokens`` (default ``cached_tokens``)
``x-fake-reasoning-tokens`` ``usage.completion_tokens_details.reasoning_tokens``
``x-fake-output-tokens``    ``usage.completion_tokens`` as given (an exact integer, e.g. ``2**70``)
``x-fake-error``            answer with this HTTP status (e.g. ``429``, ``500``)
``x-fake-fail-after``       stream this many chunks, then an SSE error event (the SDK raises)
``x-fake-finish-reason``    finish reason of the answer (default ``stop``)
``x-fake-tool-call``        (non-stream) answer with a call of this tool, ``{"query": <question>}``
==========================  ===================================================================

A model named ``error-<status>`` (``error-429``, ``error-500``) also answers with that status.
With ``response_format`` ``json_object`` or ``json_schema`` (``chat.completions.parse``) the
answer is the JSON object ``{"answer": <the answer text>}``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

ANSWER_PREFIX = "Deterministic answer to:"
CREATED = 1_700_000_000  # fixed timestamp: responses are byte-for-byte reproducible


def count_tokens(text: str) -> int:
    """The fake's tokenizer: whitespace-separated words (at least 1 for non-empty text)."""
    return len(text.split())


def answer_for(messages: list[dict[str, Any]]) -> str:
    """The deterministic answer: a fixed prefix and the last user message."""
    last = next((m for m in reversed(messages) if m.get("role") == "user"), {"content": ""})
    content = last.get("content") or ""
    if isinstance(content, list):  # content parts
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return f"{ANSWER_PREFIX} {content}".strip()


def prompt_tokens_for(messages: list[dict[str, Any]]) -> int:
    """Prompt tokens the fake reports: words of every message's text content."""
    total = 0
    for m in messages:
        c = m.get("content") or ""
        if isinstance(c, list):
            c = " ".join(p.get("text", "") for p in c if isinstance(p, dict))
        total += count_tokens(str(c))
    return total


def embedding_for(text: str, dims: int) -> list[float]:
    """A unit vector derived from sha256(text): same text, same vector, on every machine."""
    out: list[float] = []
    counter = 0
    while len(out) < dims:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        out.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    vec = out[:dims]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def split_chunks(text: str, n: int) -> list[str]:
    """``text`` cut into exactly ``n`` (>=1) pieces that concatenate back to it."""
    n = max(1, n)
    size, extra = divmod(len(text), n)
    pieces, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


@dataclass
class FakeOpenAI:
    """The server: start it, point ``openai.OpenAI(base_url=fake.base_url)`` at it, stop it.

    ``requests`` keeps the last 1000 requests received (path, JSON body, headers), for assertions.
    """

    chunks: int = 5
    latency: float = 0.0
    chunk_delay: float = 0.0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    embedding_dims: int = 8
    # requested model -> the model the response names, as the real API answers an alias with its dated
    # snapshot (``{"gpt-4o-mini": "gpt-4o-mini-2024-07-18"}``); unnamed models answer as requested
    snapshots: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    requests: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=1000))
    _server: uvicorn.Server | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    port: int = 0

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (with ``/v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    def client(self) -> Any:
        """The real openai SDK's client pointed here (no retries: a failure shows at once)."""
        import openai

        return openai.OpenAI(base_url=self.base_url, api_key="test", max_retries=0)

    def async_client(self) -> Any:
        import openai

        return openai.AsyncOpenAI(base_url=self.base_url, api_key="test", max_retries=0)

    @property
    def azure_endpoint(self) -> str:
        """The endpoint for ``openai.AzureOpenAI(azure_endpoint=...)``."""
        return f"http://{self.host}:{self.port}"

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeOpenAI:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app(), log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-openai", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the HTTP app ---------------------------------------------------------------------
    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        @app.post("/openai/deployments/{deployment}/chat/completions")
        async def chat(request: Request, deployment: str | None = None) -> Any:
            body = await request.json()
            if deployment and not body.get("model"):
                body["model"] = deployment
            return await self._chat(request, body)

        @app.post("/v1/responses")
        async def responses(request: Request) -> Any:
            return await self._responses(request, await request.json())

        @app.post("/v1/embeddings")
        @app.post("/openai/deployments/{deployment}/embeddings")
        async def embeddings(request: Request, deployment: str | None = None) -> Any:
            body = await request.json()
            if deployment and not body.get("model"):
                body["model"] = deployment
            return await self._embeddings(request, body)

        return app

    def _knob(self, request: Request, name: str, default: float) -> float:
        v = request.headers.get(f"x-fake-{name}")
        return float(v) if v is not None else default

    def _error_status(self, request: Request, model: str) -> int | None:
        if v := request.headers.get("x-fake-error"):
            return int(v)
        if model.startswith("error-") and model[6:].isdigit():
            return int(model[6:])
        return None

    @staticmethod
    def _error(status: int) -> JSONResponse:
        return JSONResponse(
            {"error": {"message": f"injected error {status}", "type": "fake_error", "code": str(status)}},
            status_code=status,
        )

    async def _chat(self, request: Request, body: dict[str, Any]) -> Any:
        self.requests.append({"path": request.url.path, "body": body, "headers": dict(request.headers)})
        model = str(body.get("model", ""))
        await asyncio.sleep(self._knob(request, "latency-ms", self.latency * 1000) / 1000)
        if (status := self._error_status(request, model)) is not None:
            return self._error(status)
        model = self.snapshots.get(model, model)
        messages = body.get("messages") or []
        text = answer_for(messages)
        if (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
            text = json.dumps({"answer": text})
        finish = request.headers.get("x-fake-finish-reason", "stop")
        rid = "chatcmpl-" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
        reasoning = int(self._knob(request, "reasoning-tokens", self.reasoning_tokens))
        prompt = prompt_tokens_for(messages)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": count_tokens(text) + reasoning,
            "total_tokens": prompt + count_tokens(text) + reasoning,
            "prompt_tokens_details": {
                "cached_tokens": min(prompt, int(self._knob(request, "cached-tokens", self.cached_tokens)))
            },
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }
        if (forced := request.headers.get("x-fake-output-tokens")) is not None:  # exact, even above int64
            usage["completion_tokens"] = int(forced)
            usage["total_tokens"] = prompt + int(forced)
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if tool := request.headers.get("x-fake-tool-call"):
                question = text[len(ANSWER_PREFIX):].strip()
                message = {"role": "assistant", "content": None, "tool_calls": [{
                    "id": "call_" + rid[-8:], "type": "function",
                    "function": {"name": tool, "arguments": json.dumps({"query": question})}}]}
                finish = "tool_calls"
            return JSONResponse({
                "id": rid, "object": "chat.completion", "created": CREATED, "model": model,
                "choices": [{"index": 0, "finish_reason": finish, "logprobs": None, "message": message}],
                "usage": usage,
            })
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        pieces = split_chunks(text, int(self._knob(request, "chunks", self.chunks)))
        delay = self._knob(request, "chunk-delay-ms", self.chunk_delay * 1000) / 1000
        fail_after = request.headers.get("x-fake-fail-after")

        def chunk(delta: dict[str, Any], finish_reason: str | None, usage_: Any = None, choices: bool = True) -> str:
            c: dict[str, Any] = {"id": rid, "object": "chat.completion.chunk", "created": CREATED, "model": model,
                                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason,
                                              "logprobs": None}] if choices else []}
            if include_usage:
                c["usage"] = usage_
            return f"data: {json.dumps(c)}\n\n"

        async def events() -> AsyncIterator[str]:
            for i, piece in enumerate(pieces):
                if fail_after is not None and i >= int(fail_after):
                    yield 'data: {"error": {"message": "injected stream failure", "type": "fake_error"}}\n\n'
                    return
                delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
                yield chunk(delta, None)
                if delay:
                    await asyncio.sleep(delay)
            yield chunk({}, finish)
            if include_usage:
                yield chunk({}, None, usage, choices=False)
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def _responses(self, request: Request, body: dict[str, Any]) -> Any:
        """The Responses API: ``input`` (a string or messages) and ``instructions``; the same
        deterministic answer and word-count usage as chat; streamed as typed SSE events."""
        self.requests.append({"path": request.url.path, "body": body, "headers": dict(request.headers)})
        model = str(body.get("model", ""))
        if (status := self._error_status(request, model)) is not None:
            return self._error(status)
        given = body.get("input")
        messages = [{"role": "user", "content": given}] if isinstance(given, str) else list(given or [])
        if body.get("instructions"):
            messages = [{"role": "system", "content": body["instructions"]}, *messages]
        text = answer_for(messages)
        if ((body.get("text") or {}).get("format") or {}).get("type") in ("json_object", "json_schema"):
            text = json.dumps({"answer": text})  # responses.parse(text_format=...)
        rid = "resp_" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
        prompt, out = prompt_tokens_for(messages), count_tokens(text)
        cached = min(prompt, int(self._knob(request, "cached-tokens", self.cached_tokens)))
        reasoning = int(self._knob(request, "reasoning-tokens", self.reasoning_tokens))
        message = {"type": "message", "id": "msg_" + rid[5:], "status": "completed", "role": "assistant",
                   "content": [{"type": "output_text", "text": text, "annotations": []}]}

        def response(status: str, done: bool) -> dict[str, Any]:
            return {"id": rid, "object": "response", "created_at": CREATED, "model": model, "status": status,
                    "output": [message] if done else [], "parallel_tool_calls": True, "tool_choice": "auto",
                    "tools": [], "usage": {
                        "input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached},
                        "output_tokens": out + reasoning, "output_tokens_details": {"reasoning_tokens": reasoning},
                        "total_tokens": prompt + out + reasoning} if done else None}

        if not body.get("stream"):
            return JSONResponse(response("completed", True))
        pieces = split_chunks(text, int(self._knob(request, "chunks", self.chunks)))

        async def events() -> AsyncIterator[str]:
            seq = 0

            def event(kind: str, **fields: Any) -> str:
                nonlocal seq
                seq += 1
                return f"event: {kind}\ndata: {json.dumps({'type': kind, 'sequence_number': seq, **fields})}\n\n"

            where = {"item_id": message["id"], "output_index": 0, "content_index": 0}
            part = {"type": "output_text", "text": "", "annotations": []}
            yield event("response.created", response=response("in_progress", False))
            yield event("response.output_item.added", output_index=0,
                        item={**message, "status": "in_progress", "content": []})
            yield event("response.content_part.added", **where, part=part)
            for piece in pieces:
                yield event("response.output_text.delta", **where, delta=piece, logprobs=[])
            yield event("response.output_text.done", **where, text=text, logprobs=[])
            yield event("response.content_part.done", **where, part={**part, "text": text})
            yield event("response.output_item.done", output_index=0, item=message)
            yield event("response.completed", response=response("completed", True))

        return StreamingResponse(events(), media_type="text/event-stream")

    async def _embeddings(self, request: Request, body: dict[str, Any]) -> Any:
        self.requests.append({"path": request.url.path, "body": body, "headers": dict(request.headers)})
        model = str(body.get("model", ""))
        await asyncio.sleep(self._knob(request, "latency-ms", self.latency * 1000) / 1000)
        if (status := self._error_status(request, model)) is not None:
            return self._error(status)
        model = self.snapshots.get(model, model)
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else [str(t) for t in (inputs or [])]
        dims = int(body.get("dimensions") or self.embedding_dims)
        data = []
        for i, t in enumerate(texts):
            vec = embedding_for(t, dims)
            emb: Any = vec
            if body.get("encoding_format") == "base64":
                emb = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = sum(count_tokens(t) for t in texts)
        return JSONResponse({
            "object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A started fake server for one test; ``fake_openai.base_url`` is the SDK's base URL."""
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake_openai_url(fake_openai: FakeOpenAI) -> str:
    """Just the base URL of a started fake server."""
    return fake_openai.base_url


@contextmanager
def openai_instrumented() -> Iterator[None]:
    """rag-otel's openai instrumentor on for the block, off after it (whatever the block raised)."""
    from rag_otel.sdk.instrumentors.openai import OpenAIInstrumentor

    inst = OpenAIInstrumentor()
    inst.instrument()
    try:
        yield
    finally:
        inst.uninstrument()

