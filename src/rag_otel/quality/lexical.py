"""The default scorer: no model, pure Python, sub-millisecond for a typical RAG answer.

Each axis is a small, explainable measure over content words (stopwords dropped, light stemming):

- accuracy: share of the answer's content words found in the sources, half credit when found
  anywhere and full credit when found together in one source sentence (a claim stitched from
  unrelated sentences is weaker); chit-chat and first-person words count as unsupported (a source
  cannot back "I love it"); a contradicted answer scores no higher than its consistency.
- consistency: counted contradictions: numbers and names absent from the sources, a word whose
  opposite the sources use, a negation the two best-matching source sentences lack, and sentences of
  the answer that disagree with each other on a number or a negation. Score = 1 / (1 + issues).
- relevance: mean of question coverage, how on-topic the first sentence is, and the share of
  answer sentences that touch the question at all; times the share of sentences not about the
  speaker (first person: an anecdote or opinion does not answer the question).
- completeness: the question split into its parts (sentences, "and what/how ..." clauses); the
  mean share of each part's content words the answer takes up.

No number here is fitted (equal weights, 1/(1+n), half credit); the design choices made while
looking at the calibration dev data are listed in docs/quality.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from itertools import compress, count, repeat
from operator import ge, truediv

from rag_otel.quality.base import Abstain, Axis, Judged, Judgement, Query, clamp, short
from rag_otel.quality.claims import comparison_order, first_name, month_swaps, number_owner, unit_swaps
from rag_otel.quality.direct import direct_answer
from rag_otel.quality.text import (
    ENGLISH,
    FIRST_PERSON_MARK,
    MEMO_LIMIT,
    OPPOSED_MARK,
    OTHER_LATIN,
    PERSONAL,
    PERSONAL_MARK,
    STOPWORDS,
    Analyzed,
    analyze,
    opposites,
    sentences,
    stem,
)

VERSION = "3"  # 3: direct answers, new contradiction kinds, abstentions (issue 11); scores differ from 2
_PART_SPLIT = re.compile(
    r",?\s+(?:and|or|also|but|plus)\s+(?=(?:what|why|how|when|where|who|which|whose|is|are|was|were|do|does|did|"
    r"can|could|should|would|will)\b)",
    re.IGNORECASE,
)


def accuracy(query: Query) -> Judged | Abstain | None:
    if not query.sources:
        return None
    src = query.src
    if not query.a.content:
        return Abstain("the answer makes no claim word overlap can check (e.g. a bare yes or no)")
    n_words = personal = _unsupported_personal(query.a, src)
    found = together = 0
    worst, worst_support = "", 1.0
    for (text, s), best in zip(query.answer_sentences, query.aligned, strict=True):
        content = s.content
        if not content:
            continue
        n_words += len(content)
        in_one = len(content & best[0].content) if best else 0
        found += len(content & src.content)
        together += in_one
        if in_one / len(content) < worst_support:
            worst, worst_support = text, in_one / len(content)
    # a claim's words found anywhere in the sources count half; found together in one sentence, fully
    support = (found + together) / (2 * n_words) if n_words else 1.0
    issues = contradictions(query)
    score = min(support, 1.0 / (1.0 + len(issues)))  # a contradicted claim is not a supported one
    why = f"{support:.0%} support: the answer's content words found in the sources, and together in one sentence"
    if personal:
        why += f"; {personal} personal/chit-chat word(s) no source can support"
    evidence = []
    if issues:
        why += f"; {len(issues)} possible contradiction(s)"
        evidence.append(f"contradicted: {issues[0]}")
    if worst and worst_support < 0.75:
        evidence.append(f"least supported: \"{short(worst)}\"")
    return clamp(score), why, "; ".join(evidence)


def _unsupported_personal(answer: Analyzed, src: Analyzed) -> int:
    """Occurrences of personal/chit-chat words the sources do not use (no token scan unless one occurs)."""
    if not answer.marks & PERSONAL_MARK:
        return 0
    tokens = answer.tokens
    return sum(map(tokens.count, PERSONAL.intersection(tokens) - src.token_set()))


class _OppositesMemo(dict[str, frozenset[str]]):
    """Lowercase token -> the stems meaning its opposite (none for a function word), computed on first sight."""

    def __missing__(self, token: str) -> frozenset[str]:
        if len(self) >= MEMO_LIMIT:
            self.clear()
        o = self[token] = frozenset() if token in STOPWORDS else opposites(token)
        return o


_OPPOSITES = _OppositesMemo()


def contradictions(query: Query) -> list[str]:
    """Reasons the answer may contradict the sources or itself, one per issue found (memoized per query)."""
    if "contradictions" not in query.memo:
        query.memo["contradictions"] = _contradictions(query)
    return query.memo["contradictions"]


def _contradictions(query: Query) -> list[str]:
    issues: list[str] = []
    src = query.src
    if query.sources:
        for n in sorted(query.a.numbers - src.numbers):
            issues.append(f"number {n} is not in the sources")
        for e in sorted(query.a.entities - src.content):
            issues.append(f"name '{e}' is not in the sources")
        for (text, s), best in zip(query.answer_sentences, query.aligned, strict=True):
            if not best:
                continue
            # the two best-matching sentences, not one: word overlap finds "the" matching sentence unreliably
            if s.negated and not any(b.negated for b in best):
                issues.append(f"negation not in the matching source sentences: \"{short(text, 60)}\"")
            if not s.marks & OPPOSED_MARK:  # no word of it has an opposite
                continue
            words = list(dict.fromkeys(s.tokens))  # a word whose opposite the matching source sentence uses
            for t in compress(words, map(_OPPOSITES.__getitem__, words)):  # only words that have an opposite
                if stem(t) not in src.content and (opp := _OPPOSITES[t] & src.content):
                    issues.append(f"'{t}' where the sources say '{sorted(opp)[0]}'")
        issues.extend(_claim_swaps(query))
    issues.extend(_self_contradictions(query))
    return issues


def _claim_swaps(query: Query) -> list[str]:
    """Units, months, a number tied to another name, a comparison turned around (claims.py); each looks at
    tokens only for answer sentences holding a number, a month or two names."""
    sents = [s for _, s in query.answer_sentences]
    srcs = query.source_sentences
    out = month_swaps(query.a, query.src)
    if query.a.numbers:
        with_numbers = [s for s in sents if s.numbers]
        out += unit_swaps(with_numbers, srcs)
        if query.a.entities:
            out += number_owner(with_numbers, srcs, [first_name(s) for s in with_numbers])
    if len(query.a.entities) >= 2:
        out += comparison_order(sents, srcs)
    return out


def _self_contradictions(query: Query) -> list[str]:
    """Two sentences of the answer about the same thing that differ in a number or a negation."""
    out: list[str] = []
    sents = [s for _, s in query.answer_sentences if len(s.content) >= 3][:_MAX_PAIRWISE]
    if len(sents) < 2:
        return out
    words = [s.content - s.numbers for s in sents]  # (a & b) - a.numbers == words_a & b, computed once
    contents = [s.content for s in sents]
    sizes = list(map(len, words))
    for i, a in enumerate(sents):
        # pairs sharing >= 60% of the shorter one's words (shared / max(1, min(sizes)), all in C)
        shared = map(len, map(words[i].intersection, contents[i + 1 :]))
        smaller = map(max, repeat(1), map(min, repeat(sizes[i]), sizes[i + 1 :]))
        for j in compress(count(i + 1), map(ge, map(truediv, shared, smaller), repeat(0.6))):
            b = sents[j]
            if a.negated != b.negated:
                out.append("the answer both affirms and negates the same statement")
            elif a.numbers and b.numbers and a.numbers.isdisjoint(b.numbers):
                out.append("the answer gives different numbers for the same statement")
    return out


def consistency(query: Query) -> Judged | Abstain | None:
    issues = contradictions(query)
    if not issues and not query.sources and len(query.answer_sentences) < 2:
        return Abstain("no sources and a single sentence: nothing to compare it with")
    score = 1.0 / (1.0 + len(issues))
    scope = "the sources and itself" if query.sources else "itself (no sources)"
    if not issues:
        return score, f"no contradiction with {scope} found (numbers, names, opposites, negation)", ""
    more = f" (+{len(issues) - 2} more)" if len(issues) > 2 else ""
    return score, f"{len(issues)} possible contradiction(s) with {scope}", "; ".join(issues[:2]) + more


_MAX_PAIRWISE = 48  # sentences compared pairwise for self-contradiction (quadratic)
_BACK_REFERENCE = frozenset(str.split("it its they them their this that these those he she his her such so also"))


def _touches(sents: list[tuple[str, Analyzed]], q: frozenset[str]) -> list[bool]:
    """Per answer sentence: does it share a word with the question, or continue (it/they/this ...) one that does?"""
    out: list[bool] = []
    for text, s in sents:
        hit = not s.content.isdisjoint(q)
        if not hit and out and out[-1]:  # the first word matters only after a sentence that touched it
            first = text.split(maxsplit=1)[0].lower().strip("\"'(") if text.strip() else ""
            hit = first in _BACK_REFERENCE
        out.append(hit)
    return out


def relevance(query: Query) -> Judged | None:
    q = query.q.content
    if not q:
        return None
    if form := direct_answer(query):
        return 1.0, f"a direct answer ({form}) to a one-part factoid question", ""
    sents = [s for _, s in query.answer_sentences]
    coverage = len(q & query.a.content) / len(q)
    first = sents[0]
    first_on_topic = len(first.content & q) / len(first.content) if first.content else 0.0
    touches = _touches(query.answer_sentences, q)
    related = sum(touches) / len(touches)
    # a sentence about the speaker ("I once ...", "my teacher ...") tells of them, not of what was asked
    personal = sum(1 for s in sents if s.marks & FIRST_PERSON_MARK) / len(sents)  # has a FIRST_PERSON word
    score = (coverage + first_on_topic + related) / 3 * (1.0 - personal)
    why = (
        f"the answer uses {coverage:.0%} of the question's content words; "
        f"{related:.0%} of its sentences touch the question"
    )
    if personal:
        why += f"; {personal:.0%} of its sentences are about the speaker"
    evidence = ""
    if related < 0.5:
        off = next((t for (t, _), hit in zip(query.answer_sentences, touches, strict=True) if not hit), "")
        evidence = f"off-topic e.g. \"{short(off, 60)}\""
    return clamp(score), why, evidence


_CONJUNCTIONS = frozenset(("and", "or", "also", "but", "plus"))  # those _PART_SPLIT splits at


def question_parts(question: str) -> list[str]:
    """The separately answerable parts of a question: its sentences, and 'and what/how ...' clauses."""
    parts = []
    for sent in sentences(question):
        # _PART_SPLIT needs a conjunction between whitespace, i.e. one whole chunk (in ASCII text, where
        # IGNORECASE means ASCII case only, its lowercase form): far cheaper to rule out than to scan for
        plain = sent.isascii() and _CONJUNCTIONS.isdisjoint(sent.lower().split())
        for p in [sent] if plain else _PART_SPLIT.split(sent):
            if analyze(p).content:
                parts.append(p.strip())
    return parts or [question]


@lru_cache(maxsize=4096)
def _parts(question: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """question_parts with each part's content words (questions recur: memoized like analyze)."""
    return tuple((p, analyze(p).content) for p in question_parts(question))


def completeness(query: Query) -> Judged | None:
    if not query.q.content:
        return None
    if form := direct_answer(query):
        return 1.0, f"a direct answer ({form}) to a one-part factoid question", ""
    answer = query.a.content
    parts = _parts(query.question)
    covered = [len(c & answer) / len(c) for _, c in parts]
    score = sum(covered) / len(covered)
    missed = [f'"{short(p, 60)}"' for (p, _), c in zip(parts, covered, strict=True) if c == 0]
    why = f"{len(parts)} question part(s); on average {score:.0%} of each part's content words are addressed"
    if missed:
        why += f"; {len(missed)} not addressed"
    return clamp(score), why, ("not addressed: " + ", ".join(missed[:3])) if missed else ""


AXES = {"accuracy": accuracy, "consistency": consistency, "relevance": relevance, "completeness": completeness}
_NOT_ENGLISH = {OTHER_LATIN: "a Latin-script language other than English"}  # else: another script


def numbers_only(query: Query) -> Judged | None:
    """Consistency of a text the English rules cannot read: only its numbers against the sources.

    A number means the same in any language and the tokenizer finds digits even inside Chinese or Japanese
    text, so "a number the sources do not contain" still holds. Names (capitalization, sentence starts),
    negations, opposites and the comparison of sentences are English rules: not checked. None (not judged)
    without sources or without a number in the answer: there is nothing to check, and "no contradiction
    found" would be an invented 1.0. The explanation says how many numbers are missing; the evidence names them.
    """
    numbers = query.a.numbers
    if not query.sources or not numbers:
        return None
    missing = sorted(numbers - query.src.numbers)
    kind = _NOT_ENGLISH.get(query.language, "non-Latin script")
    why = f"{len(missing)} of the answer's {len(numbers)} number(s) not in the sources"
    evidence = "; ".join(f"number {n} is not in the sources" for n in missing[:2])
    return (1.0 / (1.0 + len(missing)), f"{why} (the text is not English ({kind}): only numbers are checked)",
            evidence + (f" (+{len(missing) - 2} more)" if len(missing) > 2 else ""))


class LexicalBackend:
    """Scores any axis from word statistics; the fallback for every other backend.

    The rules are English. On other text only what holds in any language is judged (``numbers_only``
    consistency) and the other axes are None (left out), unless ``non_english="approximate"`` lets the English
    rules score other Latin-script languages (never other scripts: the tokenizer does not see their words).
    """

    evaluator = f"lexical/{VERSION}"

    def __init__(self, non_english: str = "not_judged") -> None:
        self.approximate = non_english == "approximate"

    def judges(self, query: Query) -> bool:
        """Do the English rules apply to this query?"""
        lang = query.language
        return lang == ENGLISH or (self.approximate and lang == OTHER_LATIN)

    def score(self, query: Query, axes: Sequence[Axis]) -> dict[Axis, Judgement]:
        if query.language is not ENGLISH and not self.judges(query):
            return {axis: numbers_only(query) if axis == "consistency" else None for axis in axes}
        return {axis: AXES[axis](query) for axis in axes}


__all__ = ["AXES", "PERSONAL", "LexicalBackend", "contradictions", "numbers_only", "question_parts"]
