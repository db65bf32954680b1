"""The nli backend loads a sequence-classification model from a local directory and judges accuracy and
consistency with it. The models are tiny BERTs the tests build and save themselves (random weights, a vocabulary
of a few words: no download); where a test needs a known verdict, the classifier's bias is set so that one label
wins whatever the input, and the label order is shuffled, so only reading labels by name passes."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rag_otel.config import ConfigError, QualityAssessment  # noqa: E402
from rag_otel.quality import build_scorer  # noqa: E402
from rag_otel.quality.nli import NliUnavailable, label_roles  # noqa: E402

WORDS = str.split("the eiffel tower is in paris it was completed 1889 and 330 metres tall how when london not built "
                  "napoleon by")
SOURCES = ["The Eiffel Tower is in Paris. It was completed in 1889 and is 330 metres tall."]
QUESTION = "How tall is the Eiffel Tower?"
ANSWER = "The Eiffel Tower is 330 metres tall. It was completed in 1889."


def tiny_model(path: Path, labels: list[str] | None, winner: str | None = None, num_labels: int = 3) -> str:
    """A 1-layer BERT classifier saved with its tokenizer; ``winner``: the label the bias makes win (by a lot)."""
    path.mkdir(parents=True, exist_ok=True)
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, ".", ","]) + "\n")
    tok = transformers.BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    kw = {"num_labels": num_labels}
    if labels:
        kw |= {"id2label": dict(enumerate(labels)), "label2id": {n: i for i, n in enumerate(labels)}}
    config = transformers.BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=128, **kw)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    if winner is not None:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.fill_(0.0)
            if winner != "tie":
                model.classifier.bias[labels.index(winner)] = 8.0
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def nli_scorer(model: str, **nli) -> object:
    qa = QualityAssessment(backends={"accuracy": "nli", "consistency": "nli"},
                           nli={"model": model, "max_length": 128, **nli})
    return build_scorer(qa)


@pytest.mark.parametrize("order", [["CONTRADICTION", "ENTAILMENT", "NEUTRAL"], ["entailment", "neutral",
                                                                               "contradiction"]])
def test_an_entailing_model_gives_full_accuracy_and_consistency(tmp_path: Path, order: list[str]) -> None:
    model = tiny_model(tmp_path / "m", order, winner=order[[x.lower() for x in order].index("entailment")])
    r = nli_scorer(model).score(QUESTION, ANSWER, SOURCES)
    assert r.axes["accuracy"].score > 0.99 and r.axes["consistency"].score > 0.99
    assert r.axes["accuracy"].evaluator == "nli/m" and r.axes["consistency"].evaluator == "nli/m"
    assert "2 of 2 answer sentence(s) entailed" in r.axes["accuracy"].explanation
    # relevance and completeness are not the nli backend's: lexical scores them
    assert r.axes["relevance"].evaluator.startswith("lexical/")


@pytest.mark.parametrize("order", [["CONTRADICTION", "ENTAILMENT", "NEUTRAL"], ["entailment", "neutral",
                                                                               "contradiction"]])
def test_a_contradicting_model_drops_both_axes(tmp_path: Path, order: list[str]) -> None:
    model = tiny_model(tmp_path / "m", order, winner=order[[x.lower() for x in order].index("contradiction")])
    r = nli_scorer(model).score(QUESTION, ANSWER, SOURCES)
    assert r.axes["accuracy"].score < 0.01 and r.axes["consistency"].score < 0.01
    assert "2 of 2 answer sentence(s) contradicted" in r.axes["consistency"].explanation
    assert r.axes["consistency"].evidence.startswith("most contradicted")
    assert r.overall <= r.axes["consistency"].score  # the truth cap holds whatever the backend


def test_a_random_model_really_runs_on_every_sentence_pair(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m", ["entailment", "neutral", "contradiction"])
    scorer = nli_scorer(model, min_confidence=0.0)
    backend = scorer.backends["accuracy"]
    probs = backend.probabilities([(SOURCES[0], "The Eiffel Tower is in London."), (SOURCES[0], ANSWER)])
    assert len(probs) == 2 and all(0.0 < e < 1.0 and 0.0 < c < 1.0 for e, c in probs)
    assert probs[0] != probs[1]  # the input matters
    a = scorer.score(QUESTION, ANSWER, SOURCES)
    b = scorer.score(QUESTION, ANSWER, SOURCES)
    assert a.axes["accuracy"].score == b.axes["accuracy"].score  # deterministic


def test_a_two_label_fact_checker_judges_accuracy_and_leaves_consistency_to_lexical(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m", ["LABEL_0", "LABEL_1"], winner="LABEL_1", num_labels=2)
    r = nli_scorer(model).score(QUESTION, ANSWER, SOURCES)
    assert r.axes["accuracy"].score > 0.99 and r.axes["accuracy"].evaluator == "nli/m"
    assert r.axes["consistency"].evaluator.startswith("lexical/")
    assert "no contradiction label" in r.axes["consistency"].explanation


def test_where_the_model_cannot_tell_the_axis_abstains_with_the_reason(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m", ["not_entailment", "entailment"], winner="tie", num_labels=2)
    r = nli_scorer(model).score(QUESTION, ANSWER, SOURCES)
    assert "accuracy" not in r.axes  # not invented, not handed to another backend
    assert "cannot tell" in r.not_judged["accuracy"] and r.not_judged["accuracy"].startswith("nli/m")
    assert r.overall is not None  # the other axes still make an overall


def test_labels_are_read_by_name() -> None:
    assert label_roles({0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}, 3) == {"contradiction": 0,
                                                                                  "entailment": 2}
    assert label_roles({0: "not_entailment", 1: "entailment"}, 2) == {"entailment": 1}
    assert label_roles({0: "supported", 1: "unsupported"}, 2) == {"entailment": 0}
    assert label_roles({0: "hallucinated", 1: "consistent"}, 2) == {"entailment": 1}
    assert label_roles({0: "LABEL_0", 1: "LABEL_1"}, 2) == {"entailment": 1}
    assert label_roles({0: "yes", 1: "no"}, 2, entailment_label="yes") == {"entailment": 0}
    assert label_roles({0: "LABEL_0"}, 1) == {}
    with pytest.raises(NliUnavailable, match="entailment_label"):
        label_roles({0: "foo", 1: "bar", 2: "baz"}, 3)


def test_a_model_that_cannot_load_falls_back_to_lexical_with_the_reason(tmp_path: Path) -> None:
    r = nli_scorer(str(tmp_path / "missing")).score(QUESTION, ANSWER, SOURCES)
    assert r.axes["accuracy"].evaluator.startswith("lexical/")
    assert r.axes["accuracy"].explanation.startswith("(nli: failed")


def test_the_backend_needs_a_model() -> None:
    with pytest.raises(ConfigError, match=r"nli\.model"):
        build_scorer(QualityAssessment(backends={"accuracy": "nli"}))
