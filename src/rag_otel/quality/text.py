"""Tiny, dependency-free text analysis for the lexical scorer.

Stopwords and regexes are built once at import, and each whitespace-separated chunk and each token is
judged once and remembered (bounded memos), so analyzing a text is mostly splitting it on whitespace and
a few set operations in C. The results are exactly those of the plain per-token rules, which
tests/unit/test_quality_text.py keeps as the reference. Whether a text holds a word the axes look for one by
one (personal, first-person, with an opposite) is also read off its distinct chunks, so most answers are never
walked token by token.
"""

from __future__ import annotations

import operator
import re
import string
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from itertools import chain, compress, repeat
from typing import Any, Generic, NamedTuple, TypeVar


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Function words carry no claim: they are ignored when judging support or coverage.
STOPWORDS: frozenset[str] = _words(
    """
    a about above after again against all almost also although always am an and another any anyone anything
    are around as at be became because become been before being below between both but by can could did do
    does doing done down during each either else enough etc even ever every few for from further get gets
    getting go goes going got had has have having he her here hers herself him himself his how however i if in
    into is it its itself just least less let like lot lots made make makes many may me might mine more most
    much must my myself near need needs new now of off often on once one only onto or other others otherwise
    our ours ourselves out over own per perhaps please quite rather really said same say says see seem seems
    shall she should since so some something sometimes still such sure than that the their theirs them
    themselves then there these they thing things this those though through thus to too toward towards under
    until up upon us use used uses using usually very via was way ways we well were what whatever when where
    whether which while who whom whose why will with within without would yes yet you your yours yourself
    yourselves s t d ll re ve m im ive id dont doesnt didnt isnt arent wasnt werent cant wont think know
    oh yeah ok okay hi hello um uh actually probably maybe definitely
    """
)

# Words that flip a claim's truth; compared as a set between answer and sources.
NEGATIONS: frozenset[str] = _words(
    "not no never none nothing nobody neither nor cannot without n't dont doesnt didnt isnt arent wasnt "
    "werent cant wont couldnt shouldnt wouldnt hasnt havent hadnt"
)

_TOKEN = re.compile(r"(?:[A-Za-z]\.){2,}|\d+(?:[.,:/]\d+)*%?|[A-Za-z]+(?:['’][A-Za-z]+)*")
# Citation markers RAG answers carry ("[1]", "[2, 3]", "[faq#3]", "[doc-7]", "[^4]", "【5†source】") point
# at sources; they are not claims, so their numbers and ids must not count as unsupported or contradicting.
_CITATION = re.compile(r"\s?(?:\[\^?[\w.:#/†-]{1,40}(?:\s*[,;]\s*\^?[\w.:#/†-]{1,40})*\]|【[^】]{1,60}】)")


def strip_citations(text: str) -> str:
    """The answer without its citation markers (the sources they name are judged, not the markers)."""
    return _CITATION.sub("", text) if ("[" in text or "【" in text) else text


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\n+|(?<=[a-z0-9][.!?])(?=[A-Z][a-z])")
_MONTHS = _words(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec"
)
_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "twenty": "20", "thirty": "30",
    "forty": "40", "fifty": "50", "hundred": "100", "thousand": "1000", "million": "1000000",
    "billion": "1000000000", "first": "1", "second": "2", "third": "3", "half": "0.5", "dozen": "12",
}
_ORDINAL_LIKE = frozenset(("first", "second", "half", "one"))
_SUFFIXES = ("ational", "ization", "fulness", "ousness", "iveness", "ements", "ement", "ments", "ment",
             "ations", "ation", "ingly", "ities", "ness", "ings", "ing", "edly", "ies", "ied", "ed",
             "ly", "es", "s")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Light suffix stripping then truncation: 'jumping'/'jumps' -> 'jump', cheap and good enough to match."""
    w = word.lower().replace("’", "'")
    if "'" in w:
        w = w.split("'", 1)[0]
    if w.isdigit() or len(w) <= 3:
        return w
    for suf in _SUFFIXES:
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            w = w[: -len(suf)]
            if suf in ("ies", "ied"):
                w += "y"
            break
    if len(w) > 4 and w[-1] == "e":
        w = w[:-1]
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
        w = w[:-1]  # stopp -> stop, cutt -> cut
    return w[:7]


def normalize_number(tok: str) -> str:
    """'1,000' and '1000' and 'thousand' compare equal; '3.50' and '3.5' too."""
    t = tok.replace(",", "").rstrip("%")
    try:
        f = float(t)
    except ValueError:
        return _NUMBER_WORDS.get(tok.lower(), tok.lower())
    return str(int(f)) if f.is_integer() else repr(f)


class Analyzed:
    """One text, tokenized once: what every axis needs to compare it with another text.

    Read-only once built. ``tokens`` is materialized on first use: most source sentences are only
    compared by their content, never token by token.
    """

    __slots__ = ("_from", "_get", "_marks", "_tokens", "content", "entities", "negated", "numbers")

    def __init__(self, tokens: tuple[str, ...] | None, content: frozenset[str], numbers: frozenset[str],
                 entities: frozenset[str], negated: bool, _from: list[str] | list[Analyzed] | None = None) -> None:
        self._tokens = tokens  # None: built from ``_from`` (the text's chunks, or the merged parts) on use
        self._from = _from
        self.content = content  # stems of content words
        self.numbers = numbers  # normalized numbers (digits, number words, years)
        self.entities = entities  # stems of capitalized words not at a sentence start
        self.negated = negated  # contains a negation word
        self._marks: int | None = None
        self._get: Callable[[dict[str, Any]], tuple[Any, ...]] | None = None  # analyze's lookup of its distinct chunks

    @property
    def tokens(self) -> tuple[str, ...]:
        """Lowercased surface tokens, in order."""
        tokens = self._tokens
        if tokens is None:  # ``_from`` is kept: another thread may be building the same tuple from it
            src = self._from or ()
            if src and isinstance(src[0], Analyzed):
                tokens = tuple(chain.from_iterable(p.tokens for p in src))  # type: ignore[union-attr]
            else:
                try:  # _CHUNKS.each inlined
                    chunks = list(map(_CHUNKS.entries.__getitem__, src))  # type: ignore[arg-type]
                except KeyError:
                    chunks = list(map(_CHUNKS, src))  # type: ignore[arg-type]
                tokens = tuple(chain.from_iterable(map(_LOWERS, chunks)))
            self._tokens = tokens
        return tokens

    @property
    def marks(self) -> int:
        """PERSONAL_MARK | FIRST_PERSON_MARK | OPPOSED_MARK of its tokens, from its distinct chunks (memoized):
        answers are checked for such words, and most have none, so their tokens are never walked."""
        marks = self._marks
        if marks is None:
            src = self._from or ()
            if not src:
                found = set(map(_token_marks, set(self._tokens or ())))
            elif isinstance(src[0], Analyzed):
                found = {p.marks for p in src}  # type: ignore[union-attr]
            elif self._get is not None:
                try:
                    found = set(self._get(_MARKED.entries))
                except KeyError:  # a chunk not seen yet (or the memo started over)
                    found = set(map(_MARKED, src))  # type: ignore[arg-type]
            else:
                found = set(_MARKED.each(set(src)))  # type: ignore[arg-type]
            marks = 0
            for m in found:
                marks |= m
            self._marks = marks
        return marks

    def token_set(self) -> set[str]:
        """The distinct tokens, without building the token tuple (a merged text of many sentences)."""
        if (tokens := self._tokens) is not None:
            return set(tokens)
        src = self._from or ()
        if src and isinstance(src[0], Analyzed):
            return set().union(*(p.token_set() for p in src))  # type: ignore[union-attr]
        return set(chain.from_iterable(map(_LOWERS, _CHUNKS.each(set(src)))))  # type: ignore[arg-type]

    def _key(self) -> tuple[object, ...]:
        return (self.tokens, self.content, self.numbers, self.entities, self.negated)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Analyzed) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"Analyzed(tokens={self.tokens!r}, content={self.content!r}, numbers={self.numbers!r}, "
                f"entities={self.entities!r}, negated={self.negated!r})")


# A token never spans whitespace, so a text's tokens are those of its whitespace-separated chunks in order;
# a chunk ("France," "1889." "don't") recurs across texts, so each is tokenized once and remembered.
# A capitalized word is a name unless every occurrence starts a sentence: only spaces/quotes between it
# and a sentence end (.!?:newline) or the text start. _START_AFTER matches at each sentence end with a
# lookahead (so an acronym's final "." still ends a sentence) and finds every such token, plus a few
# spurious ones inside acronyms and numbers ("S" in "U.S.A.", "5" in "1.5") that can never be a name
# (tests/unit/test_quality_text.py checks this against the per-token rule).
_START_AFTER = re.compile(r"[.!?:\n](?=[ \t\"'(“‘]*(" + _TOKEN.pattern + "))")
_START_FIRST = re.compile(r"[ \t\"'(“‘]*(" + _TOKEN.pattern + ")")


class _Chunk(NamedTuple):
    raws: tuple[str, ...]
    lowers: tuple[str, ...]


# Marks: what the axes look for token by token (first-person and chit-chat words, words with an opposite). A text
# with none of them, the common case, is never walked token by token.
PERSONAL_MARK, FIRST_PERSON_MARK, OPPOSED_MARK = 1, 2, 4
# Conversational and first-person words: claims about the speaker that no source can support.
PERSONAL: frozenset[str] = frozenset(
    str.split(
        "i me my mine myself i'm im i've ive i'd i'll you your yours yourself you're youre yes yeah yep oh wow "
        "love loved like liked think guess hope sure favorite favourite fun cool awesome great interesting agree "
        "well"
    )
)
# The speaker talking about themself: such a sentence is an anecdote or an opinion, not an answer.
FIRST_PERSON: frozenset[str] = frozenset(str.split("i me my mine myself i'm im i've ive i'd i'll"))


class _Facts(NamedTuple):
    """What one surface token contributes to an analysis, wherever it stands."""

    seq: str | None  # its content value (number, acronym or stem), None for a function word
    number: str | None
    entity: str | None  # an acronym: a name wherever it stands
    name: str | None  # a capitalized word: a name unless every occurrence starts a sentence
    negation: bool
    raw: str


def _token_marks(t: str) -> int:
    """The marks of a lowercase token."""
    return ((PERSONAL_MARK if t in PERSONAL else 0) | (FIRST_PERSON_MARK if t in FIRST_PERSON else 0)
            | (OPPOSED_MARK if t not in STOPWORDS and opposites(t) else 0))


def _facts(raw: str) -> _Facts:
    t = raw.lower()
    neg = t in NEGATIONS or t.endswith("n't")
    if raw[0].isdigit():
        n = normalize_number(raw)
        return _Facts(n, n, None, None, neg, raw)
    if t in _NUMBER_WORDS and t not in _ORDINAL_LIKE:
        n = _NUMBER_WORDS[t]
        return _Facts(n, n, None, None, neg, raw)
    if "." in t or (len(raw) > 1 and raw.isupper()):  # acronym: U.S. = US, a name even where "us" is not
        s = t.replace(".", "")
        return _Facts(s, None, s, None, neg, raw)
    if t not in STOPWORDS and t not in NEGATIONS and len(t) > 1:
        s = stem(t)
        return _Facts(s, None, None, s if raw[0].isupper() and t not in _MONTHS else None, neg, raw)
    return _Facts(None, None, None, None, neg, raw)


# Entries per memo (chunks, token facts, plain words, marks, opposites): about 1 KB a word across them, so ~20 MB at
# most; vocabulary is unbounded, so a full memo starts over (a miss only costs the work once more).
MEMO_LIMIT = 20_000


V = TypeVar("V")


class _Memo(Generic[V]):
    """A bounded memo of a pure function of a chunk or token. The hot paths look its ``entries`` up in C
    (``operator.itemgetter(*keys)(memo.entries)``, ``map(memo.entries.__getitem__, keys)``), which raises KeyError
    on a key not seen yet; ``memo(key)`` and ``memo.each(keys)`` fill it in. (A dict subclass with ``__missing__``
    did that itself, but CPython sends every ``[]`` on a dict subclass through a Python-level slot: ~2.5x the
    lookup, ~6% of scoring a short query.) The values are pure functions of the keys, so threads and a memo
    starting over mid-analysis cannot make two analyses disagree."""

    __slots__ = ("entries", "make")

    def __init__(self, make: Callable[[str], V]) -> None:
        self.entries: dict[str, V] = {}
        self.make = make

    def __call__(self, key: str) -> V:
        try:
            return self.entries[key]
        except KeyError:
            entries = self.entries
            if len(entries) >= MEMO_LIMIT:
                entries.clear()
            value = entries[key] = self.make(key)
            return value

    def each(self, keys: Iterable[str]) -> list[V]:
        """The value of each key, in order (``keys`` is read twice when one is new: not an iterator). The hot paths
        inline this: a Python-level call costs more than the C lookups it makes."""
        try:
            return list(map(self.entries.__getitem__, keys))
        except KeyError:  # a key not seen yet (or the memo started over)
            return list(map(self, keys))

    def clear(self) -> None:
        self.entries.clear()


def _chunk(chunk: str) -> _Chunk:
    """Whitespace-separated chunk -> its tokens."""
    raws = tuple(_TOKEN.findall(chunk))
    return _Chunk(raws, tuple(r.lower() for r in raws))


_SPECIAL = "\x00special"  # marks a chunk that needs its tokens' facts (no token contains a NUL)


def _plain(chunk: str) -> str | None:
    """Chunk -> its content value (or None) when it is at most one plain token: not a number, acronym,
    capitalized word or negation; any other chunk -> _SPECIAL."""
    raws = _CHUNKS(chunk).raws
    if len(raws) == 1 and not (f := _FACTS(raws[0])).negation and f.number is f.entity is f.name is None:
        return f.seq
    return _SPECIAL if raws else None


def _chunk_marks(chunk: str) -> int:
    """Chunk -> the marks of its tokens."""
    marks = 0
    for t in _CHUNKS(chunk).lowers:
        marks |= _token_marks(t)
    return marks


_CHUNKS = _Memo(_chunk)
_FACTS = _Memo(_facts)  # surface token -> its facts
_PLAIN = _Memo(_plain)
_MARKED = _Memo(_chunk_marks)
_RAWS = operator.itemgetter(0)
_LOWERS = operator.itemgetter(1)
_CONTENT = operator.attrgetter("content")
_NEGATED = operator.attrgetter("negated")
_EMPTY: frozenset[str] = frozenset()
_NONE = frozenset((None,))
_NOT_CONTENT = frozenset((None, _SPECIAL))


def tokenize(text: str) -> list[str]:
    """The surface tokens of ``text`` in order (what _TOKEN.findall gives)."""
    return list(chain.from_iterable(map(_RAWS, _CHUNKS.each(text.split()))))


@lru_cache(maxsize=4096)
def analyze(text: str) -> Analyzed:
    """Tokenize, drop function words, stem; keep numbers, entities and negation apart.

    Works on chunks (memoized across texts); most chunks are one plain word whose content value is all
    they add, and only the distinct special chunks are looked at token by token. Only the name rule
    depends on position: it is settled by counting sentence-start occurrences.
    """
    words = text.split()
    # one C call for all chunks, repeats included (cheaper than making them distinct first); one chunk gives no tuple
    get = operator.itemgetter(*words) if len(words) > 1 else None
    try:
        values = get(_PLAIN.entries) if get is not None else tuple(map(_PLAIN.entries.__getitem__, words))
    except KeyError:  # a chunk not seen yet (or the memo started over)
        values = tuple(map(_PLAIN, words))
    content = frozenset(values)
    numbers, entities, negated = _EMPTY, _EMPTY, False
    if _SPECIAL in content:
        special = dict.fromkeys(compress(words, map(operator.is_, values, repeat(_SPECIAL))))  # distinct, in order
        try:  # _CHUNKS.each and _FACTS.each inlined
            facts = list(map(_FACTS.entries.__getitem__,
                             chain.from_iterable(map(_RAWS, map(_CHUNKS.entries.__getitem__, special)))))
        except KeyError:  # a chunk or token not seen yet (or a memo started over)
            facts = list(map(_FACTS, chain.from_iterable(map(_RAWS, map(_CHUNKS, special)))))
        seq, nums, ents, names, negations, _ = zip(*facts, strict=True)
        content = content.union(seq) - _NOT_CONTENT
        numbers, negated = frozenset(nums) - _NONE, True in negations
        entities = set(ents)
        if any(names):
            _add_names(text, facts, entities)
        entities = frozenset(entities) - _NONE
    elif None in content:
        content -= _NONE
    out = Analyzed(None, content, numbers, entities, negated, words)  # type: ignore[arg-type]
    out._get = get  # kept for marks and token_set: the same chunks, looked up in other memos
    return out


def _add_names(text: str, facts: Sequence[_Facts], entities: set[str | None]) -> None:
    """Capitalized words that occur at least once other than at a sentence start are names."""
    first = m.group(1) if (m := _START_FIRST.match(text)) else None
    starts: list[str] | None = None
    raws = None
    for f in facts:
        if f.name is None or f.name in entities:
            continue
        seen = text.count(f.raw)  # >= its occurrences as a token
        if seen == 1 and f.raw == first:  # only the text's first word: starts a sentence
            continue
        if starts is None:
            starts = _START_AFTER.findall(text) + ([first] if first else [])
        if f.raw in starts:
            at_start = starts.count(f.raw)
            if seen <= at_start:  # not even as a substring elsewhere: every occurrence starts a sentence
                continue
            raws = raws or tokenize(text)
            if raws.count(f.raw) <= at_start:
                continue
        entities.add(f.name)


def merge(parts: list[Analyzed]) -> Analyzed:
    """The analysis of a text from those of its sentences (no second pass over the text)."""
    if len(parts) == 1:
        return parts[0]
    numbers = [p.numbers for p in parts if p.numbers]
    entities = [p.entities for p in parts if p.entities]
    return Analyzed(
        None,
        frozenset().union(*map(_CONTENT, parts)),
        frozenset().union(*numbers) if numbers else _EMPTY,
        frozenset().union(*entities) if entities else _EMPTY,
        any(map(_NEGATED, parts)),
        list(parts),
    )


_TERMINATOR = re.compile(r"[.!?\n]")  # _SENTENCE only matches right after one of .!? or at a newline


def _split(text: str) -> list[str]:
    """``_SENTENCE.split(text)``, trying _SENTENCE only next to a terminator (far cheaper than at every
    character); a text whose only terminators end it, the common case, is one sentence."""
    core = text.rstrip().rstrip(".!?")
    if "\n" not in text and "." not in core and "!" not in core and "?" not in core:
        return [text]
    out: list[str] = []
    start = end = 0
    for m in _TERMINATOR.finditer(text):
        p = m.start() if m.group() == "\n" else m.end()
        if p >= end and (sep := _SENTENCE.match(text, p)):
            out.append(text[start : sep.start()])
            start = end = sep.end()
    out.append(text[start:])
    return out


def _two_tokens(text: str) -> bool:
    """Has ``text`` at least two tokens? (Usually settled by its first two chunks.)"""
    head = text.split(None, 2)
    known = _CHUNKS.entries.get  # a memo hit without a Python-level call (a _Chunk, even of no token, is truthy)
    if len(head) > 1 and (len((known(head[0]) or _CHUNKS(head[0])).raws)
                          + len((known(head[1]) or _CHUNKS(head[1])).raws)) >= 2:
        return True
    n = 0
    for w in text.split():
        n += len(_CHUNKS(w).raws)
        if n >= 2:
            return True
    return False


def sentences(text: str) -> list[str]:
    """Split into sentences (claims); a bulleted or numbered list splits on its lines."""
    parts = _split(text)
    if len(parts) == 1:  # the common case: kept if it has a token (a token has an alphanumeric character)
        part = parts[0].strip()
        return [part] if any(map(str.isalnum, part)) else []
    out: list[str] = []
    carry = ""
    for part in parts:
        part = (carry + " " + part).strip() if carry else part.strip()
        if not _two_tokens(part):  # "2." or "Mr." alone: glue to what follows
            carry = part
            continue
        carry = ""
        out.append(part)
    if carry and any(c.isalnum() for c in carry):
        out.append(carry)
    return out


# Common English opposites: an answer using one where the source uses the other contradicts it.
# A short, general list (no data-specific words); prefixes un-/in-/dis-/non- are handled in code.
_OPPOSITE_PAIRS = """
increase decrease  increase reduce  increase cut  rise fall  rise drop  raise lower  grow shrink  gain lose
gain loss  win lose  more less  more fewer  most least  high low  higher lower  highest lowest  up down
big small  large small  larger smaller  long short  longer shorter  early late  earlier later  before after
first last  new old  newer older  young old  fast slow  faster slower  easy difficult  easy hard  simple complex
cheap expensive  hot cold  warm cool  wet dry  light dark  light heavy  strong weak  rich poor  good bad
better worse  best worst  positive negative  success failure  succeed fail  accept reject  approve reject
allow forbid  allow ban  allow prohibit  open close  open closed  start end  start stop  begin end  begin finish
buy sell  import export  include exclude  add remove  add subtract  agree disagree  true false  correct wrong
right wrong  safe dangerous  legal illegal  public private  internal external  inside outside  above below
over under  north south  east west  left right  male female  man woman  men women  boy girl  father mother
husband wife  brother sister  son daughter  king queen  internal external  maximum minimum  max min
majority minority  always never  all none  everyone nobody  everything nothing  possible impossible
present absent  alive dead  born died  birth death  war peace  friend enemy  love hate  like dislike
happy sad  full empty  rich poor  profit loss  strengthen weaken  expand contract  attack defend
victory defeat  arrive depart  enter exit  push pull  send receive  give take  lend borrow  teach learn
ancient modern  past future  previous next  domestic foreign  urban rural  soft hard  wide narrow
thick thin  deep shallow  near far  rarely often  rare common  temporary permanent  voluntary mandatory
optional required  optional mandatory  free paid  winner loser  senior junior  upper lower  input output
inbound outbound  online offline  enable disable  enabled disabled  available unavailable  visible invisible
"""


def _opposites() -> dict[str, frozenset[str]]:
    words = _OPPOSITE_PAIRS.split()
    out: dict[str, set[str]] = {}
    for a, b in zip(words[::2], words[1::2], strict=True):
        out.setdefault(stem(a), set()).add(stem(b))
        out.setdefault(stem(b), set()).add(stem(a))
    return {k: frozenset(v) for k, v in out.items()}


OPPOSITES: dict[str, frozenset[str]] = _opposites()
_NEG_PREFIXES = ("un", "dis", "non", "il", "ir")


def opposites(word: str) -> frozenset[str]:
    """Stems meaning the opposite of ``word`` (a lowercase surface word): listed, or by a negating prefix."""
    s = stem(word)
    out = set(OPPOSITES.get(s, ()))
    for p in _NEG_PREFIXES:
        if word.startswith(p) and len(word) - len(p) >= 4:
            out.add(stem(word[len(p):]))
    return frozenset(out)


# --- Is the text English enough for the rules above? ---------------------------------------------------------------
# The rules (stopwords, stems, negations, opposites, sentence starts, the ASCII tokenizer) are English. On other
# languages they invent numbers, so the scorer first asks which of three kinds the question and answer are.
ENGLISH, OTHER_LATIN, OTHER_SCRIPT = "english", "other_latin", "other_script"
Language = str  # one of the three above

# Non-Latin letters are counted on the UTF-8 bytes, by the lead byte of each character: two C passes
# (bytes.translate) instead of a Python loop per character. Lead bytes (never continuation bytes, 0x80-0xBF):
_WIDE = bytes(range(0xE3, 0xEE))  # U+3000-U+DFFF: CJK punctuation, kana, ideographs, Hangul (about a word each)
_ALPHABETIC = bytes(range(0xCE, 0xE0)) + b"\xe0\xe1"  # Greek to Arabic, Indic, Thai, Georgian, Vietnamese ...
_LATIN = bytes(range(0xC3, 0xCA))  # U+00C0-U+027F: accented Latin letters
_ALL = bytes(range(256))
_KEEP_NON_LATIN = _ALL.translate(None, _WIDE + _ALPHABETIC)  # delete all but non-Latin lead bytes
_KEEP_LETTERS = _ALL.translate(None, (string.ascii_letters).encode() + _LATIN)  # delete all but Latin letters
_WIDE_WEIGHT = 3  # an ideograph or a Hangul block carries about as much as an English word of 3-5 letters
_LOOK_AT = 4000  # characters of each text the script and function-word counts read: bounded cost, enough evidence

# Function words of other Latin-script languages (Spanish, Portuguese, French, German, Italian, Dutch), ASCII
# (the tokenizer splits a word at an accented letter), none an English word or common in English names, code
# and commands ("con", "sin", "van", "met", "von", "non", "du", "et" are left out), nor stemming like a common
# English word ("los" like "loss", "pas" like "pass", "comme" like "coming", "wir" like "wire").
FOREIGN_FUNCTION_WORDS: frozenset[str] = _words(
    """
    de el la las que para una uno es esta este estos estas como pero muy sus sobre entre cuando donde puede
    tiene fue todo desde hasta porque cual usted puedes debe estar se
    uma mais pelo pela isso seu sua minha meu pode ela ou da das em tem
    le les des est une dans qui sur avec ce cette sont vous nous il elle ne aux mais leur ces peut votre aussi
    das und ist nicht mit sich auf ein eine einen einem dem zu auch werden wird sind oder wenn kann nur bei aus
    nach wie noch sie ich ihr durch haben dass diese dieser ihre zum zur sein
    di che sono della delle dei degli gli questo questa anche essere alla nel nella si suo
    het een en ik mijn niet zijn voor ook wordt naar bij uit worden deze wat je
    """
)
# English function words that are not also common words of those languages ("in", "an", "was", "will", "also",
# "as", "do", "on", "so", "no", "me" are left out).
ENGLISH_FUNCTION_WORDS: frozenset[str] = _words(
    """
    the of and to is are be been being it its this that these those with for from by at not or if what how which
    who why when where you your they their them we our my he she his her there have has had does did can could
    would should than then into about but all any some more most other such very just only after before because
    while
    """
)
_FOREIGN_STEMS = frozenset(map(stem, FOREIGN_FUNCTION_WORDS))  # as they show in Analyzed.content
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
_EDGES = " \t\"'“”‘’«»¿¡()[],.;:!?"  # what may stand around a word in running text


def _non_latin_share(texts: tuple[str, ...]) -> float:
    """Share of the letters that are not Latin (ideographs weighted as words), from the UTF-8 lead bytes of
    each text's first ``_LOOK_AT`` characters. Latin letters are counted only when a non-Latin one was seen
    (English with typographic quotes or dashes stops after one pass)."""
    encoded = [t[:_LOOK_AT].encode("utf-8", "surrogatepass") for t in texts]
    wide = other = 0
    for b in encoded:
        if kept := b.translate(None, _KEEP_NON_LATIN):
            n_wide = len(kept) - len(kept.translate(None, _WIDE))
            wide += n_wide
            other += len(kept) - n_wide
    if not (wide or other):
        return 0.0
    weighted = _WIDE_WEIGHT * wide + other
    latin = sum(len(b.translate(None, _KEEP_LETTERS)) for b in encoded)
    return weighted / (weighted + latin)


def _function_word_counts(texts: tuple[str, ...]) -> tuple[int, int]:
    """Distinct (foreign, English) function words of running text. Only chunks that are one word with at most
    punctuation around it count (not code, URLs, paths, options, identifiers); a capitalized foreign word only
    before a lowercase one ("Es gratis", not the names "Los Angeles", "De Beers", "Der Spiegel")."""
    foreign: set[str] = set()
    english: set[str] = set()
    for t in texts:
        chunks = _CODE.sub(" ", t[:_LOOK_AT]).split()
        for i, chunk in enumerate(chunks):
            words = _CHUNKS(chunk).raws
            if len(words) != 1 or words[0] != chunk.strip(_EDGES):
                continue
            word = words[0]
            low = word.lower()
            if low in ENGLISH_FUNCTION_WORDS:
                english.add(low)
            elif low in FOREIGN_FUNCTION_WORDS and (
                word == low or (i + 1 < len(chunks) and chunks[i + 1][:1].islower())
            ):
                foreign.add(low)
    return len(foreign), len(english)


def language(question: str, answer: str, q: Analyzed, a: Analyzed) -> Language:
    """ENGLISH, OTHER_LATIN or OTHER_SCRIPT for a question and its answer (their analyses, already made).

    Non-Latin scripts by the share of their letters (at least half: a foreign name in an English answer is
    not enough); Latin-script text by its function words: at least two distinct foreign ones in running text
    (not names, code or URLs), and more of them than English ones. English is the answer whenever the
    evidence is thin ("Yes.", "42", a command, a table of numbers). Most English costs two ``isascii`` and two
    set intersections with content words the axes need anyway (under a µs). No language-identification
    library is used: they answer "which of 100 languages", cost 8 µs (pycld2, median) to several hundred
    (py3langid, lingua) per query, and call some short English foreign, where this must say English
    (bench/bench_language.py measures them side by side; results in bench/README.md).
    """
    if not (question.isascii() and answer.isascii()) and _non_latin_share((question, answer)) >= 0.5:
        return OTHER_SCRIPT
    # a foreign function word in running text always leaves its stem in the content: fewer than two, English
    if q.content.isdisjoint(_FOREIGN_STEMS) and a.content.isdisjoint(_FOREIGN_STEMS):
        return ENGLISH  # the common case: no set is built
    if len(q.content & _FOREIGN_STEMS) + len(a.content & _FOREIGN_STEMS) < 2:
        return ENGLISH
    foreign, english = _function_word_counts((question, answer))
    return OTHER_LATIN if foreign >= 2 and foreign > english else ENGLISH
