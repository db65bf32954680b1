"""Question parts: ruling out a split without the regex scan changes nothing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rag_otel.quality.lexical import _PART_SPLIT, _parts, question_parts
from rag_otel.quality.text import analyze, sentences


def reference_parts(question: str) -> list[str]:
    parts = []
    for sent in sentences(question):
        for p in _PART_SPLIT.split(sent):
            if analyze(p).content:
                parts.append(p.strip())
    return parts or [question]


WORDS = ["what", "How", "is", "Paris", "and", "AND", "And", "or", "Or", "also", "ALSO", "alſo", "but", "plus", "pluſ",
         "PLUS", "band", "order", "why", "Which", "does", "it", "cost", "the", "capital", ",", "?", ".", "café"]
SEPARATORS = [" ", "  ", ", ", "\t", "\n", "\u00a0", "\x1f", "? ", ". ", ""]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=20))
def test_question_parts_equal_the_plain_regex_split(pieces: list[tuple[str, str]]) -> None:
    q = "".join(w + s for w, s in pieces)
    assert question_parts(q) == reference_parts(q)
    assert _parts(q) == tuple((p, analyze(p).content) for p in reference_parts(q))


def test_examples() -> None:
    q = "Where is Paris and what is the capital of France, or how big is Paris but who is the mayor?"
    assert question_parts(q) == reference_parts(q) and len(question_parts(q)) == 4
    assert question_parts("What is Paris AND how big is it?") == ["What is Paris", "how big is it?"]
    assert question_parts("What is it alſo how?") == reference_parts("What is it alſo how?")
