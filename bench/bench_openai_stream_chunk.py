"""CPU that rag-otel's openai stream proxy adds per streamed chunk, isolated from the network.

The end-to-end harness (bench_client_overhead.py) measures a whole streamed call; this one holds
everything else still: the same 25 real ``ChatCompletionChunk`` objects are iterated bare and
through ``ChatStream`` (content capture off, then on), in interleaved rounds, and the difference
per chunk is reported as medians with p25-p75.  The span itself (one per call) is not in the loop.

    .venv/bin/python bench/bench_openai_stream_chunk.py [--rounds 31]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

from openai.types.chat import ChatCompletionChunk

from rag_otel.sdk.instrumentors._openai_stream import ChatStream, StreamState

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=31)
    args = ap.parse_args()
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


if __name__ == "__main__":
    main()
