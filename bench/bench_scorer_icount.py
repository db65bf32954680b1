"""Lexical scoring per query in CPU instructions (valgrind's callgrind): a measure the machine's load cannot move.

Run: ``.venv/bin/python bench/bench_scorer_icount.py [--base /path/to/main/src] [--src this/src] [--queries 2000]
[--workload queries|rows]``

The query is the processor benchmark's (``bench_processor.run_scoring``: 10-word question, 30-word answer,
3 x 60-word sources of random ``otlp_workload.WORDS``), scored by ``build_scorer`` with the processor's
default config and GC thresholds after 500 warm-up queries (per-word memos warm, as in a running
processor; the analysis cache misses, the texts are random). ``--workload rows``: real text instead, the BEGIN
and HaluQuestQA calibration rows as ``bench_scorer.py`` scores them, each scored once to warm the memos and
then measured with the analysis caches cleared. Per side two runs, with 0 and with
``--queries`` measured queries: the difference per query, so imports and start-up cancel out. Needs
valgrind; each run takes about a minute.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

from callgrind import instructions

HERE = Path(__file__).resolve().parent
WARM = 500
MAX = 2000  # measured queries at most


def rows() -> list[tuple[str, str, list[str]]]:
    """Real text: the BEGIN and HaluQuestQA calibration rows as bench_scorer.py scores them."""
    import quality_calibration as cal

    hq = cal.haluquestqa()
    return ([(e.question, e.answer, e.sources) for e in cal.begin()]
            + [(e.question, e.answer, [hq[i ^ 1].answer]) for i, e in enumerate(hq)])


def inner(workload: str, n: int) -> None:
    from otlp_workload import _text

    from rag_otel.config import ModelObservation
    from rag_otel.processor.pipeline import raise_gc_thresholds
    from rag_otel.quality import build_scorer, lexical, text

    raise_gc_thresholds()  # as the processor runs
    scorer = build_scorer(ModelObservation().quality_assessment)
    if workload == "rows":
        cases = rows()
        warm, cases = cases, cases[:n]  # every row once to warm the word memos, then again with the analyses cleared
    else:
        rng = random.Random(3)
        cases = [(_text(rng, 10), _text(rng, 30), [_text(rng, 60) for _ in range(3)]) for _ in range(WARM + MAX)]
        warm, cases = cases[:WARM], cases[WARM : WARM + n]  # made whatever n is: only the scoring differs
    for q, a, docs in warm:
        scorer.score(q, a, docs)
    text.analyze.cache_clear()
    lexical._parts.cache_clear()
    for q, a, docs in cases:
        scorer.score(q, a, docs)
    os._exit(0)  # no interpreter teardown in the count


def count(src: str, workload: str, n: int) -> int:
    return instructions(__file__, ["--inner", workload, str(n)], src)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--inner":
        sys.path.insert(0, os.environ.get("RAG_OTEL_BENCH_SRC", str(HERE.parent / "src")))
        sys.path.insert(1, str(HERE))
        inner(sys.argv[2], int(sys.argv[3]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", help="src directory of a baseline checkout; omitted: this tree only")
    ap.add_argument("--src", default=str(HERE.parent / "src"), help="src directory to measure (default: this tree)")
    ap.add_argument("--queries", type=int, default=2000, help="measured queries (rows: at most all 1,128)")
    ap.add_argument("--workload", choices=("queries", "rows"), default="queries",
                    help="the processor benchmark's query, or the calibration rows (real text; needs ../shared/data)")
    args = ap.parse_args()
    args.queries = min(args.queries, len(rows()) if args.workload == "rows" else MAX)
    sides = [("this tree", args.src)] + ([("base", args.base)] if args.base else [])
    per = {}
    for name, src in sides:
        per[name] = (count(src, args.workload, args.queries) - count(src, args.workload, 0)) / args.queries
        print(f"{name}: {per[name]:,.0f} instructions per query")
    if args.base:
        print(f"base/this: {per['base'] / per['this tree']:.3f}")


if __name__ == "__main__":
    main()
