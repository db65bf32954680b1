"""The embedding backend with the real bundled all-MiniLM-L6-v2 (the ``embeddings`` extra is part
of ``dev``, so this always runs): paraphrases count, the model never touches the network."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rag_otel.config import ConfigError, QualityAssessment
from rag_otel.quality import build_scorer
from rag_otel.quality.embedding import EmbeddingBackend, sentence_relevance

EMB = {"accuracy": "embedding", "completeness": "embedding", "relevance": "embedding", "consistency": "embedding"}
QUESTION = "How can I reset my password?"
PARAPHRASE = "Open Settings, choose 'Forgot passcode' and follow the e-mail link to set new login credentials."
OFF_TOPIC = "Our office dog is called Biscuit and loves long walks on the beach."
SOURCES = ["To recover an account, users pick 'Forgot passcode' under Settings; an e-mail link lets them "
           "choose new login credentials."]


@pytest.fixture(scope="module")
def scorer():
    s = build_scorer(QualityAssessment(backends=EMB))
    s.score(QUESTION, PARAPHRASE, SOURCES)  # load once for the module
    return s


def test_model_loads_offline_from_the_package(scorer) -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    r = scorer.score(QUESTION, PARAPHRASE, SOURCES)
    assert r.axes["relevance"].evaluator == "embedding/all-MiniLM-L6-v2"


def test_paraphrased_answer_is_relevant_where_word_overlap_sees_little(scorer) -> None:
    emb = scorer.score(QUESTION, PARAPHRASE, SOURCES).axes["relevance"]
    off = scorer.score(QUESTION, OFF_TOPIC, SOURCES).axes["relevance"]
    lexical = build_scorer().score(QUESTION, PARAPHRASE, SOURCES).axes["relevance"]
    assert emb.score > off.score + 0.3
    assert emb.score > lexical.score
    assert off.label == "poor"


def test_one_off_topic_sentence_costs_relevance_and_is_named(scorer) -> None:
    """Relevance follows the weakest sentence: an on-topic answer with a tangent loses what a mean over
    its sentences would hide, and the evidence quotes the tangent."""
    on = scorer.score(QUESTION, PARAPHRASE, SOURCES).axes["relevance"]
    tangent = scorer.score(QUESTION, PARAPHRASE + " " + OFF_TOPIC, SOURCES).axes["relevance"]
    assert tangent.score < on.score - 0.15
    assert "Biscuit" in tangent.evidence and "Biscuit" not in tangent.explanation  # quoted only as evidence


def test_sentence_relevance_takes_the_best_question_part_per_sentence() -> None:
    """A sentence answering the question's second part counts as relevant, not only ones matching the title."""
    title, body = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    answer = np.array([[0.8, 0.6, 0.0], [0.0, 0.6, 0.8], [0.0, 0.0, 1.0]])
    assert sentence_relevance(answer, np.vstack([title, body])).tolist() == pytest.approx([0.8, 0.6, 0.0])
    assert sentence_relevance(answer, title[None, :]).tolist() == pytest.approx([0.8, 0.0, 0.0])


def test_accuracy_follows_the_sources_and_completeness_the_question_parts(scorer) -> None:
    grounded = scorer.score(QUESTION, PARAPHRASE, SOURCES).axes["accuracy"]
    unsupported = scorer.score(QUESTION, OFF_TOPIC, SOURCES).axes["accuracy"]
    assert grounded.score > unsupported.score + 0.3
    two_part = "How can I reset my password, and how do I delete my account?"
    half = scorer.score(two_part, PARAPHRASE, SOURCES).axes["completeness"]
    full = scorer.score(two_part, PARAPHRASE + " To delete your account, choose Remove account in Settings.",
                        SOURCES).axes["completeness"]
    assert full.score > half.score
    assert "delete my account" in half.evidence and "delete" not in half.explanation


def test_consistency_stays_lexical_and_says_why(scorer) -> None:
    r = scorer.score(QUESTION, PARAPHRASE, SOURCES)
    assert r.axes["consistency"].evaluator == "lexical/3"
    assert "cannot see a changed number" in r.axes["consistency"].explanation
    assert r.evaluator == "embedding/all-MiniLM-L6-v2+lexical/3"


def test_an_unbundled_model_is_a_clear_config_error_at_startup() -> None:
    with pytest.raises(ConfigError, match=r"backends\.relevance: embedding: .*'some/other-model' is not bundled"):
        build_scorer(QualityAssessment(backends={"relevance": "embedding"}, embedding_model="some/other-model"))


def test_a_model_that_fails_to_load_falls_back_to_lexical_with_the_reason() -> None:
    backend = EmbeddingBackend("some/other-model")  # bypasses the startup check, as a broken install would
    s = build_scorer(QualityAssessment(backends={"relevance": "embedding"}))
    s.backends["relevance"] = backend
    for _ in range(2):  # the failed load is remembered, not retried per query
        r = s.score(QUESTION, PARAPHRASE, SOURCES)
        assert r.axes["relevance"].evaluator == "lexical/3"
        assert "failed: EmbeddingUnavailable" in r.axes["relevance"].explanation
    assert backend._error is not None
