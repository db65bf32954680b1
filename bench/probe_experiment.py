"""Can a small supervised probe on frozen MiniLM embeddings judge completeness? An honest experiment.

    PYTHONPATH=src .venv/bin/python bench/probe_experiment.py [--data DIR] [--cv-only] [--no-relevance]

Train on HaluQuestQA's sentence-tag file (``incomplete_ans_detection_data.json``: per answer sentence an
expert [Complete]/[Incomplete] tag), evaluate on ``HaluQuestQA.dev.tsv`` (answer-level
``completeness_*_score < 1`` = deficient, loaded and scored exactly as bench/quality_calibration.py does).
Both are dev data (Sachdeva et al., 2024); nothing else is used, nothing is committed from it.

Fixed before the TSV was scored (the protocol; ``--cv-only`` stops before the TSV):
1. Overlap: a TSV question counts as seen when its words are >= 80% contained in a training question
   (or the reverse) or one of its answers shares >= 50% of its words (Jaccard) with a training answer.
2. The training file is almost only deficient answers (508 of 509 have an [Incomplete] sentence), so an
   answer-level "complete?" classifier cannot be trained on it. Candidates, each a linear model on
   MiniLM vectors (normalised, mean-pooled over sentences for an answer):
   - ``sent-mean`` / ``sent-min``: logistic regression on [q, s, q*s, |q-s|] per sentence -> P(complete),
     averaged (share of the answer judged complete) or the weakest sentence;
   - ``ans-ridge``: ridge regression on [q, a, q*a, |q-a|] of the share of [Complete] sentences.
3. Selection (candidate and regularisation): grouped 5-fold CV by question on the training file only,
   metric Spearman(answer score, share of [Complete] sentences): the one graded label every candidate
   can be scored against there.
4. Evaluation, once: (A, primary) train on the whole file, score the TSV questions not seen in it;
   (B) train on the training answers whose question is not in the TSV, score all TSV answers. AUROC
   (fine above deficient) with a bootstrap SD over questions, overall and within GPT-4 / human answers,
   beside the shipped lexical and embedding backends, answer length and "GPT-4 wrote it" on the same rows.
   The candidates not selected are printed too, marked as such (not a second choice).
What the first run showed (so the script now says it too): the training file holds every deficient TSV
answer, so (A) has no deficient answer to find and is not measurable; (C) was added after seeing (A) and (B),
the brief's fallback: grouped 5-fold CV by TSV question, each fold's probe trained on the training answers
except those to that fold's questions (same candidate and setting as selected above).
Relevance (no training file for it): grouped 5-fold CV on the TSV by question, an answer-level logistic
probe on [q, a, q*a, |q-a|] (C by an inner grouped CV), against the shipped embedding score in the same folds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_calibration as qc  # the harness: loader, AUROC, backends

CACHE = Path("/tmp/rag_otel_probe_cache.npz")  # MiniLM vectors by text hash: encoding is the slow part
FOLDS = 5
C_GRID = (0.0001, 0.001, 0.01, 0.1)  # logistic regression (on standardised features)
ALPHA_GRID = (10.0, 100.0, 1000.0, 10000.0)  # ridge
BOOT = 1000


@dataclass(slots=True)
class Tagged:
    """One training answer: its question, its numbered sentences and their tags (1 = [Complete])."""

    question: str
    sentences: list[str]
    tags: list[int]


_NUMBERED = re.compile(r"^(\d+)\.\s*(.*)$", re.M)
_TAG = re.compile(r"^(\d+)\.\s*\[(Complete|Incomplete)\]", re.M)


def load_tagged(root: Path) -> list[Tagged]:
    rows = json.loads((root / "haluquestqa" / "incomplete_ans_detection_data.json").read_text(encoding="utf-8"))
    out = []
    for r in rows:
        question, _, answer = r["input"].partition("\nAnswer:")
        sents = dict(_NUMBERED.findall(answer.strip()))  # strip: the first line starts " 1."
        pairs = [(sents[k], int(t == "Complete")) for k, t in _TAG.findall(r["output"]) if k in sents]
        if pairs:
            out.append(Tagged(question.strip().removeprefix("Question:").strip(), *map(list, zip(*pairs, strict=True))))
    return out


# --- overlap -------------------------------------------------------------------------------------
def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def seen_questions(train: list[Tagged], test: list[qc.Example]) -> tuple[set[str], dict[str, int]]:
    """TSV questions (exact text) that the training file holds too, by question or by answer words."""
    tq = [words(t.question) for t in {t.question: t for t in train}.values()]
    ta = [words(" ".join(t.sentences)) for t in train]
    by_q: dict[str, list[str]] = {}
    for e in test:
        by_q.setdefault(e.question, []).append(e.answer)
    seen, n = set(), {"by question": 0, "by answer": 0, "both": 0}
    for q, answers in by_q.items():
        w = words(q)
        in_q = any(len(w & t) / max(1, min(len(w), len(t))) >= 0.8 for t in tq)
        in_a = any(len(x & t) / max(1, len(x | t)) >= 0.5 for x in map(words, answers) for t in ta)
        n["by question"] += in_q
        n["by answer"] += in_a
        n["both"] += in_q and in_a
        if in_q or in_a:
            seen.add(q)
    return seen, n


# --- embeddings ----------------------------------------------------------------------------------
class Vectors:
    """MiniLM vectors (normalised) for texts, cached on disk by hash; the shipped loader, offline."""

    def __init__(self, path: Path = CACHE) -> None:
        self.path = path
        self.store: dict[str, np.ndarray] = dict(np.load(path)) if path.exists() else {}
        self.model = None

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode()).hexdigest()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        todo = sorted({t for t in texts if self.key(t) not in self.store})
        if todo:
            if self.model is None:
                from rag_otel.quality.embedding import load_model

                self.model = load_model()
            v = self.model.encode(todo, normalize_embeddings=True, convert_to_numpy=True, batch_size=64)
            self.store.update({self.key(t): x.astype(np.float32) for t, x in zip(todo, v, strict=True)})
            np.savez(self.path, **self.store)
        return np.stack([self.store[self.key(t)] for t in texts]) if texts else np.zeros((0, 384), np.float32)


def pair(q: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The usual sentence-pair features: both vectors, their product and their distance."""
    return np.hstack([q, x, q * x, np.abs(q - x)])


def mean_unit(v: np.ndarray) -> np.ndarray:
    m = v.mean(axis=0)
    return m / (np.linalg.norm(m) or 1.0)


@dataclass(slots=True)
class Answer:
    """One answer ready for the probes: question vector, sentence vectors, group, labels."""

    group: str
    q: np.ndarray
    s: np.ndarray  # sentences x 384
    share: float = float("nan")  # training: share of [Complete] sentences
    tags: np.ndarray | None = None


def answers_from_tagged(train: list[Tagged], vec: Vectors) -> list[Answer]:
    qv = vec([t.question for t in train])
    out = []
    for t, q in zip(train, qv, strict=True):
        out.append(Answer(t.question, q, vec(t.sentences), float(np.mean(t.tags)), np.array(t.tags)))
    return out


def answers_from_tsv(test: list[qc.Example], vec: Vectors) -> list[Answer]:
    """Answers split into sentences the way the embedding backend does (same splitter, same cap)."""
    from rag_otel.quality.base import Query

    qv = vec([e.question for e in test])
    return [
        Answer(e.question, q, vec([s for s, _ in Query(e.question, e.answer, []).answer_sentences][:64]))
        for e, q in zip(test, qv, strict=True)
    ]


# --- probes --------------------------------------------------------------------------------------
def logistic(c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))


def ridge(alpha: float):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), Ridge(alpha=alpha))


Probe = Callable[[list[Answer], list[Answer]], np.ndarray]  # (train, test) -> answer scores


def sentence_probe(c: float, agg: str) -> Probe:
    def run(train: list[Answer], test: list[Answer]) -> np.ndarray:
        x = np.vstack([pair(np.broadcast_to(a.q, a.s.shape), a.s) for a in train])
        y = np.concatenate([a.tags for a in train])
        m = logistic(c).fit(x, y)
        f = np.mean if agg == "mean" else np.min
        return np.array([f(m.predict_proba(pair(np.broadcast_to(a.q, a.s.shape), a.s))[:, 1]) for a in test])

    return run


def answer_ridge(alpha: float) -> Probe:
    def run(train: list[Answer], test: list[Answer]) -> np.ndarray:
        feats = lambda xs: np.vstack([pair(a.q, mean_unit(a.s)) for a in xs])  # noqa: E731
        return ridge(alpha).fit(feats(train), [a.share for a in train]).predict(feats(test))

    return run


CANDIDATES: dict[str, Callable[[float], Probe]] = {
    "sent-mean": lambda c: sentence_probe(c, "mean"),
    "sent-min": lambda c: sentence_probe(c, "min"),
    "ans-ridge": answer_ridge,
}
GRIDS = {"sent-mean": C_GRID, "sent-min": C_GRID, "ans-ridge": ALPHA_GRID}


def group_folds(groups: Sequence[str], k: int = FOLDS) -> np.ndarray:
    return np.array([qc.hash_fold(g, k) for g in groups])


def cv_scores(probe: Probe, data: list[Answer]) -> np.ndarray:
    """Out-of-fold answer scores, folds by question."""
    fold = group_folds([a.group for a in data])
    out = np.empty(len(data))
    for k in range(FOLDS):
        tr = [a for a, f in zip(data, fold, strict=True) if f != k]
        te_idx = np.flatnonzero(fold == k)
        out[te_idx] = probe(tr, [data[i] for i in te_idx])
    return out


def sentence_cv_auroc(c: float, data: list[Answer]) -> float:
    """Out-of-fold sentence-level AUROC of the per-sentence probe ([Complete] above [Incomplete])."""
    fold = group_folds([a.group for a in data])
    p, y = [], []
    for k in range(FOLDS):
        tr = [a for a, f in zip(data, fold, strict=True) if f != k]
        te = [a for a, f in zip(data, fold, strict=True) if f == k]
        x = np.vstack([pair(np.broadcast_to(a.q, a.s.shape), a.s) for a in tr])
        m = logistic(c).fit(x, np.concatenate([a.tags for a in tr]))
        for a in te:
            p.extend(m.predict_proba(pair(np.broadcast_to(a.q, a.s.shape), a.s))[:, 1])
            y.extend(a.tags)
    return qc.auroc(p, y)


# --- reporting -----------------------------------------------------------------------------------
def boot_sd(scores: np.ndarray, labels: np.ndarray, groups: Sequence[str], n: int = BOOT) -> float:
    """SD of AUROC over resamples of whole questions (both answers of a question travel together)."""
    rng = np.random.default_rng(0)
    uniq = sorted(set(groups))
    idx_of = {g: [] for g in uniq}
    for i, g in enumerate(groups):
        idx_of[g].append(i)
    vals = []
    for _ in range(n):
        pick = np.concatenate([idx_of[uniq[j]] for j in rng.integers(0, len(uniq), len(uniq))])
        v = qc.auroc(scores[pick], labels[pick])
        if v == v:
            vals.append(v)
    return float(np.std(vals))


def table(title: str, rows: list[qc.Example], methods: dict[str, np.ndarray], axis: str) -> list[str]:
    y = np.array([e.labels[axis] for e in rows])
    model = np.array([e.gold.get("who") == 1.0 for e in rows])
    groups = [e.group for e in rows]
    out = [f"### {title}", "",
           f"n = {len(rows)} answers ({model.sum()} GPT-4, {(~model).sum()} human), {len(set(groups))} questions; "
           f"deficient: {(y == 0).mean():.0%} (GPT-4 {(y[model] == 0).mean():.0%}, "
           f"human {(y[~model] == 0).mean():.0%})",
           "", "| method | AUROC (SD) | within GPT-4 (SD) | within human (SD) |", "|---|---|---|---|"]
    for name, s in methods.items():
        cells = []
        for mask in (np.ones(len(y), bool), model, ~model):
            sub_g = [g for g, m in zip(groups, mask, strict=True) if m]
            a = qc.auroc(s[mask], y[mask])
            cells.append("" if a != a or np.ptp(s[mask]) == 0 else f"{a:.3f} ({boot_sd(s[mask], y[mask], sub_g):.3f})")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*out, ""]


def baselines(rows: list[qc.Example], axis: str) -> dict[str, np.ndarray]:
    """The shipped backends and the two trivial predictors, on exactly these rows."""
    out = {}
    for name in ("lexical", "embedding"):
        out[f"{name} backend (shipped)"] = np.array(qc.axis_scores(qc.make_backend(name), rows, axis))
    out["answer length (words)"] = np.array([len(e.answer.split()) for e in rows], float)
    out["GPT-4 wrote it"] = np.array([e.gold.get("who", 0.0) for e in rows])
    return out


def tsv(root: Path) -> list[qc.Example]:
    """The harness's loader, plus who wrote each answer (gold['who'] 1 = GPT-4) from ans*_label."""
    import csv

    ex = qc.haluquestqa(root)
    with open(root / "haluquestqa" / "HaluQuestQA.dev.tsv", encoding="utf-8", newline="") as f:
        labels = [r[f"ans{i}_label"] for r in csv.DictReader(f, delimiter="\t") for i in ("1", "2")]
    for e, lab in zip(ex, labels, strict=True):
        e.gold["who"] = float(lab == "model_answer")
    return ex


# --- main ----------------------------------------------------------------------------------------
def select(
    data: list[Answer], reference: dict[str, np.ndarray], lines: list[str]
) -> tuple[str, float, dict[str, float]]:
    """Grouped CV on the training file: Spearman(score, share complete) per candidate and setting."""
    lines += ["### Selection: grouped 5-fold CV on the training file only", "",
              "| candidate | setting | Spearman vs share [Complete] | sentence AUROC |", "|---|---|---|---|"]
    share = [a.share for a in data]
    best: dict[str, tuple[float, float]] = {}
    for name, make in CANDIDATES.items():
        for h in GRIDS[name]:
            rho = qc.spearman(cv_scores(make(h), data), share)
            sa = sentence_cv_auroc(h, data) if name == "sent-mean" else float("nan")
            setting = f"C={h:g}" if name != "ans-ridge" else f"alpha={h:g}"
            lines.append(f"| {name} | {setting} | {rho:.3f} | {'' if sa != sa else f'{sa:.3f}'} |")
            if name not in best or rho > best[name][1]:
                best[name] = (h, rho)
            print(lines[-1], file=sys.stderr)
    for name, s in reference.items():
        lines.append(f"| {name} (reference, not fitted) | | {qc.spearman(s, share):.3f} | |")
    chosen = max(best, key=lambda n: best[n][1])
    lines += ["", f"Selected: **{chosen}** ({GRIDS_LABEL[chosen]}={best[chosen][0]:g}, CV Spearman "
              f"{best[chosen][1]:.3f}); the others at their best setting are shown below as not selected.", ""]
    return chosen, best[chosen][0], {n: h for n, (h, _) in best.items()}


GRIDS_LABEL = {"sent-mean": "C", "sent-min": "C", "ans-ridge": "alpha"}


def relevance_cv(rows: list[qc.Example], ans: list[Answer], shipped: np.ndarray) -> list[str]:
    """Answer-level probe for relevance, grouped 5-fold CV on the TSV (C by an inner grouped CV)."""
    y = np.array([e.labels["relevance"] for e in rows])
    x = np.vstack([pair(a.q, mean_unit(a.s)) for a in ans])
    fold = group_folds([e.group for e in rows])
    out = np.empty(len(rows))
    chosen = []
    for k in range(FOLDS):
        tr, te = fold != k, fold == k
        inner = group_folds([e.group + "/inner" for e, t in zip(rows, tr, strict=True) if t])
        def inner_auc(c: float, tr=tr, inner=inner) -> float:
            xs, ys, p = x[tr], y[tr], np.empty(tr.sum())
            for j in range(FOLDS):
                p[inner == j] = logistic(c).fit(xs[inner != j], ys[inner != j]).predict_proba(xs[inner == j])[:, 1]
            return qc.auroc(p, ys)
        c = max(C_GRID, key=inner_auc)
        chosen.append(c)
        out[te] = logistic(c).fit(x[tr], y[tr]).predict_proba(x[te])[:, 1]
    per_fold = [(qc.auroc(out[fold == k], y[fold == k]), qc.auroc(shipped[fold == k], y[fold == k]))
                for k in range(FOLDS)]
    lines = table("Relevance: grouped 5-fold CV on the TSV (out-of-fold scores pooled)", rows,
                  {"probe [q, a, q*a, abs(q-a)] (CV)": out, "embedding backend (shipped, v3)": shipped,
                   "GPT-4 wrote it": np.array([e.gold["who"] for e in rows])}, "relevance")
    lines += [f"C per fold (inner CV): {', '.join(f'{c:g}' for c in chosen)}; per-fold AUROC probe / shipped: "
              + ", ".join(f"{p:.3f}/{s:.3f}" for p, s in per_fold), ""]
    return lines


def tsv_run(title: str, train_for: Callable[[int], list[Answer]], mask: np.ndarray,
            test: list[qc.Example], from_tsv: list[Answer], chosen: str, h: float, best: dict[str, float],
            lines: list[str], folds: dict[str, int] | None = None) -> None:
    """Score the TSV rows in ``mask`` with every candidate (the selected one first) and the baselines.
    With ``folds`` (TSV question -> fold), each fold's rows are scored by a probe trained on train_for(fold)."""
    rows = [e for e, m in zip(test, mask, strict=True) if m]
    te = [a for a, m in zip(from_tsv, mask, strict=True) if m]
    settings = {chosen: h} | {n: v for n, v in best.items() if n != chosen}
    methods = {}
    for name, hh in settings.items():
        label = f"probe {name} (selected)" if name == chosen else \
            f"probe {name} ({GRIDS_LABEL[name]}={hh:g}, not selected)"
        if folds is None:
            methods[label] = CANDIDATES[name](hh)(train_for(0), te)
        else:
            f = np.array([folds[e.question] for e in rows])
            s = np.empty(len(rows))
            for k in range(FOLDS):
                idx = np.flatnonzero(f == k)
                s[idx] = CANDIDATES[name](hh)(train_for(k), [te[i] for i in idx])
            methods[label] = s
    methods.update(baselines(rows, "completeness"))
    lines += table(title, rows, methods, "completeness")
    print("\n".join(lines[-12:]), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=qc.DEFAULT_DATA)
    ap.add_argument("--cv-only", action="store_true", help="stop before the TSV is scored")
    ap.add_argument("--no-relevance", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    vec = Vectors()
    tagged = load_tagged(args.data)
    test = tsv(args.data)
    seen, how = seen_questions(tagged, test)
    nq = len({e.question for e in test})
    tags = np.concatenate([t.tags for t in tagged])
    lines = ["## Probe experiment (completeness)", "",
             f"Training file: {len(tagged)} answers, {len({t.question for t in tagged})} questions, {len(tags)} "
             f"sentences ({tags.mean():.0%} [Complete]); answers with no [Incomplete] sentence: "
             f"{sum(min(t.tags) == 1 for t in tagged)}.",
             f"Overlap: {len(seen)} of {nq} TSV questions are in the training file ({how['by question']} by question "
             f"words, {how['by answer']} by an answer, {how['both']} both); {nq - len(seen)} are not.", ""]
    train = answers_from_tagged(tagged, vec)
    as_examples = [qc.Example(t.question, "\n".join(t.sentences), [], {}) for t in tagged]
    reference = {"embedding backend completeness": np.array(qc.axis_scores(qc.make_backend("embedding"),
                                                                           as_examples, "completeness")),
                 "answer length (words)": np.array([len(e.answer.split()) for e in as_examples], float)}
    chosen, h, best = select(train, reference, lines)
    if args.cv_only:
        print("\n".join(lines))
        return 0
    from_tsv = answers_from_tsv(test, vec)
    axis = "completeness"
    match = tsv_match(tagged, test)
    inside = in_training_file(test, tagged)
    y = np.array([e.labels[axis] for e in test])
    lines += [f"Composition: of the {len(test)} TSV answers, {inside.sum()} are in the training file, "
              f"{(y[inside] == 0).sum()} of them deficient; of the {(~inside).sum()} that are not, "
              f"{(y[~inside] == 0).sum()} are deficient. \"In the training file\" alone: AUROC "
              f"{qc.auroc((~inside).astype(float), y):.3f}.", ""]
    unseen = [a for a, m in zip(train, match, strict=True) if m is None]
    mask_a = np.array([e.question not in seen for e in test])
    if len(set(y[mask_a])) < 2:
        lines += ["### A (primary): trained on the whole training file, scored on the TSV questions not in it", "",
                  f"Not measurable: all {mask_a.sum()} TSV answers to the {nq - len(seen)} questions not in the "
                  f"training file are labelled {'fine' if y[mask_a].all() else 'deficient'}.", ""]
    else:
        tsv_run(f"A (primary): trained on the whole training file ({len(train)} answers), scored on the TSV "
                "questions not in it", train, lambda k: train, mask_a, test, from_tsv, chosen, h, best, lines)
    tsv_run(f"B: trained on the {len(unseen)} training answers whose question is not in the TSV, scored on all "
            "TSV answers", lambda k: unseen, np.ones(len(test), bool), test, from_tsv, chosen, h, best,
            lines)
    fold = {q: qc.hash_fold(q, FOLDS) for q in {e.question for e in test}}
    def fold_train(k: int) -> list[Answer]:
        return [a for a, m in zip(train, match, strict=True) if m is None or fold[m] != k]
    tsv_run("C (fallback, run after A and B were seen): grouped 5-fold CV by TSV question; each fold trained on "
            "the training answers except those to its own questions", fold_train,
            np.ones(len(test), bool), test, from_tsv, chosen, h, best, lines, folds=fold)
    if not args.no_relevance:
        shipped = np.array(qc.axis_scores(qc.make_backend("embedding"), test, "relevance"))
        lines += relevance_cv(test, from_tsv, shipped)
    print("\n".join(lines))
    print(f"(took {time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    return 0


def tsv_match(tagged: list[Tagged], test: list[qc.Example]) -> list[str | None]:
    """Per training answer, the TSV question it duplicates (the mirror of seen_questions), else None."""
    tq = {q: words(q) for q in {e.question: None for e in test}}
    ta = [(e.question, words(e.answer)) for e in test]
    dup: dict[str, str | None] = {}
    for t in tagged:
        if dup.get(t.question):
            continue
        w, x = words(t.question), words(" ".join(t.sentences))
        hit = next((q for q, u in tq.items() if len(w & u) / max(1, min(len(w), len(u))) >= 0.8), None)
        hit = hit or next((q for q, u in ta if len(x & u) / max(1, len(x | u)) >= 0.5), None)
        dup[t.question] = dup.get(t.question) or hit  # a question goes whole: all its answers
    return [dup[t.question] for t in tagged]


def in_training_file(test: list[qc.Example], tagged: list[Tagged]) -> np.ndarray:
    """Per TSV answer: is it (>= 50% of its words, Jaccard) one of the training file's answers?"""
    ta = [words(" ".join(t.sentences)) for t in tagged]
    return np.array([any(len(x & u) / max(1, len(x | u)) >= 0.5 for u in ta) for x in (words(e.answer) for e in test)])


if __name__ == "__main__":
    raise SystemExit(main())
