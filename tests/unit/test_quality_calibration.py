"""Calibration smoke test: on a slice of the shared labelled dev data (../shared/data/quality beside
the repository, as in CI), the lexical scorer beats the floors the data README names."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("quality_calibration", REPO / "bench" / "quality_calibration.py")
cal = importlib.util.module_from_spec(_spec)
sys.modules["quality_calibration"] = cal
_spec.loader.exec_module(cal)

from rag_otel.quality.lexical import LexicalBackend  # noqa: E402

DATA = cal.DEFAULT_DATA


@pytest.fixture(scope="module")
def lexical() -> LexicalBackend:
    assert DATA.is_dir(), f"calibration data missing at {DATA} (shared/ must sit beside the repository)"
    return LexicalBackend()


def test_metrics_are_the_textbook_ones() -> None:
    assert cal.auroc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert cal.auroc([0.5, 0.5], [1, 0]) == 0.5  # ties count half
    assert cal.auroc([0.1, 0.9, 0.4], [1, 0, 0]) == 0.0
    assert cal.balanced_accuracy([0.9, 0.2, 0.8, 0.1], [1, 1, 0, 0], 0.5) == 0.5


def test_begin_accuracy_beats_overlap_and_length(lexical: LexicalBackend) -> None:
    rows = cal.begin(DATA, limit=150)
    y = [e.labels["accuracy"] for e in rows]
    ours = cal.auroc(cal.axis_scores(lexical, rows, "accuracy"), y)
    floors = cal.floors(rows, "accuracy")
    assert ours >= 0.93
    assert ours > cal.oriented(cal.auroc(floors["length"], y))
    assert ours > cal.oriented(cal.auroc(floors["overlap"], y))


def test_halueval_right_answers_beat_hallucinated_ones_more_often_than_length_does(lexical: LexicalBackend) -> None:
    rows = cal.halueval(DATA, limit=80)
    ours = cal.pairwise(rows, cal.axis_scores(lexical, rows, "accuracy"))
    length = cal.oriented(cal.pairwise(rows, cal.floors(rows, "accuracy")["length"]))
    assert ours >= 0.95 and ours > length


def test_summedits_consistency_above_chance_per_domain(lexical: LexicalBackend) -> None:
    """Every domain, scitldr too (no rule was written looking at it: out of domain), all rows."""
    for domain, rows in cal.summedits(DATA):
        y = [e.labels["consistency"] for e in rows]
        s = cal.axis_scores(lexical, rows, "consistency")
        bacc = cal.balanced_accuracy(s, y, 1.0)  # the fixed rule: any contradiction found = inconsistent
        overlap = cal.oriented(cal.auroc(cal.floors(rows, "consistency")["overlap"], y))
        assert bacc >= 0.6, domain
        assert cal.auroc(s, y) > overlap, domain


def test_haluquestqa_relevance_beats_length(lexical: LexicalBackend) -> None:
    rows = cal.haluquestqa(DATA, limit=150)
    y = [e.labels["relevance"] for e in rows]
    ours = cal.auroc(cal.axis_scores(lexical, rows, "relevance"), y)
    assert ours >= 0.62
    assert ours > cal.oriented(cal.auroc(cal.floors(rows, "relevance")["length"], y))


def test_every_tagged_sentence_of_haluquestqa_is_read() -> None:
    """The sentence view holds one example per expert tag (the first sentence of each answer included)."""
    rows = json.loads((cal.DEFAULT_DATA / "haluquestqa" / "incomplete_ans_detection_data.json").read_text("utf-8"))
    tags = sum(len(cal._TAGGED.findall(r["output"])) for r in rows)
    examples = cal.haluquestqa_sentences()
    assert len(examples) == tags
    first = rows[0]["input"].partition("\nAnswer:")[2].strip().splitlines()[0].removeprefix("1.").strip()
    assert examples[0].answer == first


def _ood():
    spec = importlib.util.spec_from_file_location("quality_ood", REPO / "bench" / "quality_ood.py")
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(REPO / "bench"))
    spec.loader.exec_module(mod)
    return mod


def test_out_of_domain_thresholds_come_from_other_datasets_only() -> None:
    """The held-out set never lends its own threshold, nor does its sibling (HaluEval's two files share their
    questions and right answers): a threshold perfect in-sample and wrong elsewhere shows as such."""
    ood = _ood()
    sets = ood.load(DATA)
    assert {e.domain for e in sets["haluquestqa/gpt4"]} == {"gpt4"} and len(sets["haluquestqa/human"]) == 349
    assert {e.labels["accuracy"] for e in sets["halueval/one-turn"]} == {0, 1}
    # scores that separate perfectly at 0.5 on BEGIN but at 0.9 on HaluEval
    scores = {}
    for name, rows in sets.items():
        cut = 0.5 if name == "begin" else 0.9
        s = [cut + 0.05 if e.labels.get("accuracy", 1) else cut - 0.05 for e in rows]
        scores[name] = {k: s for k in (*ood.AXES, "overall")}
    rows = {r["set"]: r for r in ood.threshold_rows("t", scores, sets) if r["axis"] == "accuracy"}
    assert rows["begin"]["trained_on"] == "halueval/one-turn+halueval/multi-turn"
    assert rows["halueval/one-turn"]["trained_on"] == "begin"
    assert rows["begin"]["bacc_in"] == 1.0 and rows["begin"]["bacc_ood"] == 0.5  # HaluEval's cut calls all deficient
    assert rows["halueval/one-turn"]["bacc_in"] == 1.0


def test_lexical_or_nli_is_inconsistent_when_either_says_so() -> None:
    """The combination's fixed rule (score < 1) fires on a lexical finding or a contradiction probability above
    0.5, not otherwise; where the model did not judge, lexical's score stands; the nli rows' own verdict is 0.5."""
    ood = _ood()
    lex = {"s": {"accuracy": [1.0, 0.5, 1.0, 1.0], "consistency": [1.0, 0.5, 1.0, 0.5],
                 "overall": [1.0] * 4, "completeness": [1.0] * 4, "relevance": [1.0] * 4}}
    nli = {"s": {"accuracy": [0.9, 0.9, 0.3, None], "consistency": [0.9, 0.9, 0.3, None]}}
    both = ood.either(lex, nli)["s"]
    assert [c < 1.0 for c in both["consistency"]] == [False, True, True, True]
    assert both["consistency"][3] == 0.5 and both["overall"] == [1.0] * 4
    y = [1, 0, 0, 0]
    sets = {d: [ood.Example("", "a", ["d"], {"consistency": v}) for v in y]
            for d in ("summedits/scitldr", "summedits/news")}
    scores = {d: {k: ([0.9, 0.4, 0.45, 0.2] if k == "consistency" else [1.0] * 4) for k in (*ood.AXES, "overall")}
              for d in sets}
    rows = [r for r in ood.threshold_rows("nli", scores, sets, fixed=0.5) if r["axis"] == "consistency"]
    assert [r["bacc_fixed"] for r in rows] == [1.0, 1.0]  # at 1.0 (lexical's rule) every row would be deficient
