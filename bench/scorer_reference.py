"""Dump (or check) everything the lexical scorer outputs, so a speed-up can be proven byte-identical.

    .venv/bin/python bench/scorer_reference.py --write /tmp/score_ref.json   # before a change
    .venv/bin/python bench/scorer_reference.py --check /tmp/score_ref.json   # after it: exit 1 on any diff

Cases: every row of the calibration dev data (../shared/data/quality, as bench/quality_calibration.py
reads it), a few thousand random workload queries (bench/otlp_workload.py WORDS), hand-written
adversarial texts and seeded random texts over an alphabet of capitals, digits, punctuation and unicode.
Per case: every axis' score, explanation, label and evidence, overall and grade (scorer), the lexical backend's
raw (score, explanation, evidence) per axis on a fresh Query (as the calibration calls it), and ``analyze`` /
``sentences`` of each text. The dump holds third-party text: keep it outside the repository.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

import quality_calibration as cal  # noqa: E402
from otlp_workload import WORDS  # noqa: E402

from rag_otel.config import QualityAssessment  # noqa: E402
from rag_otel.quality import build_scorer  # noqa: E402
from rag_otel.quality.base import Abstain, Query  # noqa: E402
from rag_otel.quality.lexical import AXES, LexicalBackend, question_parts  # noqa: E402
from rag_otel.quality.text import analyze, sentences  # noqa: E402

Case = tuple[str, str, list[str]]

ADVERSARIAL = [
    "", " ", "\n", "\t \n ", ".", "...", "?!", "a", "A", "I", "U.S.", "u.s.", "e.g.", "i.e. this", "x.Y.", "X.y.z.",
    "The U.S. Army, e.g. in 1945, had 1,000 men. They won.", "Mr. Smith went to Washington. He met Dr. Jones.",
    "It costs 3.50% or $1,000.00 or 12:30 or 1/2 or 2024-01-05 or 10,000,000.", "3.50 and 3.5 and 3.500 and 03",
    "See [1] and [2, 3] and [faq#3] and [^4] and 【5†source】 for details [doc-7].",
    "I don't know. You can't do that. It isn't here. They won't go. She doesn’t care. We didn't.",
    "\"Quoted Start.\" 'Single Quote.' (Paren Start.) “Curly Quote” ‘curly single’ «guillemets».",
    "- first bullet\n- Second Bullet with Names\n* third\n• fourth Item\n1. One\n2. Two\n3) Three",
    "Line one\n\n\nLine Two\r\nLine Three\rline four", "NASA and the FBI and IBM met at the UN. USA! OK?",
    "Café Müller naïve résumé Zürich São Paulo Ångström ß ẞ İstanbul ǅ ﬁ ＡＢＣ 東京 Москва Ελλάδα",
    "one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred",
    "First, second, third; half a dozen; one million; two billion; a thousand; zero.",
    "January 5th. May I? In May, June Smith left. Sept. 3. Jan Feb Mar.", "Not. No. Never. None. Nobody. Cannot.",
    "It was not the tallest, nor the first; neither was it never without nothing.",
    "increase decrease rise fall higher lower legal illegal unhappy disable nonprofit irregular",
    "jumping jumps jumped nationalization happiness realization carefully studies studied",
    "Hello.World.Again. abc.Def ghi!Jkl 3.Four end.", "A.B. C.D.E. a.b.c. 1.2.3 1.2.3.4 v1.2 x86_64",
    "O'Brien's rock'n'roll can’t ’tis rock’n’roll y'all o’clock 'twas", "The the THE tHe ThE",
    "What is it? And what is more? Or how does it work, and why is it so? Also, when?",
    "Where is Paris and what is the capital of France, or how big is Paris but who is the mayor?",
    "2. 3. 4.", "Mr. Dr. St.", "Hi.", "Ok. Ok. Ok.", "x" * 50, "Word " * 40, "12k",
]


def random_text(rng: random.Random, n: int) -> str:
    """Random words and separators over capitals, digits, punctuation, apostrophes and some unicode."""
    alphabet = "aAbBcdeEfgHiIjklmnNoOpqrsStTuUvwxyzZ0123456789.,:;/%!?'’\"()[]-–—•\n \t#†【】éÉßİ东"
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.5:
            out.append(rng.choice([*WORDS, "The", "Paris", "U.S.", "not", "don't", "I", "my", "3.5", "1,000"]))
        elif r < 0.8:
            out.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))))
        else:
            out.append(rng.choice([".", ". ", "? ", "!\n", "\n\n", ", ", " - ", "\n- ", "... ", " [1]", "U.S. "]))
    return (" " if rng.random() < 0.5 else "").join(out)


def cases() -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}
    data = cal.DEFAULT_DATA
    out["begin"] = [(e.question, e.answer, e.sources) for e in cal.begin(data)]
    out["halueval"] = [(e.question, e.answer, e.sources) for e in cal.halueval(data)]
    for domain, ex in cal.summedits(data):
        out[f"summedits/{domain}"] = [(e.question, e.answer, e.sources) for e in ex]
    hq = cal.haluquestqa(data)
    out["haluquestqa"] = [(e.question, e.answer, e.sources) for e in hq]
    # the same, with the other answer of the question as a source (accuracy/consistency on long texts)
    out["haluquestqa/cross"] = [(e.question, e.answer, [hq[i ^ 1].answer]) for i, e in enumerate(hq)]
    out["haluquestqa/sentences"] = [(e.question, e.answer, e.sources) for e in cal.haluquestqa_sentences(data)]
    rng = random.Random(3)

    def words(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n)) + "."

    out["workload"] = [(words(10), words(30), [words(60) for _ in range(3)]) for _ in range(3000)]
    adv = [*ADVERSARIAL, ADVERSARIAL[16] * 300, random_text(random.Random(1), 3000)]  # 12k+ chars: capped
    arng = random.Random(7)
    out["adversarial"] = [(q, a, [s]) for q in adv[::3] for a in adv for s in (adv[(len(a) * 7) % len(adv)],)]
    out["adversarial"] += [(a, a, [a, a]) for a in adv] + [(a, a, []) for a in adv]
    out["random"] = [
        (random_text(arng, arng.randint(0, 15)), random_text(arng, arng.randint(0, 60)),
         [random_text(arng, arng.randint(0, 120)) for _ in range(arng.randint(0, 3))])
        for _ in range(1500)
    ]
    return out


def _analysis(text: str) -> list[Any]:
    a = analyze(text)
    return [list(a.tokens), sorted(a.content), sorted(a.numbers), sorted(a.entities), a.negated]


def dump(case: Case, scorer: Any, backend: LexicalBackend) -> dict[str, Any]:
    q, a, srcs = case
    res = scorer.score(q, a, srcs)
    raw = backend.score(Query(q, a, srcs), list(AXES))
    texts = [q, a, *srcs]
    return {
        "axes": {k: [v.score, v.explanation, v.label, v.evaluator, v.evidence] for k, v in res.axes.items()},
        "overall": res.overall, "grade": res.grade, "status": res.status, "evaluator": res.evaluator,
        "not_judged": res.not_judged,
        "raw": {k: list(v) if isinstance(v, tuple) else {"abstain": str(v)} if isinstance(v, Abstain) else v
                for k, v in raw.items()},
        "analysis": [_analysis(t) for t in texts],
        "sentences": [[s, _analysis(s)] for t in texts for s in sentences(t)],
        "parts": question_parts(q) if q.strip() else [],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", type=Path)
    g.add_argument("--check", type=Path)
    args = ap.parse_args()
    scorer, backend = build_scorer(QualityAssessment()), LexicalBackend()
    t0 = time.perf_counter()
    got = {name: [dump(c, scorer, backend) for c in cs] for name, cs in cases().items()}
    got = json.loads(json.dumps(got))  # tuples -> lists, as the file holds them
    took = time.perf_counter() - t0
    n = sum(map(len, got.values()))
    if args.write:
        args.write.write_text(json.dumps(got), encoding="utf-8")
        print(f"wrote {n} cases to {args.write} ({took:.0f}s)")
        return 0
    ref = json.loads(args.check.read_text(encoding="utf-8"))
    bad = 0
    for name in ref.keys() | got.keys():
        r, g2 = ref.get(name, []), got.get(name, [])
        if len(r) != len(g2):
            print(f"{name}: {len(g2)} cases, reference has {len(r)}")
            bad += 1
            continue
        for i, (x, y) in enumerate(zip(r, g2, strict=True)):
            if x != y:
                bad += 1
                if bad <= 5:
                    diff = {k: (x[k], y.get(k)) for k in x if x[k] != y.get(k)}
                    print(f"{name}[{i}] differs: {json.dumps(diff, ensure_ascii=False)[:1500]}")
    print(f"{n} cases, {bad} differ ({took:.0f}s)")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
