"""CPU that rag-otel's openai instrumentation adds, in one process, two ways.

1. Per streamed chunk, isolated from the network: the same 25 real ``ChatCompletionChunk``
   objects iterated bare and through ``ChatStream`` (content capture off, then on).
2. Per call, end to end: the real SDK against ``tests/support/fake_openai.py`` (its own thread),
   client-thread CPU (``time.thread_time``) with the instrumentor off and on, toggled between
   batches.  Spans go to a ``SimpleSpanProcessor`` with a dropping exporter, metrics to an
   in-memory reader, so all span work lands in the timed window.

Rounds are interleaved with a rotating order; medians with p25-p75.  The cross-venv comparison
against the peers is bench_client_overhead.py; this one is for the instrumentor's own hot paths.

    PYTHONPATH=. .venv/bin/python bench/bench_openai_stream_chunk.py [--rounds 31]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from openai.types.chat import ChatCompletionChunk

from rag_otel.sdk.instrumentors._openai_stream import ChatStream, StreamState

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support.fake_openai, without PYTHONPATH

CHUNKS = 25
STREAMS_PER_BATCH = 400


def make_chunks(n: int) -> list[ChatCompletionChunk]:
    """What the SDK yields for an n-chunk answer with include_usage: deltas, finish, usage."""
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o-mini"}
    out = [ChatCompletionChunk.model_validate(
        {**base, "choices": [{"index": 0, "delta": {"content": f"word{i} "}, "finish_reason": None}]})
        for i in range(n - 2)]
    out.append(ChatCompletionChunk.model_validate(
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    out.append(ChatCompletionChunk.model_validate(
        {**base, "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 23, "total_tokens": 33}}))
    return out


class _Stream:
    """The shape of ``openai.Stream`` the proxy relies on: ``__next__`` and ``close``."""

    def __init__(self, items: list[Any]) -> None:
        self._it: Iterator[Any] = iter(items)

    def __next__(self) -> Any:
        return next(self._it)

    def __iter__(self) -> _Stream:
        return self

    def close(self) -> None:
        pass


def _noop(state: StreamState, error: BaseException | None) -> None:
    pass


def bare(chunks: list[Any]) -> None:
    for _ in _Stream(chunks):
        pass


def proxied(capture: bool) -> Callable[[list[Any]], None]:
    def run(chunks: list[Any]) -> None:
        for _ in ChatStream(_Stream(chunks), StreamState(_noop, capture)):
            pass

    return run


def batch_seconds(fn: Callable[[list[Any]], None], chunks: list[Any]) -> float:
    t0 = time.perf_counter()
    for _ in range(STREAMS_PER_BATCH):
        fn(chunks)
    return time.perf_counter() - t0


def e2e(rounds: int) -> None:
    """Added client CPU per call, bare SDK vs instrumented, same process and server."""
    import openai
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    from rag_otel.config import ModelObservation
    from rag_otel.sdk.instrumentors.openai import OpenAIInstrumentor
    from rag_otel.sdk.runtime import Runtime, set_runtime
    from tests.support.fake_openai import FakeOpenAI

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(Drop()))
    set_runtime(Runtime.create(ModelObservation(), tp, MeterProvider(metric_readers=[InMemoryMetricReader()])))
    inst = OpenAIInstrumentor()
    msgs = [{"role": "user", "content": "What is OpenTelemetry and why use it for RAG?"}]
    with FakeOpenAI(chunks=CHUNKS) as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="bench", max_retries=0)

        def chat() -> None:
            client.chat.completions.create(model="gpt-4o-mini", messages=msgs)

        def stream() -> None:
            for _ in client.chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True,
                                                    stream_options={"include_usage": True}):
                pass

        def embeddings() -> None:
            client.embeddings.create(model="text-embedding-3-small", input="alpha", encoding_format="float")

        workloads = {"chat": chat, "stream": stream, "embeddings": embeddings}
        calls = 20
        samples: dict[tuple[str, str], list[float]] = {(w, c): [] for w in workloads for c in ("bare", "rag-otel")}
        for fn in workloads.values():
            for _ in range(5):
                fn()
        for r in range(rounds):
            for w, fn in workloads.items():
                for c in (("bare", "rag-otel") if r % 2 == 0 else ("rag-otel", "bare")):
                    if c == "rag-otel":
                        inst.instrument()
                    t0 = time.thread_time()
                    for _ in range(calls):
                        fn()
                    samples[(w, c)].append((time.thread_time() - t0) / calls * 1e6)
                    if c == "rag-otel":
                        inst.uninstrument()
    set_runtime(None)
    print(f"\nend to end, real SDK over 127.0.0.1, {calls} calls/batch, {rounds} rounds, client-thread CPU")
    print(f"{'workload':<12}{'bare µs/call':>14}{'rag-otel µs/call':>18}{'added µs':>10}{'ratio':>8}")
    added = {}
    for w in workloads:
        b, i = statistics.median(samples[(w, "bare")]), statistics.median(samples[(w, "rag-otel")])
        added[w] = i - b
        print(f"{w:<12}{b:>14.0f}{i:>18.0f}{i - b:>10.0f}{i / b:>8.2f}")
    print(f"per streamed chunk, (stream added - chat added) / {CHUNKS}: "
          f"{(added['stream'] - added['chat']) / CHUNKS:.2f} µs")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=31)
    ap.add_argument("--no-e2e", action="store_true", help="only the isolated per-chunk part")
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 rounds")
    args = ap.parse_args()
    if args.quick:
        args.rounds = 3
    chunks = make_chunks(CHUNKS)
    contenders = {"bare": bare, "rag-otel": proxied(False), "rag-otel+capture": proxied(True)}
    for fn in contenders.values():  # warm-up
        batch_seconds(fn, chunks)
    per_chunk: dict[str, list[float]] = {n: [] for n in contenders}
    names = list(contenders)
    for r in range(args.rounds):
        order = names[r % len(names):] + names[: r % len(names)]  # rotate who goes first
        results = {n: batch_seconds(contenders[n], chunks) for n in order}
        for n in names:
            per_chunk[n].append(results[n] / (STREAMS_PER_BATCH * CHUNKS) * 1e6)
    base = statistics.median(per_chunk["bare"])
    print(f"{CHUNKS} chunks/stream, {STREAMS_PER_BATCH} streams/batch, {args.rounds} interleaved rounds")
    print(f"{'contender':<18}{'µs/chunk median':>16}{'p25-p75':>16}{'added µs/chunk':>16}{'ratio':>8}")
    for n in names:
        q = statistics.quantiles(per_chunk[n], n=4)
        med = statistics.median(per_chunk[n])
        print(f"{n:<18}{med:>16.3f}{f'{q[0]:.3f}-{q[2]:.3f}':>16}{med - base:>16.3f}{med / base:>8.2f}")
    if not args.no_e2e:
        e2e(args.rounds)


if __name__ == "__main__":
    main()
