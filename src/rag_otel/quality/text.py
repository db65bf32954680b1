"""Tiny, dependency-free text analysis for the lexical scorer.

Everything here is precomputed once at import (stopwords, regexes) so scoring a typical query stays
well under a millisecond: we tokenize each text once and compare sets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


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


@dataclass(slots=True, frozen=True)
class Analyzed:
    """One text, tokenized once: what every axis needs to compare it with another text."""

    tokens: tuple[str, ...]  # lowercased surface tokens
    content: frozenset[str]  # stems of content words
    numbers: frozenset[str]  # normalized numbers (digits, number words, years)
    entities: frozenset[str]  # stems of capitalized words not at a sentence start
    negated: bool  # contains a negation word


def _starts_sentence(text: str, pos: int) -> bool:
    """True when only spaces/quotes separate ``pos`` from a sentence end or the text start."""
    i = pos - 1
    while i >= 0 and text[i] in " \t\"'(“‘":
        i -= 1
    return i < 0 or text[i] in ".!?:\n"


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text)


@lru_cache(maxsize=4096)
def analyze(text: str) -> Analyzed:
    """Tokenize, drop function words, stem; keep numbers, entities and negation apart."""
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
        elif "." in t or (len(r) > 1 and r.isupper()):  # acronym: U.S. = US, a name even where "us" is not
            s = t.replace(".", "")
            seq.append(s)
            entities.add(s)
        elif t not in STOPWORDS and t not in NEGATIONS and len(t) > 1:
            s = stem(t)
            seq.append(s)
            if r[0].isupper() and t not in _MONTHS and not _starts_sentence(text, m.start()):
                entities.add(s)
    content = frozenset(seq)
    return Analyzed(
        tokens=tokens,
        content=content,
        numbers=frozenset(numbers),
        entities=frozenset(entities),
        negated=negated,
    )


def merge(parts: list[Analyzed]) -> Analyzed:
    """The analysis of a text from those of its sentences (no second pass over the text)."""
    if len(parts) == 1:
        return parts[0]
    return Analyzed(
        tokens=tuple(t for p in parts for t in p.tokens),
        content=frozenset().union(*(p.content for p in parts)),
        numbers=frozenset().union(*(p.numbers for p in parts)),
        entities=frozenset().union(*(p.entities for p in parts)),
        negated=any(p.negated for p in parts),
    )


def sentences(text: str) -> list[str]:
    """Split into sentences (claims); a bulleted or numbered list splits on its lines."""
    out: list[str] = []
    carry = ""
    for part in _SENTENCE.split(text):
        part = (carry + " " + part).strip() if carry else part.strip()
        if len(_TOKEN.findall(part)) < 2:  # "2." or "Mr." alone: glue to what follows
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
