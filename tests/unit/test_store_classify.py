"""Write-time labels: rule-based categories from config, keyword topics, normalized duplicates."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_otel.config import ConfigError, ModelObservation, parse_config
from rag_otel.store.classify import Classifier, extract_topic, normalize

DEFAULT = Classifier(ModelObservation().analytics.categories)


@pytest.mark.parametrize(("text", "category"), [
    ("How do I reset my password?", "how-to"),
    ("Steps to configure SSO", "how-to"),
    ("Login fails with error 500", "troubleshooting"),
    ("The export is not working since Monday", "troubleshooting"),
    ("faiss vs chroma for 1M vectors", "comparison"),
    ("What's the difference between BM25 and dense retrieval", "comparison"),
    ("What is a vector database?", "definition"),
    ("What does top_k mean?", "definition"),
    ("What is the capital of France?", "factual"),
    ("When does the invoice fall due", "factual"),
    ("Hello! good morning", "chit-chat"),
    ("summarize the onboarding doc", "other"),
])
def test_default_rules(text: str, category: str) -> None:
    assert DEFAULT.category(text) == category


def test_rules_come_from_config_in_order() -> None:
    cfg = parse_config({"model_observation": {"analytics": {"categories": {
        "billing": [r"\b(invoice|refund)\b"], "how-to": [r"^how\b"]}}}})
    c = Classifier(cfg.analytics.categories)
    assert c.category("How do I get a refund?") == "billing"  # first matching category wins
    assert c.category("how do I log in") == "how-to" and c.category("hello") == "other"
    with pytest.raises(ConfigError, match="does not compile"):
        parse_config({"model_observation": {"analytics": {"categories": {"x": ["(unclosed"]}}}})
    with pytest.raises(ConfigError, match="session_gap"):
        parse_config({"model_observation": {"analytics": {"session_gap": "soon"}}})


def test_labels_only_from_text_and_app_labels_win() -> None:
    assert DEFAULT.labels(None).category is None and DEFAULT.labels("  ").topic is None
    lab = DEFAULT.labels("How do I reset my password?", category="account")
    assert (lab.category, lab.topic, lab.words) == ("account", "reset password", 6)
    assert DEFAULT.labels("x", topic="billing").topic == "billing"


def _labelled(name: str) -> list[tuple[str, set[str]]]:
    rows = []
    for line in (Path(__file__).parents[1] / "data" / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            q, _, ok = line.partition("\t")
            rows.append((q, set(ok.split("|")) - {""}))
    return rows


def _acceptable(rows: list[tuple[str, set[str]]]) -> int:
    return sum((t := extract_topic(q)) in ok or (t is None and not ok) for q, ok in rows)


def test_topics_are_phrases_a_person_would_use_on_hand_checked_queries() -> None:
    """Measured on hand-checked queries: the set the heuristic was tuned on, and a held-out one."""
    tuned, held_out = _labelled("topic_phrases.tsv"), _labelled("topic_phrases_heldout.tsv")
    assert (_acceptable(tuned), len(tuned)) == (65, 70)
    assert (_acceptable(held_out), len(held_out)) == (14, 20)
    # what the issue saw from the rule before: "much schooner", "happens downgrade", "within many"
    assert extract_topic("How much does the Schooner plan cost?") == "schooner plan"
    assert extract_topic("What happens when I downgrade my plan?") == "downgrade plan"
    assert extract_topic("Is this within many limits?") == "limits"


def test_topics_and_normalization() -> None:
    assert extract_topic("Why does the FAISS index crash on load?") == "faiss index crash"
    assert extract_topic("What does error HS-101 mean?") == "error hs-101"
    assert extract_topic("what is it?") is None and extract_topic("thanks, that helped") is None
    assert normalize("  How do I reset my PASSWORD?? ") == normalize("how do i reset my password") \
        == "how do i reset my password"
