"""What splitting a trace into its questions costs the normalizer (query_split), per trace shape.

Run: ``.venv/bin/python bench/bench_query_split.py [--traces 2000] [--rounds 7]``

Same process, same traces, alternating each round between the real normalizer and one whose split step is
switched off (the whole trace is one record, as before query_split), so the machine's noise hits both
alike; reported: the median microseconds per trace of each and their ratio.  Shapes (the unit tests'):
``single`` (retrieval + one chat: the common trace, which the split skips after counting chat calls),
``rewrite`` (rewrite chat, search, answer chat: one question, told from its search's query and documents),
``batch of 2`` (a LangServe /batch of two questions: split into two records).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag_otel.pricing import load_prices
from rag_otel.processor import normalize as nm
from tests.unit.test_normalize_dialects import trace_of
from tests.unit.test_normalize_query_unit import chat, retrieval, server
from tests.unit.test_query_split import A1, D1, Q1, langserve_batch

PRICES = load_prices()
REWRITTEN = "descaling frequency for a kettle"


def single() -> nm.Trace:
    return trace_of(server(), retrieval(2, [{"id": "d", "content": D1}], start_ms=20,
                                        **{"gen_ai.retrieval.query.text": Q1}),
                    chat(3, f"Context:\n{D1}\n\nQuestion: {Q1}\nAnswer:", answer=A1, start_ms=400))


def rewrite() -> nm.Trace:
    return trace_of(server(), chat(2, f"Rewrite this question as a search query: {Q1}", answer=REWRITTEN, start_ms=10),
                    retrieval(3, [{"id": "d", "content": D1}], start_ms=320,
                              **{"gen_ai.retrieval.query.text": REWRITTEN}),
                    chat(4, f"Context:\n{D1}\n\nQuestion: {Q1}\nAnswer:", answer=A1, start_ms=400))


def per_trace_us(make: object, n: int) -> float:
    traces = [make() for _ in range(n)]  # type: ignore[operator]
    t = time.perf_counter()
    for tr in traces:
        nm.normalize_units(tr, PRICES)
    return (time.perf_counter() - t) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--traces", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    real = nm._split
    print("| trace | split on (us/trace) | split off (us/trace) | ratio |\n|---|---|---|---|")
    for name, make in (("single", single), ("rewrite", rewrite), ("batch of 2", lambda: trace_of(*langserve_batch()))):
        on, off = [], []
        for r in range(args.rounds):
            for mode in ((True, False) if r % 2 else (False, True)):
                nm._split = real if mode else (lambda *a: [])  # type: ignore[assignment]
                (on if mode else off).append(per_trace_us(make, args.traces))
        nm._split = real  # type: ignore[assignment]
        m_on, m_off = statistics.median(on), statistics.median(off)
        print(f"| {name} | {m_on:.0f} | {m_off:.0f} | {m_on / m_off:.2f} |")


if __name__ == "__main__":
    main()
