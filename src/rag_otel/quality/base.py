"""What every scorer backend shares: the query being judged, analyzed once, and the backend protocol."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from itertools import chain
from operator import neg
from typing import Any, Generic, Protocol, TypeVar

from rag_otel.quality.text import Analyzed, Language, analyze, language, merge, sentences, strip_citations

Axis = str  # one of semconv.QUALITY_AXES
# Scoring time must stay bounded whatever arrives: longer texts are judged on their beginning.
MAX_CHARS = 12_000
MAX_SOURCE_CHARS = 32_000


T = TypeVar("T")


class cached_property(Generic[T]):
    """functools.cached_property without its lock (Python 3.11 takes an RLock on every first access, a
    measurable share of scoring a short query); a Query is never shared between threads while scored."""

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, cls: type | None = None) -> T:
        if obj is None:
            return self  # type: ignore[return-value]
        value = obj.__dict__[self.name] = self.func(obj)
        return value


def _cap(texts: list[str], budget: int) -> list[str]:
    out = []
    for t in texts:
        if budget <= 0:
            break
        out.append(t[:budget])
        budget -= len(out[-1])
    return out


class Query:
    """One (question, answer, sources) to judge; each text is analyzed at most once, on first use."""

    def __init__(self, question: str, answer: str, sources: Sequence[str]) -> None:
        self.question = question[:MAX_CHARS]
        self.answer = strip_citations(answer[:MAX_CHARS])
        self.sources = _cap([s for s in sources if isinstance(s, str) and s.strip()], MAX_SOURCE_CHARS)
        self.memo: dict[str, Any] = {}  # results one axis computes and another reuses

    @cached_property
    def q(self) -> Analyzed:
        return analyze(self.question)

    @cached_property
    def a(self) -> Analyzed:
        return merge([s for _, s in self.answer_sentences])

    @cached_property
    def src(self) -> Analyzed:
        return merge(self.source_sentences) if self.source_sentences else analyze("")

    @cached_property
    def language(self) -> Language:
        """ENGLISH, OTHER_LATIN or OTHER_SCRIPT (text.language): the lexical and embedding rules are English."""
        return language(self.question, self.answer, self.q, self.a)

    @cached_property
    def answer_sentences(self) -> list[tuple[str, Analyzed]]:
        return [(s, analyze(s)) for s in sentences(self.answer)] or [(self.answer, analyze(self.answer))]

    @cached_property
    def source_sentences(self) -> list[Analyzed]:
        return [analyze(s) for src in self.sources for s in sentences(src)]

    @cached_property
    def aligned(self) -> list[list[Analyzed]]:
        """Per answer sentence, the (up to) two source sentences sharing most content words, best first.

        Set intersections in C for all pairs, up to a size where an inverted index (linear in the text
        size rather than answer x source sentences) is cheaper.
        """
        srcs = self.source_sentences
        if len(srcs) * len(self.answer_sentences) > 10_000:
            return self._aligned_indexed()
        contents = [s.content for s in srcs]
        common: set[str] | None = None
        if len(srcs) > 8:  # a word in most sentences tells none apart: skip it
            half = len(srcs) // 2
            common = {w for w, n in Counter(chain.from_iterable(contents)).items() if n > half}
        order = range(len(srcs))
        out: list[list[Analyzed]] = []
        for _, s in self.answer_sentences:
            words = s.content - common if common else s.content
            # most shared words first, then the earlier sentence; none shared: not a match
            ranked = sorted(zip(map(neg, map(len, map(words.intersection, contents))), order, strict=True))[:2]
            out.append([srcs[i] for n, i in ranked if n])
        return out

    def _aligned_indexed(self) -> list[list[Analyzed]]:
        index: dict[str, list[int]] = defaultdict(list)
        for i, s in enumerate(self.source_sentences):
            for w in s.content:
                index[w].append(i)
        common = len(self.source_sentences) // 2  # a word in most sentences tells none apart: skip it
        index = defaultdict(list, {w: ids for w, ids in index.items() if len(ids) <= common})
        out: list[list[Analyzed]] = []
        for _, s in self.answer_sentences:
            hits = Counter(i for w in s.content for i in index.get(w, ()))
            best = sorted(hits, key=lambda i: (-hits[i], i))[:2]
            out.append([self.source_sentences[i] for i in best])
        return out


class NotJudged(str):
    """Why a backend did not judge an axis this time (not sampled, budget, timeout, ...): the
    scorer then asks the lexical backend and records the reason in the explanation."""


class Abstain(str):
    """The backend looked and cannot tell (a model's coin toss): the axis is left out, not handed to lexical, and
    the reason is recorded (``QualityResult.not_judged``); the cascade sends such an axis to the LLM judge."""


Judged = tuple[float, str, str]
"""(score, explanation, evidence). The explanation never quotes the question, answer or sources, so it may leave
with the trace when their content is stripped; the evidence (sentences, names, numbers quoted from them) goes only
where the content may go."""
Judgement = Judged | NotJudged | Abstain | None  # None: cannot be judged at all


class AxisBackend(Protocol):
    """A way of scoring some axes. ``None`` for an axis it cannot judge for this query (accuracy
    without sources) keeps the overall score from resting on an invented number."""

    evaluator: str  # "backend/version", recorded per axis

    def score(self, query: Query, axes: Sequence[Axis]) -> dict[Axis, Judgement]: ...


def clamp(x: float) -> float:
    return 0.0 if x < 0 else 1.0 if x > 1 else float(x)


def short(text: str, n: int = 80) -> str:
    """A quotable excerpt for explanations: the text's words joined by single spaces, cut at ``n`` chars.

    Words of a prefix of the text joined so are a prefix of the whole joined: enough when already too long.
    """
    head = " ".join(text[: 2 * n].split())
    if len(head) > n:
        return head[: n - 1] + "…"
    if len(text) > 2 * n:
        head = " ".join(text.split())
    return head if len(head) <= n else head[: n - 1] + "…"
