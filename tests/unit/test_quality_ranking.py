"""The overall score ranks a right answer above a wrong one to the same question, and a concise direct answer
to a factoid question counts as complete and relevant (issue 11)."""

from __future__ import annotations

import pytest

from rag_otel.config import QualityAssessment
from rag_otel.quality import build_scorer

MAGAZINES = [
    "Arthur's Magazine (1844–1846) was an American literary periodical published in Philadelphia in the 19th "
    "century. First for Women is a woman's magazine published by Bauer Media Group in the USA, first issued in 1989."
]
WHICH_FIRST = "Which magazine was started first, Arthur's Magazine or First for Women?"


@pytest.fixture
def scorer():
    return build_scorer(QualityAssessment())


def test_the_right_short_answer_outranks_the_hallucinated_sentence(scorer) -> None:
    right = scorer.score(WHICH_FIRST, "Arthur's Magazine", MAGAZINES)
    wrong = scorer.score(WHICH_FIRST, "First for Women was started first, in 1844, before Arthur's Magazine.",
                         MAGAZINES)
    assert right.overall > wrong.overall
    assert right.axes["accuracy"].score > wrong.axes["accuracy"].score
    assert right.axes["completeness"].score == 1.0 and right.axes["relevance"].score == 1.0
    assert "direct answer" in right.axes["completeness"].explanation
    # the hallucination ties 1844 to the wrong magazine: a contradiction, not just weaker support
    assert wrong.axes["consistency"].score < 1.0 and "1844" in wrong.axes["consistency"].evidence
    assert wrong.overall <= wrong.axes["accuracy"].score  # no better than its truth


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("Is the Eiffel Tower in Paris?", "Yes."),
        ("Which is older, the Eiffel Tower or the Empire State Building?", "The Eiffel Tower"),
        ("When was the Eiffel Tower completed?", "In 1889."),
        ("How many people visit the Eiffel Tower each year?", "About seven million"),
        ("Who designed the Eiffel Tower?", "Gustave Eiffel's company"),
        ("The Oberoi Group has its head office in what city?", "Delhi"),
    ],
)
def test_a_concise_direct_answer_is_complete_and_relevant(scorer, question: str, answer: str) -> None:
    r = scorer.score(question, answer, [])
    assert r.axes["completeness"].score == 1.0, r.axes["completeness"].explanation
    assert r.axes["relevance"].score == 1.0


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("Who designed the Eiffel Tower?", "I don't know, sorry."),
        ("When was the Eiffel Tower completed?", "It is a lattice tower."),  # no date for "when"
        ("Is the Eiffel Tower in Paris?", "The tower is made of wrought iron."),  # neither yes nor no
        ("Who designed the Eiffel Tower? And how tall is it?", "Gustave Eiffel's company"),  # two questions
    ],
)
def test_a_short_reply_that_does_not_answer_the_form_gets_no_such_credit(scorer, question: str, answer: str) -> None:
    r = scorer.score(question, answer, [])
    assert r.axes["completeness"].score < 1.0
    assert "direct answer" not in r.axes["completeness"].explanation


def test_repeating_the_question_is_not_a_direct_answer(scorer) -> None:
    r = scorer.score("What is the Eiffel Tower?", "The Eiffel Tower", [])
    assert "direct answer" not in r.axes["completeness"].explanation
    assert "direct answer" not in r.axes["relevance"].explanation


def test_a_long_relevant_wrong_answer_is_capped_by_its_accuracy(scorer) -> None:
    q = "How tall is the Eiffel Tower?"
    src = ["The Eiffel Tower in Paris is 330 metres tall and was completed in 1889."]
    wrong = scorer.score(q, "The Eiffel Tower in Paris is 450 metres tall, which makes the Eiffel Tower very tall.",
                         src)
    right = scorer.score(q, "330 metres.", src)
    assert wrong.axes["relevance"].score > 0.7  # on topic ...
    assert wrong.overall <= min(wrong.axes["accuracy"].score, wrong.axes["consistency"].score)  # ... but wrong
    assert right.overall > wrong.overall


def test_the_cap_follows_the_weights() -> None:
    """A team that gives accuracy no weight gets the plain weighted mean of the other axes."""
    qa = QualityAssessment(weights={"accuracy": 0.0, "completeness": 0.5, "relevance": 0.5, "consistency": 0.0})
    r = build_scorer(qa).score(WHICH_FIRST, "First for Women was started first, in 1844, before Arthur's Magazine.",
                               MAGAZINES)
    assert r.overall == pytest.approx((r.axes["completeness"].score + r.axes["relevance"].score) / 2, abs=1e-4)
