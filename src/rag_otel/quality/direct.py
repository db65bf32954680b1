"""Is the answer a concise, direct answer to a factoid question? ("Arthur's Magazine", "Delhi", "1844", "Yes")

Word overlap reads such an answer as incomplete and off-topic: it repeats none of the question's words. A reader
sees the opposite: it answers exactly what was asked. So completeness and relevance credit a short answer that
gives what the question's form asks for: yes or no to a yes/no question, one of the options of an "A or B"
question, a number or a date to "when" and "how many", and for the other wh-questions something the question
does not already say. Whether it is *right* is for accuracy and consistency to judge.
"""

from __future__ import annotations

import re

from rag_otel.quality.base import Query
from rag_otel.quality.claims import MONTHS, RULES
from rag_otel.quality.text import FIRST_PERSON_MARK

MAX_WORDS = 12  # a direct answer is a phrase or one short sentence, not an explanation
_POLAR = frozenset(str.split("is are was were am do does did can could has have had will would should shall may "
                             "might must isn't aren't wasn't weren't don't doesn't didn't can't couldn't won't"))
_WH = re.compile(r"\b(who|whom|whose|what|which|when|where|why|how)\b", re.IGNORECASE)
_NUMERIC = re.compile(r"\b(when|what year|which year|what date|how (?:many|much|long|old|far|big|tall|high|often))\b",
                      re.IGNORECASE)
_TITLE = re.compile(r"^[\"'“]?[A-Z][\w'’-]*(?:\s+[\"'“]?[A-Z][\w'’-]*)*[\"'”]?\.?$")  # "My Own Worst Enemy": a title
_YES_NO = frozenset(("yes", "no", "yeah", "nope", "correct", "true", "false"))
_TIME_WORDS = frozenset(("century", "centuri", "decad", "year", "ago", "today", "yesterday", "tomorrow"))


def direct_answer(query: Query) -> str | None:
    """The question form a short answer satisfies ("yes/no", "choice", "number", "wh"), or None."""
    if "direct" in query.memo:
        return query.memo["direct"]
    form = query.memo["direct"] = _form(query)
    return form


def _form(query: Query) -> str | None:
    if "direct_answer" not in RULES:
        return None
    answer = query.answer.strip()
    if len(answer) > 20 * MAX_WORDS:  # cheap first: most answers are far longer
        return None
    q = query.question.strip()
    if not q or len(answer.split()) > MAX_WORDS:
        return None
    if len(query.q.content) == 0 or "?" in q.rstrip("?\"'”’) "):  # one question, not several
        return None
    a = query.a
    if a.marks & FIRST_PERSON_MARK and not _TITLE.match(answer):  # "I don't know", "I think so": the speaker
        return None
    first = q.split(maxsplit=1)[0].lower()
    words = answer.lower().strip(" .!").split()
    # "A or B?", "Between A and B, who ...?": naming one of the candidates the question names is an answer
    # (a strict part of what the question names: "The Eiffel Tower" to "What is the Eiffel Tower?" is not one)
    choice = " or " in q.lower() or len(query.q.entities) >= 2
    if choice and a.content and a.content < query.q.content and not query.q.entities <= a.content:
        return "choice"
    if first in _POLAR and not _WH.search(q.split(",")[0]):
        return "yes/no" if words and words[0].strip(",.!") in _YES_NO else None
    if not a.content or (a.negated and len(a.content) < 2):  # "No idea", "None"
        return None
    if _NUMERIC.search(q):
        has_date = a.numbers or not a.content.isdisjoint(MONTHS) or not a.content.isdisjoint(_TIME_WORDS)
        return "number" if has_date else None
    if _WH.search(q) and not a.content <= query.q.content:
        return "wh"
    return None
