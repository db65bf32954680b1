"""The one small interface the processor uses: ``build_scorer(config).score(question, answer, sources)``.

Backends are chosen per axis in ``quality_assessment.backends``; whatever a backend cannot judge
falls back to lexical, and an axis nobody can judge (accuracy with no sources; relevance of a Chinese
answer when no LLM judge is configured) is left out of the result and of the overall score rather than
invented. When no axis is left, the status says why (``skipped``, ``unsupported_language``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from itertools import repeat
from operator import is_
from typing import Any

from rag_otel import semconv
from rag_otel.config import ConfigError, QualityAssessment
from rag_otel.quality.base import Abstain, Axis, AxisBackend, Judgement, NotJudged, Query, clamp
from rag_otel.quality.lexical import LexicalBackend
from rag_otel.records import AxisScore, QualityResult, QualityStatus

logger = logging.getLogger(__name__)
_warned: set[tuple[str, str]] = set()


def grade(score: float, thresholds: dict[str, float]) -> str:
    """good / fair / poor by the configured thresholds (seed: good >= 0.7, fair >= 0.4)."""
    if score >= thresholds.get("good", 0.7):
        return "good"
    if score >= thresholds.get("fair", 0.4):
        return "fair"
    return "poor"


_ROUNDED: dict[float, float] = {}


def _round4(x: float) -> float:
    """``round(x, 4)``, remembered: rounding a float to digits goes through a decimal conversion (~2,500
    instructions, 2% of scoring a short query), and scores are ratios of small counts that recur."""
    if x == 0.0 or x == 1.0:  # the commonest; and 0.0 == -0.0 would share a memo entry, keeping one's sign
        return x
    r = _ROUNDED.get(x)
    if r is None:
        if len(_ROUNDED) >= 10_000:  # bounded: starts over
            _ROUNDED.clear()
        r = _ROUNDED[x] = round(x, 4)
    return r


TRUTH_AXES = ("accuracy", "consistency")


def _capped(mean: float, axes: dict[Axis, AxisScore], weights: dict[Axis, float]) -> float:
    """An answer is no better than its truth: the overall is at most its accuracy and its consistency (those
    judged and given a weight). Without the cap a long, on-topic, wrong answer outranks a short right one: on HaluEval
    the hallucination "First for Women was started first, in 1844" beat "Arthur's Magazine" by relevance and
    completeness (bench/README.md, "Quality: out of domain")."""
    for a in TRUTH_AXES:
        if (s := axes.get(a)) is not None and s.score < mean and weights.get(a, 0.0) > 0:
            mean = s.score
    return mean


class QualityScorer:
    """Scores one query on the configured axes. Thread-safe: the processor calls it from workers."""

    def __init__(self, qa: QualityAssessment, backends: dict[Axis, AxisBackend]) -> None:
        self.axes: tuple[Axis, ...] = tuple(a for a in semconv.QUALITY_AXES if a in qa.metrics)
        self.weights = {a: float(qa.weights.get(a, 0.0)) for a in self.axes}
        self.thresholds = dict(qa.grade_thresholds)
        self.backends = backends
        self.lexical = LexicalBackend(qa.non_english)
        self.cascade_below = qa.cascade.below if qa.cascade.enabled else None
        self.cascade_axes = tuple(a for a in self.axes if a in qa.cascade.axes)
        self.judge: Any = None  # the LLM backend the cascade escalates to (build_scorer sets it)

    def all_lexical(self) -> bool:
        """Is every axis scored by ``lexical``? Asked per query: ``backends`` may be changed in place."""
        get, lexical = self.backends.get, self.lexical
        # all in C (a generator costs a Python frame per axis, and this runs per query)
        return all(map(is_, map(get, self.axes, repeat(lexical)), repeat(lexical)))

    def score(self, question: str | None, answer: str | None, sources: Sequence[str] = ()) -> QualityResult:
        """Judge ``answer`` to ``question`` given the retrieved ``sources`` (their text)."""
        t0 = time.perf_counter()
        if not (question and question.strip()) or not (answer and answer.strip()):
            return QualityResult(axes={}, overall=None, evaluator="", status="no_content",
                                 duration_s=time.perf_counter() - t0)
        query = Query(question, answer, list(sources or ()))
        result = self._score_lexical(query, t0) if self.all_lexical() else self._score_mixed(query, t0)
        if self.cascade_below is not None and self.judge is not None and result.axes is not None:
            self._escalate(query, result, t0)
        return result

    def _score_mixed(self, query: Query, t0: float) -> QualityResult:
        axes: dict[Axis, AxisScore] = {}
        not_judged: dict[Axis, str] = {}
        by_backend: dict[int, list[Axis]] = {}
        for axis in self.axes:
            by_backend.setdefault(id(self.backends.get(axis, self.lexical)), []).append(axis)
        for group in by_backend.values():
            backend = self.backends.get(group[0], self.lexical)
            results = self._run(backend, query, group)
            for axis in group:
                res = results.get(axis)
                evaluator, note = backend.evaluator, ""
                if isinstance(res, Abstain):  # the backend looked and cannot tell: left out, reason kept
                    not_judged[axis] = f"{backend.evaluator}: {res}"
                    continue
                if backend is not self.lexical and (res is None or isinstance(res, NotJudged)):
                    note = f"({backend.evaluator.split('/')[0]}: {res or 'cannot judge this axis'}) "
                    res = self.lexical.score(query, [axis])[axis]
                    evaluator = self.lexical.evaluator
                if isinstance(res, tuple):
                    s = clamp(res[0])
                    axes[axis] = AxisScore(round(s, 4), note + res[1], grade(s, self.thresholds), evaluator, res[2])
        overall = self.overall(axes)
        evaluators = sorted({a.evaluator for a in axes.values()})
        return QualityResult(
            axes=axes,
            overall=None if overall is None else round(overall, 4),
            evaluator="+".join(evaluators),
            status="scored" if axes else self._unscored(query),
            grade=None if overall is None else grade(overall, self.thresholds),
            duration_s=time.perf_counter() - t0,
            not_judged=not_judged,
        )

    def escalation(self, result: QualityResult, below: float | None = None,
                   axes: Sequence[Axis] | None = None) -> list[Axis]:
        """The watched axes (``cascade.axes``) the cascade sends (would send, at ``below``) to the LLM judge:
        abstained, or scored below ``cascade.below`` by a backend other than the judge itself."""
        below = (self.cascade_below or 0.0) if below is None else below
        got = result.axes
        return [a for a in (self.cascade_axes if axes is None else axes) if a in result.not_judged
                or (a in got and got[a].score < below and not got[a].evaluator.startswith("llm/"))]

    def _escalate(self, query: Query, result: QualityResult, t0: float) -> None:
        """Ask the LLM judge (no sampling; its budgets and timeout hold) for the uncertain or low axes only."""
        axes = self.escalation(result)
        if not axes:
            return
        verdicts = self._run(self.judge, query, axes, escalate=True)
        for axis in axes:
            res = verdicts.get(axis)
            if isinstance(res, tuple):
                s = clamp(res[0])
                result.axes[axis] = AxisScore(round(s, 4), "(escalated) " + res[1], grade(s, self.thresholds),
                                              self.judge.evaluator, res[2])
                result.not_judged.pop(axis, None)
        result.escalated = tuple(axes)
        overall = self.overall(result.axes)
        result.overall = None if overall is None else round(overall, 4)
        result.grade = None if overall is None else grade(overall, self.thresholds)
        result.evaluator = "+".join(sorted({a.evaluator for a in result.axes.values()}))
        if result.axes and result.status != "scored":
            result.status = "scored"
        result.duration_s = time.perf_counter() - t0

    def _score_lexical(self, query: Query, t0: float) -> QualityResult:
        """``score`` when every axis is lexical: one backend call, no grouping, no fallbacks to consider
        (the same numbers and strings as the general path; tests/unit/test_quality_scorer_paths.py)."""
        lexical = self.lexical
        results = self._run(lexical, query, self.axes)  # type: ignore[arg-type]
        evaluator = lexical.evaluator
        axes: dict[Axis, AxisScore] = {}
        weights: list[float] = []
        weighted: list[float] = []
        not_judged: dict[Axis, str] = {}
        all_weights = self.weights
        good, fair = self.thresholds.get("good", 0.7), self.thresholds.get("fair", 0.4)  # grade(), inlined below
        for axis in self.axes:
            res = results.get(axis)
            if isinstance(res, Abstain):
                not_judged[axis] = f"{evaluator}: {res}"
            elif isinstance(res, tuple):
                s = clamp(res[0])
                score = _round4(s)
                axes[axis] = AxisScore(score, res[1], "good" if s >= good else "fair" if s >= fair else "poor",
                                       evaluator, res[2])
                w = all_weights[axis]
                weights.append(w)
                weighted.append(w * score)
        total = sum(weights)  # as overall() adds them, in the same order
        if total <= 0:
            return QualityResult(axes, None, evaluator if axes else "", "scored" if axes else self._unscored(query),
                                 None, time.perf_counter() - t0, not_judged)
        overall = _capped(sum(weighted) / total, axes, all_weights)
        return QualityResult(axes, _round4(overall), evaluator, "scored",
                             "good" if overall >= good else "fair" if overall >= fair else "poor",
                             time.perf_counter() - t0, not_judged)

    def _unscored(self, query: Query) -> QualityStatus:
        """Why no axis has a score: the English rules declined the text, or nothing could be judged."""
        return "skipped" if self.lexical.judges(query) else "unsupported_language"

    def overall(self, axes: dict[Axis, AxisScore]) -> float | None:
        """Weighted mean, the weights renormalised over the axes actually scored, capped by the truth axes."""
        total = sum(self.weights[a] for a in axes)
        if total <= 0:
            return None
        return _capped(sum(self.weights[a] * s.score for a, s in axes.items()) / total, axes, self.weights)

    def _run(self, backend: AxisBackend, query: Query, axes: list[Axis], escalate: bool = False
             ) -> dict[Axis, Judgement]:
        try:
            return backend.judge(query, axes) if escalate else backend.score(query, axes)  # type: ignore[attr-defined]
        except Exception as e:  # a broken backend must not lose the query: lexical judges it instead
            key = (backend.evaluator, type(e).__name__)
            if key not in _warned:  # once per backend and kind of failure: no log flood per query
                _warned.add(key)
                logger.warning("quality backend %s failed (%s); lexical scores instead", backend.evaluator, e)
            if backend is self.lexical:
                return {}
            return {a: NotJudged(f"failed: {type(e).__name__}") for a in axes}


def build_scorer(qa: QualityAssessment | None = None) -> QualityScorer:
    """A scorer for the configured axes and backends; model backends load lazily on first use.

    Raises :class:`ConfigError` when a configured backend cannot work here (e.g. the embeddings
    extra is not installed), so a misconfiguration shows at startup rather than as silent fallbacks.
    """
    qa = qa or QualityAssessment()
    lexical = LexicalBackend(qa.non_english)
    made: dict[str, AxisBackend] = {"lexical": lexical}
    backends: dict[Axis, AxisBackend] = {}
    for axis in qa.metrics:
        name = qa.backends.get(axis, "lexical")
        if name not in made:
            if name == "embedding":
                from rag_otel.quality.embedding import EmbeddingBackend, EmbeddingUnavailable, check_available

                try:
                    check_available(qa.embedding_model)
                except EmbeddingUnavailable as e:  # say so at startup, not on every query
                    raise ConfigError(f"quality_assessment.backends.{axis}: embedding: {e}") from None
                made[name] = EmbeddingBackend(qa.embedding_model)
            elif name == "llm":
                from rag_otel.quality.llm import LlmBackend

                made[name] = LlmBackend(qa.llm)
            elif name == "nli":
                from rag_otel.quality.nli import NliBackend, NliUnavailable, check_available

                if not qa.nli.model:
                    raise ConfigError(f"quality_assessment.backends.{axis}: nli needs quality_assessment.nli.model "
                                      "(a local model directory or a model id)")
                try:
                    check_available()
                except NliUnavailable as e:
                    raise ConfigError(f"quality_assessment.backends.{axis}: nli: {e}") from None
                made[name] = NliBackend(qa.nli)
        backends[axis] = made[name]
    scorer = QualityScorer(qa, backends)
    scorer.lexical = lexical
    if qa.cascade.enabled:
        if not qa.llm.base_url:
            raise ConfigError("quality_assessment.cascade needs the LLM judge: set quality_assessment.llm.base_url")
        if "llm" not in made:
            from rag_otel.quality.llm import LlmBackend

            made["llm"] = LlmBackend(qa.llm)
        scorer.judge = made["llm"]
    return scorer
