"""What a user of the quality scores relies on, with the default (lexical) backend."""

from __future__ import annotations

import random
import re
import time

import pytest

from rag_otel.config import QualityAssessment, parse_config
from rag_otel.quality import build_scorer
from rag_otel.quality.base import NotJudged

SOURCES = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was completed in 1889 "
    "for the World's Fair and is 330 metres tall. It is not the tallest structure in France today.",
    "Gustave Eiffel's company designed and built the tower. About seven million people visit it each year.",
]
QUESTION = "How tall is the Eiffel Tower?"
GROUNDED = "The Eiffel Tower is 330 metres tall. It was completed in 1889 for the World's Fair."


@pytest.fixture
def scorer():
    return build_scorer(QualityAssessment())


def test_grounded_answer_scores_higher_accuracy_than_a_contradicting_one(scorer) -> None:
    grounded = scorer.score(QUESTION, GROUNDED, SOURCES)
    wrong = scorer.score(QUESTION, "The Eiffel Tower is 520 metres tall and was built in London by Napoleon.", SOURCES)
    assert grounded.axes["accuracy"].score > 0.8
    assert wrong.axes["accuracy"].score < 0.5
    assert wrong.axes["accuracy"].label == "poor"
    assert grounded.overall > wrong.overall


@pytest.mark.parametrize("marker", [" [1]", " [2, 3]", " [doc-7#4]", "[^5]", " 【6†source】"])
def test_citation_markers_are_not_judged_as_claims(scorer, marker: str) -> None:
    """RAG answers cite their sources; "[2]" or "[faq#4]" must not read as an unsupported number."""
    plain = scorer.score(QUESTION, GROUNDED, SOURCES)
    cited = scorer.score(QUESTION, GROUNDED.replace(" tall.", f" tall.{marker}"), SOURCES)
    assert {k: v.score for k, v in cited.axes.items()} == {k: v.score for k, v in plain.axes.items()}
    assert cited.axes["consistency"].score == 1.0


def test_invented_claims_and_chit_chat_are_unsupported(scorer) -> None:
    opinion = scorer.score(QUESTION, "I love it, my favourite trip ever! You should go.", SOURCES)
    assert opinion.axes["accuracy"].score < 0.3
    assert "personal" in opinion.axes["accuracy"].explanation


@pytest.mark.parametrize(
    ("changed", "reason"),
    [
        ("The Eiffel Tower is 300 metres tall. It was completed in 1889 for the World's Fair.", "number 300"),
        ("The Eiffel Tower is 330 metres tall. It was completed in 1925 for the World's Fair.", "number 1925"),
        ("The Eiffel Tower is 330 metres tall. It was not completed in 1889 for the World's Fair.", "negation"),
        ("The Eiffel Tower is 330 metres tall. It was completed in 1889 in Berlin.", "name 'berlin'"),
        ("The Eiffel Tower is 330 metres tall. About seven million people leave it each year.", ""),
    ],
)
def test_a_changed_number_date_name_or_negation_drops_consistency(scorer, changed: str, reason: str) -> None:
    base = scorer.score(QUESTION, GROUNDED, SOURCES).axes["consistency"]
    assert base.score == 1.0
    if reason:
        got = scorer.score(QUESTION, changed, SOURCES).axes["consistency"]
        assert got.score <= 0.5
        assert reason in got.evidence and "contradiction" in got.explanation
        assert got.label in ("fair", "poor")


def test_opposite_word_drops_consistency(scorer) -> None:
    src = ["Revenue increased by a third in the second quarter, and costs stayed flat."]
    q = "How did revenue develop?"
    same = scorer.score(q, "Revenue increased by a third in the second quarter.", src).axes["consistency"]
    flipped = scorer.score(q, "Revenue decreased by a third in the second quarter.", src).axes["consistency"]
    assert same.score == 1.0
    assert flipped.score < 1.0 and "decreased" in flipped.evidence


def test_an_answer_contradicting_itself_drops_consistency_even_without_sources(scorer) -> None:
    q = "When does the store open?"
    fine = scorer.score(q, "The store opens at 9 on weekdays. On Sundays the store stays closed.", [])
    torn = scorer.score(q, "The store opens at 9 on weekdays. The store opens at 11 on weekdays.", [])
    assert fine.axes["consistency"].score == 1.0
    assert torn.axes["consistency"].score < 1.0
    assert "itself" in torn.axes["consistency"].explanation
    assert "different numbers" in torn.axes["consistency"].evidence


def test_an_off_topic_answer_drops_relevance(scorer) -> None:
    on = scorer.score(QUESTION, GROUNDED, SOURCES).axes["relevance"]
    off = scorer.score(QUESTION, "Bananas are rich in potassium. Many people eat them for breakfast.", SOURCES)
    assert on.score > 0.7
    assert off.axes["relevance"].score < 0.2
    assert "off-topic" in off.axes["relevance"].evidence and "Bananas" in off.axes["relevance"].evidence


def test_a_half_answered_multi_part_question_drops_completeness(scorer) -> None:
    q = "How tall is the Eiffel Tower, and when was it completed? Who designed it?"
    full = scorer.score(q, "It is 330 metres tall and was completed in 1889. Gustave Eiffel's company designed "
                           "it.", SOURCES).axes["completeness"]
    half = scorer.score(q, "The Eiffel Tower is 330 metres tall.", SOURCES).axes["completeness"]
    assert full.score > 0.7
    assert half.score < full.score - 0.25
    assert "2 not addressed" in half.explanation and "designed" not in half.explanation
    assert half.evidence.startswith("not addressed") and "designed" in half.evidence


def test_weights_from_config_and_renormalised_over_scored_axes() -> None:
    qa = QualityAssessment(weights={"accuracy": 0.5, "completeness": 0.0, "relevance": 0.5, "consistency": 0.0})
    r = build_scorer(qa).score(QUESTION, GROUNDED, SOURCES)
    assert r.overall == pytest.approx((r.axes["accuracy"].score + r.axes["relevance"].score) / 2, abs=1e-4)

    # without sources accuracy cannot be judged: it is left out, not invented, and weights renormalise
    default = build_scorer(QualityAssessment())
    nosrc = default.score(QUESTION, GROUNDED, [])
    assert "accuracy" not in nosrc.axes and nosrc.status == "scored"
    w = {"completeness": 0.25, "relevance": 0.25, "consistency": 0.2}
    expected = sum(w[a] * nosrc.axes[a].score for a in w) / sum(w.values())
    assert nosrc.overall == pytest.approx(expected, abs=1e-4)


def test_only_configured_metrics_are_scored() -> None:
    r = build_scorer(QualityAssessment(metrics=["relevance"])).score(QUESTION, GROUNDED, SOURCES)
    assert set(r.axes) == {"relevance"}
    assert r.overall == r.axes["relevance"].score


@pytest.mark.parametrize(("question", "answer"), [("", GROUNDED), (QUESTION, ""), (None, GROUNDED), (QUESTION, "  ")])
def test_no_content_is_reported_not_invented(scorer, question, answer) -> None:
    r = scorer.score(question, answer, SOURCES)
    assert r.status == "no_content"
    assert r.axes == {} and r.overall is None and r.grade is None


def test_scores_are_deterministic_and_carry_labels_grade_and_evaluator(scorer) -> None:
    a = scorer.score(QUESTION, GROUNDED, SOURCES)
    b = scorer.score(QUESTION, GROUNDED, SOURCES)
    assert {k: (v.score, v.explanation) for k, v in a.axes.items()} == {
        k: (v.score, v.explanation) for k, v in b.axes.items()
    }
    assert a.overall == b.overall and a.grade == "good"
    assert all(0.0 <= v.score <= 1.0 and v.label in ("good", "fair", "poor") for v in a.axes.values())
    assert all(v.evaluator == "lexical/3" for v in a.axes.values())
    assert a.evaluator == "lexical/3" and a.duration_s > 0


def test_grade_thresholds_come_from_config() -> None:
    strict = {"quality_assessment": {"grade_thresholds": {"good": 0.99, "fair": 0.98}}}
    cfg = parse_config({"model_observation": strict})
    r = build_scorer(cfg.quality_assessment).score(QUESTION, GROUNDED, SOURCES)
    assert r.overall < 0.98 and r.grade == "poor"
    assert build_scorer().score(QUESTION, GROUNDED, SOURCES).grade == "good"


class _Broken:
    evaluator = "broken/0"

    def score(self, query, axes):
        raise RuntimeError("model exploded")


class _Shy:
    evaluator = "shy/0"

    def score(self, query, axes):
        return {a: NotJudged("not sampled") for a in axes}


def test_a_failing_or_declining_backend_falls_back_to_lexical_with_the_reason(scorer) -> None:
    scorer.backends = {"accuracy": _Broken(), "relevance": _Shy()}
    r = scorer.score(QUESTION, GROUNDED, SOURCES)
    assert r.axes["accuracy"].evaluator == "lexical/3"
    assert "broken: failed: RuntimeError" in r.axes["accuracy"].explanation
    assert r.axes["relevance"].explanation.startswith("(shy: not sampled)")
    assert r.status == "scored" and len(r.axes) == 4


def test_messy_input_is_scored_quickly_without_error(scorer) -> None:
    huge = ("The tower is 330 metres tall! " * 2000) + "\x00\ufffd 💥 ∑ <script>"
    t = time.perf_counter()
    r = scorer.score("How tall?\n\n\n", huge, [None, "", "   ", *SOURCES])  # type: ignore[list-item]
    assert time.perf_counter() - t < 2.0
    assert r.status == "scored" and r.overall is not None


@pytest.mark.parametrize("seed", range(3))
def test_explanations_never_quote_the_content(scorer, seed: int) -> None:
    """Explanations may leave with a trace whose content was stripped, so none of the question's, answer's or
    sources' words may appear in them (only the evidence quotes); random texts full of made-up names and numbers
    that trip every rule (unsupported names, numbers, off-topic sentences, unanswered parts)."""
    rng = random.Random(seed)
    made_up = [f"Zq{rng.randrange(10**6)}x" for _ in range(40)] + [str(rng.randrange(10**5, 10**6)) for _ in range(20)]

    def text(n: int) -> str:
        return " ".join(rng.choice(made_up) for _ in range(n)) + rng.choice([".", "?", "!"])

    for _ in range(30):
        q = f"{text(4)} and what about {text(3)}"
        a = f"{text(8)} {text(6)} It is not {text(2)}"
        srcs = [text(12), f"{text(6)} {QUESTION}"]
        r = scorer.score(q, a, srcs)
        assert set(r.axes) == {"accuracy", "completeness", "relevance", "consistency"}
        for axis in r.axes.values():
            words = set(re.findall(r"\w+", axis.explanation.lower()))
            assert not words & {w.lower() for w in made_up}, axis.explanation
        assert any(axis.evidence for axis in r.axes.values())  # the quotes went to the evidence
