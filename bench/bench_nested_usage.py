"""CPU per query of the span API and the openai instrumentor, this tree against a baseline commit
(default: the one before nested model spans were counted once), to show the bookkeeping that
keeps a ``generate()`` around an instrumented call from counting twice costs nothing visible.

Two long-lived worker processes, one per tree (the baseline's ``src`` comes from ``git archive``),
same interpreter and SDK setup: a ``SimpleSpanProcessor`` with a dropping exporter, an in-memory
metric reader, the real openai SDK over ``httpx.MockTransport`` (no socket, so only client CPU is
timed).  Per round each worker runs one batch of each workload in alternating order; the figure
is the calling thread's CPU (``time.thread_time``) per query.  Medians over rounds, and the median
of the per-round new/old ratios.

    PYTHONPATH=src .venv/bin/python bench/bench_nested_usage.py [--rounds 21] [--baseline REV] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORKLOADS = ("generate", "openai", "wrapped")
BATCH = 300
COMPLETION = (b'{"id":"chatcmpl-1","object":"chat.completion","created":0,"model":"gpt-4o-mini",'
              b'"choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"Paris."}}],'
              b'"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}')


def worker() -> None:
    """Serve ``<workload> <n>`` lines on stdin with the µs of thread CPU per query."""
    import httpx
    import openai
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    from rag_otel import generate, rag_query
    from rag_otel.config import ModelObservation
    from rag_otel.sdk.instrumentors.openai import OpenAIInstrumentor
    from rag_otel.sdk.runtime import Runtime, set_runtime

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(Drop()))
    reader = InMemoryMetricReader()
    set_runtime(Runtime.create(ModelObservation(), tp, MeterProvider(metric_readers=[reader])))
    OpenAIInstrumentor().instrument()
    transport = httpx.MockTransport(lambda request: httpx.Response(
        200, content=COMPLETION, headers={"content-type": "application/json"}))
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="x", max_retries=0,
                           http_client=httpx.Client(transport=transport))
    messages = [{"role": "user", "content": "where is Paris?"}]

    def run_generate() -> None:
        with rag_query("where is Paris?"), generate("gpt-4o-mini", provider="openai") as g:
            g.set_usage(input_tokens=12, output_tokens=3)

    def run_openai() -> None:
        with rag_query("where is Paris?"):
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)

    def run_wrapped() -> None:
        with rag_query("where is Paris?"), generate("gpt-4o-mini", provider="openai") as g:
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            g.set_usage(input_tokens=12, output_tokens=3)

    runs = {"generate": run_generate, "openai": run_openai, "wrapped": run_wrapped}
    for fn in runs.values():  # warm-up
        for _ in range(50):
            fn()
    for line in sys.stdin:
        name, n = line.split()
        fn = runs[name]
        start = time.thread_time()
        for _ in range(int(n)):
            fn()
        print((time.thread_time() - start) / int(n) * 1e6, flush=True)
        reader.get_metrics_data()  # keep the reader's state from growing unread


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--baseline", default="133b118")
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 rounds")
    args = ap.parse_args()
    if args.quick:
        args.rounds = 3
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline, "src"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        trees = {"old": Path(tmp) / "src", "new": REPO / "src"}
        procs = {
            name: subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True,
                                   env={**os.environ, "PYTHONPATH": str(src)})
            for name, src in trees.items()
        }
        results: dict[tuple[str, str], list[float]] = {(t, w): [] for t in trees for w in WORKLOADS}
        try:
            for r in range(args.rounds):
                order = ("old", "new") if r % 2 == 0 else ("new", "old")
                for w in WORKLOADS:
                    for tree in order:
                        p = procs[tree]
                        p.stdin.write(f"{w} {BATCH}\n")  # type: ignore[union-attr]
                        p.stdin.flush()  # type: ignore[union-attr]
                        results[(tree, w)].append(float(p.stdout.readline()))  # type: ignore[union-attr]
        finally:
            for p in procs.values():
                p.stdin.close()  # type: ignore[union-attr]
                p.wait()
    print(f"baseline {args.baseline}, {args.rounds} rounds x {BATCH} queries, load {os.getloadavg()[0]:.1f}")
    print("| workload | old µs/query (median) | new µs/query (median) | new/old, median of rounds | p25-p75 |")
    print("|---|---:|---:|---:|---|")
    for w in WORKLOADS:
        old, new = results[("old", w)], results[("new", w)]
        ratios = sorted(n / o for n, o in zip(new, old, strict=True))
        q = statistics.quantiles(ratios, n=4)
        print(f"| {w} | {statistics.median(old):.1f} | {statistics.median(new):.1f} | "
              f"{statistics.median(ratios):.3f} | {q[0]:.3f}-{q[2]:.3f} |")
    return 0


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker()
    else:
        sys.exit(main())
