"""Lexical scorer speed: this tree against a baseline commit, interleaved in one process, medians.

    .venv/bin/python bench/bench_scorer.py [--base REV] [--rounds 7] [--n 400] [--quick] [--paired]

The baseline's quality package (text, base, lexical, scorer at ``--base``, default the merge-base with
main) is loaded from ``git show`` under another package name, so both run side by side on the same
inputs, in alternating order per round. Per query: ``build_scorer(QualityAssessment()).score(q, a, srcs)``.
Workloads: (a) the processor benchmark's query (bench/bench_processor.py
``run_scoring``: a 10-word question, a 30-word answer, 3 sources of 60 words, random words from
bench/otlp_workload.py, fresh per round so no analysis cache helps); (b) calibration rows (BEGIN,
HaluQuestQA with the other answer as the source), the analysis caches cleared before each pass. The word
and token memos are kept: they hold vocabulary, which real traffic repeats; a first pass over each set
warms them and is reported apart. Reported: median µs per query per round (the thread's CPU time and
wall time), then the median over rounds of each, and the median of the per-round ratios old/new.
``--paired`` instead times each query old, new, old, new, ... (3 each, the analysis caches cleared before
every call) and keeps each version's fastest: per-query pairs, far less swayed by a shared machine's load
swings than whole passes; reported are the medians over queries and the ratio of the total times.
"""

from __future__ import annotations

import argparse
import importlib
import random
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

import quality_calibration as cal  # noqa: E402
from otlp_workload import WORDS  # noqa: E402

from rag_otel.config import QualityAssessment  # noqa: E402
from rag_otel.quality import scorer as new_scorer  # noqa: E402
from rag_otel.quality import text as new_text  # noqa: E402

MODULES = ("text", "base", "lexical", "scorer")  # and whatever other module of the package the revision has
BASE_REV = "db790c6"  # main before the scorer speed-up (per-token analysis loop)
Case = tuple[str, str, list[str]]


def load_baseline(rev: str) -> tuple[types.ModuleType, types.ModuleType]:
    """The quality modules at ``rev`` as package ``_base_quality`` (imports rewritten to point there)."""
    pkg_dir = Path(tempfile.mkdtemp(prefix="bench_scorer_")) / "_base_quality"
    pkg_dir.mkdir()
    (pkg_dir / "__init__.py").write_text("")
    listed = subprocess.run(["git", "-C", str(REPO), "ls-tree", "--name-only", rev, "src/rag_otel/quality/"],
                            check=True, capture_output=True, text=True).stdout.split()
    present = {Path(p).stem for p in listed if p.endswith(".py")}
    for m in (*MODULES, *sorted(present - set(MODULES) - {"__init__", "llm", "embedding", "nli"})):
        src = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:src/rag_otel/quality/{m}.py"],
                             check=True, capture_output=True, text=True).stdout
        (pkg_dir / f"{m}.py").write_text(src.replace("rag_otel.quality.", "_base_quality."))
    sys.path.insert(0, str(pkg_dir.parent))
    scorer = importlib.import_module("_base_quality.scorer")
    return scorer, importlib.import_module("_base_quality.text")


def time_cases(score: Callable[[str, str, list[str]], object], cases: list[Case]) -> tuple[float, float]:
    """Median µs per query: CPU time of this thread (what the spans/CPU-s goal counts), and wall time."""
    cpu, wall = [], []
    for q, a, s in cases:
        c0, t0 = time.thread_time(), time.perf_counter()
        score(q, a, s)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    return statistics.median(cpu) * 1e6, statistics.median(wall) * 1e6


def workload(seed: int, n: int) -> list[Case]:
    rng = random.Random(seed)

    def text(words: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(words)) + "."

    return [(text(10), text(30), [text(60) for _ in range(3)]) for _ in range(n)]


def clear(text_module: types.ModuleType) -> None:
    """Empty the per-text caches (analyses; question parts where the version has them), not the word memos."""
    text_module.analyze.cache_clear()
    lexical = sys.modules[text_module.__name__.rsplit(".", 1)[0] + ".lexical"]
    if hasattr(lexical, "_parts"):
        lexical._parts.cache_clear()


def paired(old: Callable[..., object], new: Callable[..., object], old_text: types.ModuleType,
           cases: list[Case], reps: int = 3) -> tuple[float, float, float]:
    """Median µs per query (fastest of ``reps`` CPU times each, old and new interleaved per query), and the
    ratio of the summed times old/new."""
    best_old, best_new = [], []
    for i, (q, a, s) in enumerate(cases):
        bo = bn = float("inf")
        for r in range(reps):
            for label in (("old", "new") if (i + r) % 2 else ("new", "old")):
                clear(old_text if label == "old" else new_text)
                c0 = time.thread_time()
                (old if label == "old" else new)(q, a, s)
                t = time.thread_time() - c0
                if label == "old":
                    bo = min(bo, t)
                else:
                    bn = min(bn, t)
        best_old.append(bo)
        best_new.append(bn)
    return statistics.median(best_old) * 1e6, statistics.median(best_new) * 1e6, sum(best_old) / sum(best_new)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default=BASE_REV, help=f"baseline revision (default {BASE_REV})")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--n", type=int, default=400, help="workload queries per round")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 rounds of 50 queries")
    ap.add_argument("--paired", action="store_true", help="per-query interleaved timing (fastest of 3 each)")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.n = 2, 50
    base = args.base
    old_scorer, old_text = load_baseline(base)
    old = old_scorer.build_scorer(QualityAssessment()).score
    new = new_scorer.build_scorer(QualityAssessment()).score
    hq = cal.haluquestqa()
    sets = {
        "workload": None,
        "begin": [(e.question, e.answer, e.sources) for e in cal.begin()],
        "haluquestqa": [(e.question, e.answer, [hq[i ^ 1].answer]) for i, e in enumerate(hq)],
    }
    if args.paired:
        for cases in sets.values():  # warm the word memos of both versions
            for q, a, s in cases or workload(0, args.n):
                old(q, a, s)
                new(q, a, s)
        print(f"baseline {base[:10]} vs this tree; per query, fastest of 3 CPU times each, interleaved")
        print("| workload | n | old median µs | new median µs | old/new (total) |")
        print("|---|---:|---:|---:|---:|")
        for name, cases in sets.items():
            cases = cases or workload(1000, args.n)
            o, nw, ratio = paired(old, new, old_text, cases)
            print(f"| {name} | {len(cases)} | {o:.1f} | {nw:.1f} | {ratio:.2f}x |")
        return 0
    # First pass over each set, reported apart: the memos (stems; chunk and token facts) meet its words
    # for the first time. Real traffic repeats its vocabulary, so the timed rounds run warm.
    cold: dict[str, tuple[float, float]] = {}
    for name, cases in sets.items():
        for label, fn, mod in (("old", old, old_text), ("new", new, new_text)):
            clear(mod)
            cold[f"{name}/{label}"] = time_cases(fn, cases or workload(0, args.n))
    results: dict[str, dict[str, list[tuple[float, float]]]] = {k: {"old": [], "new": []} for k in sets}
    for r in range(args.rounds):
        for name, cases in sets.items():
            cases = cases or workload(1000 + r, args.n)
            order = [("old", old, old_text), ("new", new, new_text)]
            if r % 2:
                order.reverse()
            for label, fn, mod in order:
                clear(mod)
                results[name][label].append(time_cases(fn, cases))
    print(f"baseline {base[:10]} vs this tree; {args.rounds} rounds, alternating order; µs per query")
    print("| workload | n | clock | old median µs | new median µs | ratio old/new (median of rounds) | range |")
    print("|---|---:|---|---:|---:|---:|---|")
    for name, res in results.items():
        n = args.n if sets[name] is None else len(sets[name])
        for k, clock in enumerate(("CPU", "wall")):
            old_t = [r[k] for r in res["old"]]
            new_t = [r[k] for r in res["new"]]
            ratios = [o / n for o, n in zip(old_t, new_t, strict=True)]
            print(f"| {name} | {n} | {clock} | {statistics.median(old_t):.1f} | {statistics.median(new_t):.1f} | "
                  f"{statistics.median(ratios):.1f}x | {min(ratios):.1f}-{max(ratios):.1f}x |")
    print("\nfirst pass (cold memos), CPU µs median: " + ", ".join(
        f"{name} old {cold[name + '/old'][0]:.0f} new {cold[name + '/new'][0]:.0f}" for name in sets))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
