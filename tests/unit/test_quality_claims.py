"""Contradictions a reader recognises lower consistency and accuracy: a swapped entity, number, date, unit,
comparison or negation between the answer and its sources (issue 11). Realistic support-desk and encyclopedia
texts, each checked against the unchanged answer."""

from __future__ import annotations

import pytest

from rag_otel.config import QualityAssessment
from rag_otel.quality import build_scorer

CASES = [
    pytest.param(
        "What is the refund window?",
        "Customers can request a full refund within 30 days of purchase. After that, store credit is offered.",
        "You can get a full refund within 30 days of purchase.",
        "You can get a full refund within 60 days of purchase.",
        "60", id="number"),
    pytest.param(
        "How long is the Coastal Trail?",
        "The Coastal Trail is 12 km long and follows the cliffs from Porthcurno to Land's End.",
        "The Coastal Trail is 12 km long.",
        "The Coastal Trail is 12 miles long.",
        "mile", id="unit"),
    pytest.param(
        "How long does the backup job take?",
        "On a typical cluster the nightly backup job finishes in 40 minutes.",
        "The nightly backup job finishes in 40 minutes.",
        "The nightly backup job finishes in 40 hours.",
        "40 h", id="unit of time"),
    pytest.param(
        "When did the outage start?",
        "The outage began on 14 March 2024 at 09:20 UTC and was resolved the same day.",
        "The outage began on 14 March 2024.",
        "The outage began on 14 June 2024.",
        "june", id="date (month)"),
    pytest.param(
        "When was the company founded?",
        "Acme Corp was founded in 1998 in Austin. Globex, its main rival, opened its doors in 2004.",
        "Acme Corp was founded in 1998.",
        "Acme Corp was founded in 2004.",
        "2004", id="year of another name"),
    pytest.param(
        "Who founded the company?",
        "Acme Corp was founded by Maria Lopez in 1998 in Austin.",
        "Acme Corp was founded by Maria Lopez.",
        "Acme Corp was founded by Maria Garcia.",
        "garcia", id="entity"),
    pytest.param(
        "Which plan has more storage?",
        "The Pro plan includes 2 TB of storage. The Pro plan offers more storage than the Basic plan.",
        "The Pro plan offers more storage than the Basic plan.",
        "The Basic plan offers more storage than the Pro plan.",
        "other order", id="comparison order"),
    pytest.param(
        "Is the new model faster?",
        "In our benchmarks the new model is faster than the old one on every workload.",
        "The new model is faster than the old one.",
        "The new model is slower than the old one.",
        "slower", id="comparison word"),
    pytest.param(
        "Which department was set up first?",
        "The finance department was the first department of the company, set up in 1950.",
        "Finance was the first department of the company.",
        "Finance was the last department of the company.",
        "last", id="first/last"),
    pytest.param(
        "Does the free tier include SSO?",
        "Single sign-on (SSO) is included in the Enterprise tier. The free tier includes email login.",
        "SSO is included in the Enterprise tier.",
        "SSO is not included in the Enterprise tier.",
        "negation", id="negation"),
]


@pytest.fixture(scope="module")
def scorer():
    return build_scorer(QualityAssessment())


@pytest.mark.parametrize(("question", "source", "faithful", "changed", "evidence"), CASES)
def test_a_swap_lowers_consistency_and_accuracy(scorer, question, source, faithful, changed, evidence) -> None:
    good = scorer.score(question, faithful, [source])
    bad = scorer.score(question, changed, [source])
    assert good.axes["consistency"].score == 1.0, good.axes["consistency"].evidence
    assert bad.axes["consistency"].score <= 0.5
    assert evidence in bad.axes["consistency"].evidence
    assert bad.axes["accuracy"].score < good.axes["accuracy"].score
    assert bad.overall < good.overall


@pytest.mark.parametrize(
    ("source", "answer"),
    [
        # the same fact, said with another unit word of the same unit, or a number the sources write without one
        ("The Coastal Trail is 12 km long.", "The trail is 12 kilometres long."),
        ("Backups run every 6 hours.", "The job runs every 6 h."),
        # a year of a sentence that opens with a pronoun could belong to anyone: not held against the answer
        ("The Eiffel Tower is in Paris. It was completed in 1889.", "The Eiffel Tower was completed in 1889."),
        # the same comparison, said the same way round
        ("Mount Everest is higher than K2.", "Everest is higher than K2."),
    ],
)
def test_restating_a_fact_is_not_a_contradiction(scorer, source: str, answer: str) -> None:
    r = scorer.score("Tell me about it.", answer, [source])
    assert r.axes["consistency"].score == 1.0, r.axes["consistency"].evidence
