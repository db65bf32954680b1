"""Calibrate the quality scorers on the labelled dev data in ../shared/data/quality.

For each dataset and backend: AUROC and balanced accuracy per labelled axis, beside the floors the
data README names (answer length alone, content-word overlap), measured here in the same run, plus
scoring time per query (median, p99). Results go to stdout and to the "Quality calibration"
section of bench/README.md.

    .venv/bin/python bench/quality_calibration.py [--data DIR] [--backends lexical,embedding]
        [--limit N] [--no-readme] [--json FILE]

Datasets (cite when quoting numbers): BEGIN (Dziri et al., TACL 2022), HaluEval (Li et al., EMNLP
2023), SummEdits (Laban et al., 2023), HaluQuestQA (Sachdeva et al., 2024). Only the dev splits
shipped in ../shared/data/quality are used; no parameter is fitted on anything else.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "quality"


@dataclass(slots=True)
class Example:
    """One (question, answer, sources) with the labels the dataset gives: 1 = fine, 0 = deficient."""

    question: str
    answer: str
    sources: list[str]
    labels: dict[str, int]  # axis -> 1 fine / 0 deficient
    group: str = ""  # the question (HaluEval, HaluQuestQA) or document (SummEdits) items share
    gold: dict[str, float] = field(default_factory=dict)  # graded labels when the dataset has them
    domain: str = ""  # a part of the dataset to hold out (HaluEval file, HaluQuestQA answer source)


def begin(root: Path = DEFAULT_DATA, limit: int | None = None) -> list[Example]:
    """BEGIN (Dziri et al., TACL 2022), WoW dev: is the response attributable to the knowledge?"""
    with open(root / "begin_wow" / "begin_dev_wow.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    out = [
        Example(r["message"], r["response"], [r["knowledge"]],
                {"accuracy": int(r["begin_label"].strip() == "Fully attributable")})
        for r in rows
    ]
    return out[:limit]


def halueval(root: Path = DEFAULT_DATA, limit: int | None = None) -> list[Example]:
    """HaluEval QA (Li et al., EMNLP 2023): one right answer and its hallucinated ones per question."""
    right: dict[str, Example] = {}
    wrong: list[Example] = []
    for path in sorted((root / "halueval_qa").glob("*.dev.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            q = r["question"]
            right.setdefault(q, Example(q, r["right_answer"], [r["knowledge"]],
                                        {"accuracy": 1, "consistency": 1}, group=q))
            wrong.append(Example(q, r["hallucinated_answer"], [r["knowledge"]],
                                 {"accuracy": 0, "consistency": 0}, group=q,
                                 domain=path.name.split("_data")[0].removeprefix("qa_")))
    keep = list(right)[:limit] if limit else list(right)
    kept = set(keep)
    return [right[q] for q in keep] + [w for w in wrong if w.group in kept]


def summedits(root: Path = DEFAULT_DATA, limit: int | None = None) -> Iterator[tuple[str, list[Example]]]:
    """SummEdits (Laban et al., 2023): is the (edited) summary consistent with the document? Per domain."""
    for path in sorted((root / "summedits").glob("summedits_*.json")):
        domain = path.stem.removeprefix("summedits_")
        rows = json.loads(path.read_text(encoding="utf-8"))
        yield domain, [
            Example("", r["summary"], [r["doc"]], {"consistency": int(r["label"])}, group=r["doc"][:200])
            for r in rows[:limit]
        ]


def haluquestqa(root: Path = DEFAULT_DATA, limit: int | None = None) -> list[Example]:
    """HaluQuestQA (Sachdeva et al., 2024): expert relevance/completeness scores for two answers."""
    csv.field_size_limit(1 << 30)
    with open(root / "haluquestqa" / "HaluQuestQA.dev.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    out: list[Example] = []
    for r in rows[:limit]:
        for i in ("1", "2"):
            who = "model" if r[f"ans{i}_label"] == "model_answer" else "human"
            gold = {axis: float(r[f"{axis}_{who}_score"]) for axis in ("relevance", "completeness")}
            out.append(Example(r["question_text"], r[f"ans{i}_text"], [],
                               {axis: int(v >= 1.0) for axis, v in gold.items()},
                               group=r["question_text"], gold=gold, domain="gpt4" if who == "model" else "human"))
    return out


_NUMBERED = re.compile(r"^\s*(\d+)\.\s*(.*)$", re.M)  # the first sentence follows "Answer:" after a space
_TAGGED = re.compile(r"^(\d+)\.\s*\[(Complete|Incomplete)\]", re.M)


def haluquestqa_sentences(root: Path = DEFAULT_DATA, limit: int | None = None) -> list[Example]:
    """HaluQuestQA's sentence-level view: each answer sentence tagged [Complete]/[Incomplete] by experts.
    A second view of completeness: (question, one answer sentence) scored alone, labelled by its tag."""
    rows = json.loads((root / "haluquestqa" / "incomplete_ans_detection_data.json").read_text(encoding="utf-8"))
    out: list[Example] = []
    for r in rows[:limit]:
        question, _, answer = r["input"].partition("\nAnswer:")
        question = question.strip().removeprefix("Question:").strip()
        sents = dict(_NUMBERED.findall(answer))
        for k, tag in _TAGGED.findall(r["output"]):
            if k in sents:
                out.append(Example(question, sents[k], [], {"completeness": int(tag == "Complete")}, group=question))
    return out


# --- metrics -------------------------------------------------------------------------------------
def _ranks(x: Sequence[float]) -> np.ndarray:
    """Average ranks (ties share their mean rank), 1-based."""
    a = np.asarray(x, dtype=float)
    order = a.argsort(kind="mergesort")
    ranks = np.empty(len(a))
    ranks[order] = np.arange(1, len(a) + 1)
    uniq, inv, counts = np.unique(a, return_inverse=True, return_counts=True)
    if len(uniq) < len(a):
        sums = np.bincount(inv, weights=ranks)
        ranks = (sums / counts)[inv]
    return ranks


def judged(scores: Sequence[float], labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The items a scorer judged: an abstention (NaN) is left out of every metric."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels)
    keep = ~np.isnan(s)
    return s[keep], y[keep]


def auroc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """P(score of a fine item > score of a deficient one), ties counting half (Mann-Whitney)."""
    scores, y = judged(scores, labels)
    n1, n0 = int(y.sum()), int(len(y) - y.sum())
    if not n1 or not n0:
        return float("nan")
    r = _ranks(scores)
    return float((r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def balanced_accuracy(scores: Sequence[float], labels: Sequence[int], threshold: float) -> float:
    """Mean of the recall of fine (score >= threshold) and of deficient (score < threshold) items."""
    s, y = judged(scores, labels)
    fine = s >= threshold
    tpr = (fine & (y == 1)).sum() / max(1, (y == 1).sum())
    tnr = (~fine & (y == 0)).sum() / max(1, (y == 0).sum())
    return float((tpr + tnr) / 2)


def best_threshold(scores: Sequence[float], labels: Sequence[int]) -> float:
    """The threshold with the best balanced accuracy on these (dev) items."""
    cands = np.unique(judged(scores, labels)[0])
    return float(max(cands, key=lambda t: balanced_accuracy(scores, labels, t)))


def cv_balanced_accuracy(scores: Sequence[float], labels: Sequence[int], groups: Sequence[str]) -> float:
    """2-fold: the threshold is chosen on one half (split by group) and applied to the other."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels)
    fold = np.array([hash_fold(g) for g in groups])
    accs = []
    for k in (0, 1):
        tr, te = fold != k, fold == k
        if len(set(y[tr])) < 2 or len(set(y[te])) < 2:
            continue
        accs.append(balanced_accuracy(s[te], y[te], best_threshold(s[tr], y[tr])))
    return float(np.mean(accs)) if accs else float("nan")


def hash_fold(group: str, folds: int = 2) -> int:
    return zlib.crc32(group.encode()) % folds


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])


def pairwise(examples: list[Example], scores: list[float]) -> float:
    """HaluEval: share of (right, hallucinated) pairs of a question where right scores higher."""
    right = {e.group: s for e, s in zip(examples, scores, strict=True) if e.labels["accuracy"] == 1}
    wins = [  # a pair where either answer was not judged (None, NaN) is left out
        1.0 if right[e.group] > s else 0.5 if right[e.group] == s else 0.0
        for e, s in zip(examples, scores, strict=True)
        if e.labels["accuracy"] == 0 and e.group in right and _judged(s) and _judged(right[e.group])
    ]
    return float(np.mean(wins))


def _judged(x: float | None) -> bool:
    return x is not None and x == x


def oriented(value: float) -> float:
    """Floors are reported in their favourable direction (max(AUROC, 1 - AUROC))."""
    return max(value, 1 - value)


# --- scoring -------------------------------------------------------------------------------------
def _src_path() -> None:
    src = REPO / "src"
    if str(src) not in sys.path:
        sys.path.insert(0, str(src))


def make_backend(name: str):
    _src_path()
    if name == "lexical":
        from rag_otel.quality.lexical import LexicalBackend

        return LexicalBackend()
    if name == "embedding":
        from rag_otel.quality.embedding import EmbeddingBackend

        return EmbeddingBackend()
    raise SystemExit(f"unknown backend {name!r} (the llm backend needs a judge endpoint; not calibrated here)")


def axis_scores(backend, examples: list[Example], axis: str) -> list[float] | None:
    """The backend's score per example; None when the backend leaves this axis to lexical."""
    from rag_otel.quality.base import Abstain, NotJudged, Query

    out = []
    for e in examples:
        res = backend.score(Query(e.question, e.answer, e.sources), [axis])[axis]
        if isinstance(res, Abstain):  # looked and cannot tell: left out of the metrics (NaN), counted apart
            out.append(float("nan"))
            continue
        if isinstance(res, NotJudged) or res is None:
            return None
        out.append(res[0])
    return out


def floors(examples: list[Example], axis: str) -> dict[str, list[float]]:
    """Baselines the data README names: answer length, and content-word overlap."""
    _src_path()
    from rag_otel.quality.text import analyze

    length = [float(len(e.answer.split())) for e in examples]
    overlap = []
    for e in examples:
        a = analyze(e.answer).content
        ref = analyze("\n".join(e.sources) if e.sources else e.question).content
        overlap.append(len(a & ref) / len(a) if a else 0.0)
    return {"length": length, "overlap": overlap}


@dataclass
class Row:
    dataset: str
    axis: str
    method: str
    n: int
    auroc: float
    bacc: float = float("nan")
    bacc_cv: float = float("nan")
    extra: dict[str, float] = field(default_factory=dict)


MODEL_SAMPLE = 100  # percent of each dataset's questions/documents model backends are run on


def sample(examples: list[Example], percent: int) -> list[Example]:
    """A fixed subset by question/document (so HaluEval pairs stay together), for slow backends."""
    if percent >= 100:
        return examples
    return [e for i, e in enumerate(examples) if hash_fold(e.group or str(i), 100) < percent]


def evaluate(name: str, examples: list[Example], axes: Sequence[str], backends: dict, rows: list[Row]) -> None:
    for axis in axes:
        y = [e.labels[axis] for e in examples]
        groups = [e.group or str(i) for i, e in enumerate(examples)]
        for fname, s in floors(examples, axis).items():
            row = Row(name, axis, f"floor: {fname}", len(y), oriented(auroc(s, y)))
            if name == "halueval":
                row.extra["pairwise"] = oriented(pairwise(examples, s)) if fname == "length" else pairwise(examples, s)
            rows.append(row)
        for bname, backend in backends.items():
            # HaluQuestQA is small: model backends run on all of it, the larger sets on MODEL_SAMPLE percent
            full = bname == "lexical" or name.startswith("haluquestqa")
            sub = examples if full else sample(examples, MODEL_SAMPLE)
            s = axis_scores(backend, sub, axis)
            if s is None:
                continue
            y = [e.labels[axis] for e in sub]
            groups = [e.group or str(i) for i, e in enumerate(sub)]
            row = Row(name, axis, bname, len(y), auroc(s, y), balanced_accuracy(s, y, best_threshold(s, y)),
                      cv_balanced_accuracy(s, y, groups))
            row.extra["threshold"] = best_threshold(s, y)
            if axis == "consistency" and bname == "lexical":
                row.extra["bacc_any_issue"] = balanced_accuracy(s, y, 1.0)  # fixed rule: any contradiction
            if name == "halueval":
                row.extra["pairwise"] = pairwise(sub, s)
            if sub and sub[0].gold.get(axis) is not None:
                row.extra["spearman"] = spearman(s, [e.gold[axis] for e in sub])
            rows.append(row)


def timing(backend_name: str, examples: list[Example], repeat: int = 1) -> dict[str, float]:
    """Per-query scoring time of the full scorer (all four axes on this backend)."""
    _src_path()
    from rag_otel.config import QualityAssessment
    from rag_otel.quality import build_scorer

    axes = ("accuracy", "completeness", "relevance", "consistency")
    qa = QualityAssessment(backends={a: backend_name for a in axes})
    scorer = build_scorer(qa)
    t0 = time.perf_counter()
    scorer.score(examples[0].question, examples[0].answer, examples[0].sources)  # loads a model, if any
    load = time.perf_counter() - t0
    wall, cpu = [], []
    for i in range(repeat):
        for e in examples:
            # fresh strings each round, so no cache of an earlier analysis helps
            q, a, s = e.question + " " * (i + 1), e.answer + " " * (i + 1), [x + " " for x in e.sources]
            t, c = time.perf_counter(), time.thread_time()
            scorer.score(q, a, s)
            cpu.append(time.thread_time() - c)
            wall.append(time.perf_counter() - t)
    wall.sort()
    cpu.sort()

    def p99(xs: list[float]) -> float:
        return xs[min(len(xs) - 1, int(0.99 * len(xs)))] * 1e3

    return {
        "median_ms": statistics.median(wall) * 1e3,
        "p99_ms": p99(wall),
        "cpu_median_ms": statistics.median(cpu) * 1e3,
        "cpu_p99_ms": p99(cpu),
        "first_call_s": load,
        "n": len(wall),
    }


# --- report --------------------------------------------------------------------------------------
README_FLOORS = {
    ("begin", "accuracy"): "README: overlap 0.93, MiniLM max-cos 0.84, length 0.64",
    ("halueval", "accuracy"): "README: length alone 0.93-0.99",
    ("summedits/news", "consistency"): "published bAcc: QAFactEval 65.5, SummaC-Conv 57.1, GPT-4 82.1",
    ("summedits/sales_email", "consistency"): "published bAcc: QAFactEval 65.5, SummaC-Conv 57.1, GPT-4 82.1",
    ("summedits/scitldr", "consistency"): "published bAcc: QAFactEval 65.5, SummaC-Conv 57.1, GPT-4 82.1",
    ("haluquestqa", "relevance"): "README: MiniLM cos(q, a) 0.69",
    ("haluquestqa", "completeness"): "README: 0.56",
}
GOALS = {
    ("begin", "accuracy"): ("auroc", 0.95),
    ("summedits/news", "consistency"): ("bacc", 0.655),
    ("summedits/sales_email", "consistency"): ("bacc", 0.655),
    ("summedits/scitldr", "consistency"): ("bacc", 0.655),
    ("haluquestqa", "relevance"): ("auroc", 0.75),
    ("haluquestqa", "completeness"): ("auroc", 0.65),
}


def _f(x: float) -> str:
    return "" if x != x else f"{x:.3f}"  # nan -> blank


def markdown(rows: list[Row], times: dict[str, dict[str, float]], data: Path) -> str:
    lines = [
        "## Quality calibration",
        "",
        f"`bench/quality_calibration.py` on the dev data in `{data.name}` (`../shared/data/quality`); "
        "measured in one run on this machine (2 shared CPU cores), no LLM. "
        "AUROC: fine items score above deficient ones. bAcc (dev thr): balanced accuracy at the threshold "
        "that is best on the dev data; bAcc (2-fold): threshold picked on one half (by question/document), "
        "applied to the other. Floors are in their favourable direction and measured here with our tokenizer."
        + (f" The embedding backend ran on a fixed {MODEL_SAMPLE}% of the questions/documents (by hash), "
           "on all of HaluQuestQA."
           if MODEL_SAMPLE < 100 else ""),
        "",
        "| dataset | axis | method | n | AUROC | bAcc (dev thr) | bAcc (2-fold) | other | goal |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        other = ", ".join(f"{k} {_f(v) if k != 'threshold' else f'{v:.3g}'}" for k, v in r.extra.items())
        goal = ""
        g = GOALS.get((r.dataset, r.axis))
        if g and not r.method.startswith("floor"):
            metric, target = g
            value = r.auroc if metric == "auroc" else r.bacc
            goal = f"{metric} {target:g}: {'met' if value >= target else 'not met'}"
        lines.append(f"| {r.dataset} | {r.axis} | {r.method} | {r.n} | {_f(r.auroc)} | {_f(r.bacc)} | "
                     f"{_f(r.bacc_cv)} | {other} | {goal} |")
    lines += ["", "Floors named in the data README (their measurements): "]
    lines += [f"- {d} / {a}: {t}" for (d, a), t in README_FLOORS.items()]
    lines += ["", "Scoring time per query (full scorer, all four axes on the backend, BEGIN rows: a question, a "
              "one-turn answer, one knowledge passage). Wall time includes waiting for a CPU on this shared "
              "machine; CPU time is the scoring thread's own.", "",
              "| backend | wall median ms | wall p99 ms | CPU median ms | CPU p99 ms | first call (model load) s | n |",
              "|---|---|---|---|---|---|---|"]
    for b, t in times.items():
        lines.append(f"| {b} | {t['median_ms']:.3f} | {t['p99_ms']:.3f} | {t['cpu_median_ms']:.3f} | "
                     f"{t['cpu_p99_ms']:.3f} | {t['first_call_s']:.2f} | {t['n']} |")
    return "\n".join(lines) + "\n"


def write_readme_section(section: str, path: Path = REPO / "bench" / "README.md",
                         heading: str = "## Quality calibration\n") -> None:
    """Replace (or append) only the section under ``heading``; other sections stay as they are."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    start = text.find(heading)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1 :] if end >= 0 else "")
    path.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--backends", default="lexical,embedding")
    ap.add_argument("--limit", type=int, default=None, help="rows per dataset (smoke runs)")
    ap.add_argument("--model-sample", type=int, default=100,
                    help="percent of questions/documents the embedding backend runs on (it is slow on 2 cores)")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"no calibration data at {args.data}", file=sys.stderr)
        return 2
    global MODEL_SAMPLE
    MODEL_SAMPLE = args.model_sample
    names = [b for b in args.backends.split(",") if b]
    try:
        backends = {b: make_backend(b) for b in names}
    except Exception as e:  # e.g. the embeddings extra is missing
        print(f"cannot load backends: {e}", file=sys.stderr)
        return 2
    rows: list[Row] = []
    t0 = time.perf_counter()
    bg = begin(args.data, args.limit)
    evaluate("begin", bg, ["accuracy"], backends, rows)
    evaluate("halueval", halueval(args.data, args.limit), ["accuracy", "consistency"], backends, rows)
    for domain, ex in summedits(args.data, args.limit):
        evaluate(f"summedits/{domain}", ex, ["consistency"], backends, rows)
    evaluate("haluquestqa", haluquestqa(args.data, args.limit), ["relevance", "completeness"], backends, rows)
    evaluate("haluquestqa/sentences", haluquestqa_sentences(args.data, args.limit), ["completeness"], backends, rows)
    times = {b: timing(b, bg, repeat=5) if b == "lexical" else timing(b, sample(bg, MODEL_SAMPLE)) for b in names}
    section = markdown(rows, times, args.data)
    print(section)
    print(f"(took {time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"rows": [r.__dict__ for r in rows], "timing": times}, indent=1))
    if not args.no_readme and args.limit is None:
        write_readme_section(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
