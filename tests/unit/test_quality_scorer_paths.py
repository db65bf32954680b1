"""The all-lexical fast path of QualityScorer gives what the general per-backend path gives."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from rag_otel.config import QualityAssessment
from rag_otel.quality import build_scorer
from rag_otel.quality.lexical import LexicalBackend
from rag_otel.records import QualityResult

SOURCES = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was completed in 1889 "
    "for the World's Fair and is 330 metres tall. It is not the tallest structure in France today.",
    "Gustave Eiffel's company designed and built the tower. About seven million people visit it each year.",
]
WORDS = ["tower", "Paris", "tall", "330", "metres", "I", "love", "it", "not", "built", "1889", "higher", "the", "is"]


def _cases() -> list[tuple[str, str, list[str]]]:
    rng = random.Random(5)

    def text(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n)) + rng.choice([".", "?", "!"])

    return [("How tall is the Eiffel Tower?", "It is 330 metres tall.", SOURCES),
            ("What?", "Yes.", []), ("Where is it? And what is it?", "I love it. It is not tall.", SOURCES[:1])] + [
        (text(rng.randint(1, 8)), " ".join(text(rng.randint(1, 12)) for _ in range(rng.randint(1, 4))),
         [text(rng.randint(0, 30)) for _ in range(rng.randint(0, 3))]) for _ in range(150)]


def _same(r: QualityResult) -> QualityResult:
    return replace(r, duration_s=0.0)


@pytest.mark.parametrize("qa", [
    QualityAssessment(),
    QualityAssessment(metrics=["accuracy", "relevance"], weights={"accuracy": 2.0, "relevance": 0.5},
                      grade_thresholds={"good": 0.5, "fair": 0.2}),
    QualityAssessment(weights={"accuracy": 1.0, "relevance": 0.0, "completeness": 0.0, "consistency": 0.0}),
])
def test_the_lexical_fast_path_equals_the_general_path(qa: QualityAssessment) -> None:
    fast = build_scorer(qa)
    general = build_scorer(qa)
    general.backends = {a: LexicalBackend() for a in general.axes}  # not the scorer's own lexical: per-backend path
    assert fast.all_lexical() and not general.all_lexical()
    for q, a, s in _cases():
        assert _same(fast.score(q, a, s)) == _same(general.score(q, a, s))


def test_a_backend_set_in_place_is_used() -> None:
    scorer = build_scorer(QualityAssessment())
    scorer.backends["relevance"] = LexicalBackend()  # another instance: the general path
    assert not scorer.all_lexical()
    scorer.backends["relevance"] = scorer.lexical
    assert scorer.all_lexical()
    scorer.backends["accuracy"] = _Fixed()
    r = scorer.score("How tall is the tower?", "It is 330 metres tall.", SOURCES)
    assert r.axes["accuracy"].score == 0.5 and r.axes["accuracy"].evaluator == "fixed/0"
    assert r.evaluator == "fixed/0+lexical/3"


class _Fixed:
    evaluator = "fixed/0"

    def score(self, query, axes):
        return {a: (0.5, "fixed", "") for a in axes}
