"""Write-time query labels: category (config rules), topic (keywords), normalized text and size.

Computed only from captured query text; without text every label stays None (never invented).
An app-set ``rag.query.category`` / ``rag.query.topic`` always wins over what we would compute.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_WORD = re.compile(r"[a-z0-9][a-z0-9+#._-]*")
_PUNCT = re.compile(r"[^\w\s]+")
_SPACE = re.compile(r"\s+")
STOPWORDS = frozenset([
    "a", "about", "above", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
    "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do",
    "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having",
    "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just",
    "me", "more", "most", "my", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our",
    "ours", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their",
    "theirs", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until",
    "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will",
    "with", "would", "you", "your", "yours", "please", "tell", "explain", "show", "give", "get", "use", "using",
    "vs", "versus", "difference", "between", "compare", "better", "best", "way", "ways", "there's", "what's",
    "it's", "don't", "doesn't", "i'm", "can't", "need", "want", "know", "thanks", "thank", "hello", "hi", "hey"
])


@dataclass(frozen=True, slots=True)
class QueryLabels:
    category: str | None
    topic: str | None
    normalized: str | None
    words: int | None


class Classifier:
    """Ordered category rules (first match wins, else ``other``) plus keyword topics."""

    def __init__(self, rules: Mapping[str, Sequence[str]]) -> None:
        self._rules = [(name, [re.compile(p, re.IGNORECASE) for p in pats]) for name, pats in rules.items()]

    def category(self, text: str) -> str:
        t = text.strip().lower()
        for name, pats in self._rules:
            if any(p.search(t) for p in pats):
                return name
        return "other"

    def labels(self, text: str | None, category: str | None = None, topic: str | None = None) -> QueryLabels:
        if not text or not text.strip():
            return QueryLabels(category, topic, None, None)
        return QueryLabels(category or self.category(text), topic or extract_topic(text), normalize(text),
                           len(text.split()))


def normalize(text: str) -> str:
    """Lower case, no punctuation, single spaces: equal strings are questions a cache would serve."""
    return _SPACE.sub(" ", _PUNCT.sub(" ", text.lower())).strip()


def extract_topic(text: str, max_words: int = 2) -> str | None:
    """The first ``max_words`` content words (stopwords and numbers dropped), e.g. "reset password"."""
    words = [w.strip("._-") for w in _WORD.findall(text.lower())]
    content = [w for w in words if len(w) >= 3 and w not in STOPWORDS and not w.isdigit()]
    return " ".join(content[:max_words]) or None
