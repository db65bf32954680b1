"""What every scorer backend shares: the query being judged, analyzed once, and the backend protocol."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any, Protocol

from rag_otel.quality.text import Analyzed, analyze, sentences

Axis = str  # one of semconv.QUALITY_AXES


class Query:
    """One (question, answer, sources) to judge; each text is analyzed at most once, on first use."""

    def __init__(self, question: str, answer: str, sources: Sequence[str]) -> None:
        self.question = question
        self.answer = answer
        self.sources = [s for s in sources if s and s.strip()]
        self.memo: dict[str, Any] = {}  # results one axis computes and another reuses

    @cached_property
    def q(self) -> Analyzed:
        return analyze(self.question)

    @cached_property
    def a(self) -> Analyzed:
        return analyze(self.answer)

    @cached_property
    def src(self) -> Analyzed:
        return analyze("\n".join(self.sources))

    @cached_property
    def answer_sentences(self) -> list[tuple[str, Analyzed]]:
        return [(s, analyze(s)) for s in sentences(self.answer)] or [(self.answer, self.a)]

    @cached_property
    def source_sentences(self) -> list[Analyzed]:
        return [analyze(s) for src in self.sources for s in sentences(src)]


class NotJudged(str):
    """Why a backend did not judge an axis this time (not sampled, budget, timeout, ...): the
    scorer then asks the lexical backend and records the reason in the explanation."""


Judgement = tuple[float, str] | NotJudged | None  # (score, explanation); None: cannot be judged at all


class AxisBackend(Protocol):
    """A way of scoring some axes. ``None`` for an axis it cannot judge for this query (accuracy
    without sources) keeps the overall score from resting on an invented number."""

    evaluator: str  # "backend/version", recorded per axis

    def score(self, query: Query, axes: Sequence[Axis]) -> dict[Axis, Judgement]: ...


def clamp(x: float) -> float:
    return 0.0 if x < 0 else 1.0 if x > 1 else float(x)


def short(text: str, n: int = 80) -> str:
    """A quotable excerpt for explanations."""
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
