"""CPU added per retrieval call by the retrieval instrumentors, against baselines measured in the same run.

Contenders, interleaved in random order inside every repeat (this machine is noisy: the CPU each
adds is taken against "none" *within* a repeat, and the median of those paired differences is
reported; CPU is the calling thread's, so other processes' load does not count directly):
  none   the library call alone
  hand   the same span, attributes and histogram points made by hand with the bare OTel SDK
  rag    the call through rag-otel's instrumentor (FaissInstrumentor / LangChainInstrumentor / ...)

Spans go through a BatchSpanProcessor into an exporter that drops them, as in production minus
the network.  Run: ``.venv/bin/python bench/bench_retrieval.py [--repeats 15] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from rag_otel import semconv
from rag_otel.config import ModelObservation
from rag_otel.sdk import runtime


class _Drop(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _providers() -> tuple[TracerProvider, MeterProvider]:
    tp = TracerProvider()
    tp.add_span_processor(BatchSpanProcessor(_Drop(), max_queue_size=1 << 16))
    return tp, MeterProvider([InMemoryMetricReader()])


def _cpu_per_call_us(fn: Callable[[], Any], calls: int) -> float:
    start = time.thread_time_ns()
    for _ in range(calls):
        fn()
    return (time.thread_time_ns() - start) / calls / 1000


class Scenario:
    """One workload: ``call`` runs the library; ``hand`` does the same with hand-made telemetry."""

    name: str
    calls: int
    instrumentor: Any

    def call(self) -> Any:
        raise NotImplementedError

    def hand(self) -> Any:
        raise NotImplementedError


def _hand_span(tracer: Any, hist: Any, source: str, provider: str, top_k: int, run: Callable[[], Any],
               docs: Callable[[Any], tuple[list[dict[str, Any]], list[int]]]) -> Any:
    attrs = {semconv.GEN_AI_OPERATION_NAME: "retrieval", semconv.GEN_AI_PROVIDER_NAME: provider,
             semconv.GEN_AI_DATA_SOURCE_ID: source}
    with tracer.start_as_current_span(f"retrieval {source}", kind=SpanKind.CLIENT,
                                      attributes={**attrs, semconv.GEN_AI_REQUEST_TOP_K: top_k}) as span:
        result = run()
        entries, counts = docs(result)
        span.set_attribute(semconv.RAG_DOCUMENTS_COUNT, sum(counts))
        span.set_attribute(semconv.GEN_AI_RETRIEVAL_DOCUMENTS, json.dumps(entries))
    hist.record(sum(counts), attrs)
    return result


class FaissScenario(Scenario):
    def __init__(self, tracer: Any, hist: Any, rows: int, k: int) -> None:
        import faiss

        from rag_otel.sdk.instrumentors.faiss import FaissInstrumentor

        # One OpenMP thread: otherwise faiss's idle workers spin between calls and that spinning,
        # counted as process CPU, would be charged to whatever Python code runs between searches.
        faiss.omp_set_num_threads(1)
        rng = np.random.default_rng(0)
        self.index = faiss.IndexFlatL2(64)
        self.index.add(rng.random((2000, 64), dtype=np.float32))
        self.x = rng.random((rows, 64), dtype=np.float32)
        self.k, self.tracer, self.hist = k, tracer, hist
        self.name = f"faiss IndexFlatL2 2000x64, {rows} query row{'s' if rows > 1 else ''}, k={k}"
        self.calls = 400 if rows == 1 else 20
        self.instrumentor = FaissInstrumentor()

    def call(self) -> Any:
        return self.index.search(self.x, self.k)

    def hand(self) -> Any:
        def docs(result: Any) -> tuple[list[dict[str, Any]], list[int]]:
            d, i = result
            valid = i >= 0
            rows, cols = np.nonzero(valid)
            rows, cols = rows[:100], cols[:100]
            entries = [{"id": str(a), "score": b} for a, b in
                       zip(i[rows, cols].tolist(), d[rows, cols].astype(float).tolist(), strict=True)]
            return entries, valid.sum(axis=1).tolist()

        return _hand_span(self.tracer, self.hist, "IndexFlatL2", "faiss", self.k, self.call, docs)


class LangChainScenario(Scenario):
    def __init__(self, tracer: Any, hist: Any) -> None:
        from langchain_core.documents import Document
        from langchain_core.embeddings import DeterministicFakeEmbedding
        from langchain_core.vectorstores import InMemoryVectorStore

        from rag_otel.sdk.instrumentors.langchain import LangChainInstrumentor

        store = InMemoryVectorStore(DeterministicFakeEmbedding(size=64))
        store.add_documents([Document(id=f"d{i}", page_content=f"document {i}") for i in range(200)])
        self.retriever = store.as_retriever(search_kwargs={"k": 4})
        self.tracer, self.hist = tracer, hist
        self.name, self.calls = "langchain InMemoryVectorStore retriever, 200 docs, k=4", 200
        self.instrumentor = LangChainInstrumentor()

    def call(self) -> Any:
        return self.retriever.invoke("document 7")

    def hand(self) -> Any:
        def docs(result: Any) -> tuple[list[dict[str, Any]], list[int]]:
            return [{"id": d.id} for d in result], [len(result)]

        return _hand_span(self.tracer, self.hist, "InMemoryVectorStore", "langchain", 4, self.call, docs)


class ChromaScenario(Scenario):
    def __init__(self, tracer: Any, hist: Any) -> None:
        import chromadb
        from chromadb.config import Settings

        from rag_otel.sdk.instrumentors.chroma import ChromaInstrumentor

        client = chromadb.EphemeralClient(Settings(anonymized_telemetry=False))
        rng = np.random.default_rng(1)
        self.col = client.create_collection("bench")
        self.col.add(ids=[f"d{i}" for i in range(500)], embeddings=rng.random((500, 64)).tolist())
        self.q = rng.random((1, 64)).tolist()
        self.tracer, self.hist = tracer, hist
        self.name, self.calls = "chroma in-process collection, 500x64, n_results=5", 200
        self.instrumentor = ChromaInstrumentor()

    def call(self) -> Any:
        return self.col.query(query_embeddings=self.q, n_results=5, include=["distances"])

    def hand(self) -> Any:
        def docs(result: Any) -> tuple[list[dict[str, Any]], list[int]]:
            ids, dist = result["ids"][0], result["distances"][0]
            return [{"id": a, "score": b} for a, b in zip(ids, dist, strict=True)], [len(ids)]

        return _hand_span(self.tracer, self.hist, "bench", "chroma", 5, self.call, docs)


def run(repeats: int) -> list[dict[str, Any]]:
    tp, mp = _providers()
    runtime.set_runtime(runtime.Runtime.create(ModelObservation(), tp, mp))
    rt = runtime.get_runtime()
    tracer, hist = rt.tracer, rt.instruments.retrieved_documents
    scenarios: list[Scenario] = [
        FaissScenario(tracer, hist, rows=1, k=5),
        FaissScenario(tracer, hist, rows=256, k=10),
        LangChainScenario(tracer, hist),
        ChromaScenario(tracer, hist),
    ]
    rng = random.Random(42)
    results = []
    for sc in scenarios:
        samples: dict[str, list[float]] = {"none": [], "hand": [], "rag": []}
        for fn in (sc.call, sc.hand):  # warm up caches and lazy imports
            _cpu_per_call_us(fn, 5)
        for _ in range(repeats):
            order = list(samples)
            rng.shuffle(order)
            for who in order:
                if who == "rag":
                    sc.instrumentor.instrument()
                    try:
                        samples[who].append(_cpu_per_call_us(sc.call, sc.calls))
                    finally:
                        sc.instrumentor.uninstrument()
                else:
                    samples[who].append(_cpu_per_call_us(sc.call if who == "none" else sc.hand, sc.calls))
        # Paired: what each contender added over "none" in the same repeat, then the median of those.
        med = {k: statistics.median(v) for k, v in samples.items()}
        added = {k: statistics.median(a - b for a, b in zip(samples[k], samples["none"], strict=True))
                 for k in ("hand", "rag")}
        results.append({
            "scenario": sc.name,
            "repeats": repeats,
            "median_us": {k: round(v, 2) for k, v in med.items()},
            "added_us": {k: round(v, 2) for k, v in added.items()},
            "rag_vs_hand_added": round(added["rag"] / max(1e-9, added["hand"]), 2),
            "rag_vs_none": round(med["rag"] / med["none"], 3),
        })
    tp.shutdown()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 repeats")
    args = ap.parse_args()
    if args.quick:
        args.repeats = 3
    results = run(args.repeats)
    print("| scenario | none µs | hand-made µs | rag-otel µs | added: hand | added: rag-otel "
          "| rag/hand added | rag/none |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        m, a = r["median_us"], r["added_us"]
        print(f"| {r['scenario']} | {m['none']} | {m['hand']} | {m['rag']} | {a['hand']} | {a['rag']} | "
              f"{r['rag_vs_hand_added']}x | {r['rag_vs_none']}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
