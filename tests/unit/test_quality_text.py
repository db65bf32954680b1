"""The fast lexical analysis gives exactly what the straightforward per-token version gives.

The reference below is the original implementation (one regex pass per text, every token judged where it
stands); the fast one works on memoized chunks and distinct tokens. Any difference changes quality scores.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag_otel.quality import text as T
from rag_otel.quality.base import short
from rag_otel.quality.text import (
    _MONTHS,
    _NUMBER_WORDS,
    _ORDINAL_LIKE,
    _SENTENCE,
    _TOKEN,
    NEGATIONS,
    STOPWORDS,
    Analyzed,
    analyze,
    merge,
    normalize_number,
    sentences,
    stem,
    tokenize,
)


def _starts_sentence(text: str, pos: int) -> bool:
    i = pos - 1
    while i >= 0 and text[i] in " \t\"'(“‘":
        i -= 1
    return i < 0 or text[i] in ".!?:\n"


def reference_analyze(text: str) -> tuple[tuple[str, ...], frozenset[str], frozenset[str], frozenset[str], bool]:
    matches = list(_TOKEN.finditer(text))
    tokens = tuple(m.group().lower() for m in matches)
    seq: list[str] = []
    numbers: set[str] = set()
    entities: set[str] = set()
    negated = False
    for m, t in zip(matches, tokens, strict=True):
        r = m.group()
        if t in NEGATIONS or t.endswith("n't"):
            negated = True
        if r[0].isdigit():
            n = normalize_number(r)
            numbers.add(n)
            seq.append(n)
        elif t in _NUMBER_WORDS and t not in _ORDINAL_LIKE:
            numbers.add(_NUMBER_WORDS[t])
            seq.append(_NUMBER_WORDS[t])
        elif "." in t or (len(r) > 1 and r.isupper()):
            s = t.replace(".", "")
            seq.append(s)
            entities.add(s)
        elif t not in STOPWORDS and t not in NEGATIONS and len(t) > 1:
            s = stem(t)
            seq.append(s)
            if r[0].isupper() and t not in _MONTHS and not _starts_sentence(text, m.start()):
                entities.add(s)
    return tokens, frozenset(seq), frozenset(numbers), frozenset(entities), negated


def reference_sentences(text: str) -> list[str]:
    out: list[str] = []
    carry = ""
    for part in _SENTENCE.split(text):
        part = (carry + " " + part).strip() if carry else part.strip()
        if len(_TOKEN.findall(part)) < 2:
            carry = part
            continue
        carry = ""
        out.append(part)
    if carry and any(c.isalnum() for c in carry):
        out.append(carry)
    return out


def fields(a: Analyzed) -> tuple[tuple[str, ...], frozenset[str], frozenset[str], frozenset[str], bool]:
    return a.tokens, a.content, a.numbers, a.entities, a.negated


def reference_marks(tokens: tuple[str, ...]) -> int:
    """The marks by their definition: which lexical axes' word lists the tokens hit."""
    return ((T.PERSONAL_MARK if not T.PERSONAL.isdisjoint(tokens) else 0)
            | (T.FIRST_PERSON_MARK if not T.FIRST_PERSON.isdisjoint(tokens) else 0)
            | (T.OPPOSED_MARK if any(t not in STOPWORDS and T.opposites(t) for t in tokens) else 0))


def check(text: str) -> None:
    assert tokenize(text) == _TOKEN.findall(text)
    ref = reference_analyze(text)
    assert analyze.__wrapped__(text).token_set() == set(ref[0])  # from chunks, before the tuple exists
    assert analyze.__wrapped__(text).marks == reference_marks(ref[0])  # from chunks, before the tuple exists
    assert fields(analyze.__wrapped__(text)) == ref
    assert T._split(text) == _SENTENCE.split(text)
    assert sentences(text) == reference_sentences(text)


EXAMPLES = [
    "", " ", "\n", ".", "U.S.", "x.Y.", "X.y.z. Foo", "The U.S. Army, e.g. in 1945, had 1,000 men. They won.",
    "Mr. Smith met Dr. Jones. Smith left.", "Paris. Paris", "Paris. Paris.", "\"Paris\" is big. (Paris) too",
    "“Paris” and ‘Rome’: Rome.", "It costs 3.50% or $1,000.00 or 12:30 or 1/2 or 10,000,000.",
    "See [1] and [faq#3] and 【5†source】.", "I don't know. You can't. She doesn’t care.",
    "- first\n- Second Bullet\n• Third Item\n1. One\n2. Two", "Line one\r\nLine Two\rLine three",
    "NASA and the FBI met. USA! OK?", "Café Müller, Zürich, İstanbul, ＡＢＣ, K (kelvin), ١٢٣ digits.",
    "January 5. May I? In May, June Smith left.", "Hello.World.Again. abc.Def ghi!Jkl 3.Four end.",
    "U.S.Army and U.S.A.Navy and A.B.Cd and a.b.c.D e.g.Foo", "Not. No. Never. Cannot.", "2. 3. 4.", "Mr. Dr.",
    "What is it? And what is more? Or how does it work, and why?", "Foo:Bar, Baz:\tQux, \"(Quux", "x" * 200,
    "Tom. Tom Tom. tom", "One Two. Three four! Five? six\n\nSeven", "A.B. Able. Able", "Smith’s car. Smith's",
    "I think my answer is great, you know. I'm sure it's unlikely to rise.", "Prices rose; costs fell (disagree).",
]


@pytest.mark.parametrize("text", EXAMPLES)
def test_fast_analysis_equals_the_per_token_reference(text: str) -> None:
    check(text)


WORDS = ["Paris", "paris", "France", "the", "The", "not", "don't", "Don’t", "I", "US", "U.S.", "e.g.", "May", "my",
         "You", "great", "I'm", "rise", "Unlikely", "disagree", "higher", "more", "(unhappy,",
         "three", "first", "1,000", "3.50%", "12:30", "Mr.", "A.B.", "x.Y.", "[1]", "“Hi”", "(Rome", "jumps",
         "nationalization", "unhappy", "NASA", "İ", "ß", "١٢", "—", "-", "•", "1.", "a", "Z"]
SEPARATORS = [" ", "  ", ". ", "? ", "! ", ": ", "\n", "\n\n", "\t", "\r\n", ", ", ".", "", " \"", " (", "’ ", "…"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=40))
def test_random_word_texts_equal_the_reference(pieces: list[tuple[str, str]]) -> None:
    check("".join(w + s for w, s in pieces))


ALPHABET = "aAbBeEiImMnNsStTxXyYzZ019.,:;/%!?'’\"“‘()[]-•…#† \t\n\r\u00a0éÉİßK١"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=120))
def test_random_character_texts_equal_the_reference(text: str) -> None:
    check(text)


def test_memos_starting_over_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunk/token memos are bounded: when they fill up and start over, results stay the same."""
    monkeypatch.setattr(T, "MEMO_LIMIT", 3)
    for memo in (T._CHUNKS, T._FACTS, T._PLAIN, T._MARKED):
        memo.clear()  # so that analyses below meet new chunks and the memos start over mid-analysis
    for text in EXAMPLES * 2:
        assert fields(analyze.__wrapped__(text)) == reference_analyze(text)
        assert analyze.__wrapped__(text).marks == reference_marks(reference_analyze(text)[0])
        assert sentences(text) == reference_sentences(text)


def test_threads_sharing_the_memos_get_the_reference_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """The processor scores from worker threads: memos starting over under another thread change nothing."""
    monkeypatch.setattr(T, "MEMO_LIMIT", 5)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        texts = [f"{t} Name{i} {i}" for i in range(40) for t in EXAMPLES]
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda t: fields(analyze.__wrapped__(t)), texts))
    finally:
        sys.setswitchinterval(old)
    assert got == [reference_analyze(t) for t in texts]


def test_merge_concatenates_tokens_and_unites_the_rest() -> None:
    parts = [analyze.__wrapped__(s) for s in ("Paris is not big.", "The U.S. has 3 cities.", "Rome, Italy")]
    merged = merge(parts)
    assert merge(parts).token_set() == {t for p in parts for t in p.tokens}  # before tokens are built
    assert merged.tokens == tuple(t for p in parts for t in p.tokens)
    assert merged.token_set() == set(merged.tokens)
    assert merged.content == frozenset().union(*(p.content for p in parts))
    assert merged.entities == frozenset({"us", stem("Italy")})  # "Paris" and "Rome" start their sentence
    assert merged.numbers == frozenset({"3"}) and merged.negated
    assert merged.marks == T.OPPOSED_MARK == reference_marks(merged.tokens)  # "big" (small)
    assert merged == merge([analyze.__wrapped__(s) for s in ("Paris is not big.", "The U.S. has 3 cities.",
                                                              "Rome, Italy")])


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ab \t\n\u00a0\x1f.é", max_size=400), st.sampled_from([1, 2, 5, 60, 80]))
def test_short_equals_joining_all_words_then_cutting(text: str, n: int) -> None:
    """short() joins only a prefix when that is already too long: the same excerpt as joining every word."""
    whole = " ".join(text.split())
    assert short(text, n) == (whole if len(whole) <= n else whole[: n - 1] + "…")
