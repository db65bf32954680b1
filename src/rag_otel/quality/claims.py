"""Contradictions a reader recognises beyond a missing number or name: a unit, a month, or a number tied to a
different name than the sources tie it to, and a comparison turned around.

Each check is a rule in ``RULES`` (bench/quality_ood.py switches them off one at a time and reports each on the
datasets it was not designed on). All of them look at tokens only when the answer holds what they need (a number,
a month, a comparison word), so the common answer costs a few set operations.
"""

from __future__ import annotations

from collections.abc import Sequence

from rag_otel.quality.text import Analyzed, normalize_number, stem

# Units by quantity; an answer's "5 km" against the sources' "5 miles" is the same number, another quantity.
_UNIT_GROUPS = {
    "length": "mm millimetre millimeter millimetres millimeters cm centimetre centimeter centimetres centimeters "
              "m metre meter metres meters km kilometre kilometer kilometres kilometers mi mile miles ft foot feet "
              "in inch inches yd yard yards",
    "mass": "mg milligram milligrams g gram grams kg kilogram kilograms lb lbs pound pounds oz ounce ounces "
            "t ton tons tonne tonnes",
    "time": "ms millisecond milliseconds s sec secs second seconds min mins minute minutes h hr hrs hour hours "
            "day days week weeks month months year years decade decades century centuries",
    "data": "b byte bytes kb kib kilobyte kilobytes mb mib megabyte megabytes gb gib gigabyte gigabytes "
            "tb tib terabyte terabytes",
    "money": "usd dollar dollars eur euro euros gbp yen cent cents",
    "temperature": "c celsius f fahrenheit k kelvin",
    "share": "percent percentage points",
}
_ALIASES = {"metres": "m", "meters": "m", "metre": "m", "meter": "m", "kilometre": "km", "kilometer": "km",
            "kilometres": "km", "kilometers": "km", "millimetre": "mm", "millimeter": "mm", "millimetres": "mm",
            "millimeters": "mm", "centimetre": "cm", "centimeter": "cm", "centimetres": "cm", "centimeters": "cm",
            "mi": "mile", "miles": "mile", "foot": "ft", "feet": "ft", "inch": "in", "inches": "in", "yd": "yard",
            "yards": "yard", "milligram": "mg", "milligrams": "mg", "gram": "g", "grams": "g", "kilogram": "kg",
            "kilograms": "kg", "lbs": "lb", "pound": "lb", "pounds": "lb", "ounce": "oz", "ounces": "oz",
            "tons": "ton", "tonne": "t", "tonnes": "t", "millisecond": "ms", "milliseconds": "ms", "sec": "s",
            "secs": "s", "second": "s", "seconds": "s", "mins": "min", "minute": "min", "minutes": "min",
            "hr": "h", "hrs": "h", "hour": "h", "hours": "h", "days": "day", "weeks": "week", "months": "month",
            "years": "year", "decades": "decade", "centuries": "century", "byte": "b", "bytes": "b",
            "kib": "kb", "kilobyte": "kb", "kilobytes": "kb", "mib": "mb", "megabyte": "mb", "megabytes": "mb",
            "gib": "gb", "gigabyte": "gb", "gigabytes": "gb", "tib": "tb", "terabyte": "tb", "terabytes": "tb",
            "dollar": "usd", "dollars": "usd", "euro": "eur", "euros": "eur", "cents": "cent", "celsius": "c",
            "fahrenheit": "f", "kelvin": "k", "percentage": "percent"}
UNITS: dict[str, tuple[str, str]] = {
    w: (group, _ALIASES.get(w, w)) for group, words in _UNIT_GROUPS.items() for w in words.split()
}
# One-letter units read as units only right after a number ("5 m", not "m" alone); ambiguous words ("in", "s",
# "t", "c", "f", "k", "min", "points") only where the sources use a unit of the same quantity after that number.

MONTHS: dict[str, str] = {stem(m): m for m in str.split(
    "january february march april june july august september october november december")}
# "may" is left out: it is a verb more often than a month

# Comparison words whose subject order matters: "A is larger than B" says the opposite of "B is larger than A".
# Surface words, not stems: "more" and "before" are stopwords, never content.
COMPARATIVES = frozenset(str.split(
    "larger smaller bigger higher lower taller shorter longer older younger earlier later faster slower heavier "
    "lighter cheaper greater fewer more less before after first"))

RULES: set[str] = {"units", "months", "number_owner", "comparison_order", "direct_answer"}
"""The rules in force (direct_answer is direct.py's); bench/quality_ood.py turns them off one at a time to measure
what each adds where it was not designed."""


def _numbered_units(tokens: Sequence[str]) -> dict[str, set[tuple[str, str]]]:
    """Number -> the (quantity, unit) pairs it is written with ("5 km", "5 kilometres", "5-km")."""
    out: dict[str, set[tuple[str, str]]] = {}
    for i, t in enumerate(tokens[:-1]):
        if t[:1].isdigit() and (u := UNITS.get(tokens[i + 1])):
            out.setdefault(normalize_number(t), set()).add(u)
    return out


def unit_swaps(answer: list[Analyzed], sources: list[Analyzed]) -> list[str]:
    """A number the answer writes with one unit where every source sentence with that number uses another unit
    of the same quantity: "5 km" for the sources' "5 miles", "20 minutes" for "20 hours"."""
    if "units" not in RULES:
        return []
    issues: list[str] = []
    for s in answer:
        if not s.numbers:
            continue
        mine = _numbered_units(s.tokens)
        for n, units in mine.items():
            theirs: set[tuple[str, str]] = set()
            for src in sources:
                if n in src.numbers:
                    theirs |= _numbered_units(src.tokens).get(n, set())
            for group, unit in units:
                same_kind = {u for g, u in theirs if g == group}
                if same_kind and unit not in same_kind:
                    issues.append(f"{n} {unit} where the sources say {n} {sorted(same_kind)[0]}")
    return issues


def month_swaps(answer: Analyzed, sources: Analyzed) -> list[str]:
    """A month the sources never name, where they name other months: a changed date."""
    if "months" not in RULES:
        return []
    mine = answer.content.intersection(MONTHS)
    if not mine or not (theirs := sources.content.intersection(MONTHS)):
        return []
    return [f"month {MONTHS[m]} is not in the sources (they name {MONTHS[sorted(theirs)[0]]})"
            for m in sorted(mine - theirs)]


def number_owner(answer: list[Analyzed], sources: list[Analyzed], first_name: list[str | None]) -> list[str]:
    """A year the sources give for someone else: "First for Women was started in 1844" where the sources say
    "Arthur's Magazine (1844-1846) was ...". The answer sentence's first name (its subject, usually) occurs in
    the sources, and every source sentence with the number opens with another content word (its own subject)
    and lacks the name. A source sentence opening with a pronoun or an article ("It was completed in 1889")
    could be about anyone, so it never counts against the answer."""
    if "number_owner" not in RULES:
        return []
    issues: list[str] = []
    for s, name in zip(answer, first_name, strict=True):
        if not s.numbers or name is None or not any(name in src.content for src in sources):
            continue  # a name the sources lack is reported as such already
        for n in sorted(s.numbers):
            if not _is_year(n):
                continue
            with_n = [src for src in sources if n in src.numbers]
            if with_n and all(name not in src.content and _opens_with_other(src, name) for src in with_n):
                issues.append(f"number {n} belongs to another name in the sources, not '{name}'")
    return issues


def _opens_with_other(src: Analyzed, name: str) -> bool:
    """Does the sentence open with a content word (its subject, not a pronoun or article) other than ``name``?"""
    tokens = src.tokens
    if not tokens or tokens[0][:1].isdigit():
        return False
    first = stem(tokens[0])
    return first in src.content and first != name


def _is_year(n: str) -> bool:
    """Years are what a source ties to one name ("founded in 1844", "born 1965"); other numbers (prices, counts,
    shares) recur across the names of a text: tied to all of them, the rule fired on correct sales e-mails."""
    return len(n) == 4 and n.isdigit() and 1000 <= int(n) <= 2100


def first_name(s: Analyzed) -> str | None:
    """The stem of the first name (entity) in the sentence, in reading order: usually its subject."""
    if not s.entities:
        return None
    for t in s.tokens:
        st = t.replace(".", "") if "." in t else stem(t)
        if st in s.entities:
            return st
    return None


def comparison_order(answer: list[Analyzed], sources: list[Analyzed]) -> list[str]:
    """"A is larger than B" where a source sentence says "B is larger than A": the same comparison word with the
    two names in the other order."""
    if "comparison_order" not in RULES:
        return []
    issues: list[str] = []
    for s in answer:
        if len(s.entities) < 2 or COMPARATIVES.isdisjoint(s.tokens):
            continue
        mine = _ordered(s)
        if not mine:
            continue
        for src in sources:
            if len(src.entities) < 2 or COMPARATIVES.isdisjoint(src.tokens):
                continue
            theirs = _ordered(src)
            for word, a, b in mine:
                if (word, b, a) in theirs and (word, a, b) not in theirs:
                    issues.append(f"'{a}' and '{b}' in the other order around '{word}' than in the sources")
    return issues


def _ordered(s: Analyzed) -> set[tuple[str, str, str]]:
    """(comparison word, name before it, name after it) of a sentence, nearest names first."""
    tokens = s.tokens
    seq = [t.replace(".", "") if "." in t else stem(t) for t in tokens]
    out: set[tuple[str, str, str]] = set()
    for i, w in enumerate(tokens):
        if w not in COMPARATIVES:
            continue
        before = next((x for x in reversed(seq[:i]) if x in s.entities), None)
        after = next((x for x in seq[i + 1:] if x in s.entities), None)
        if before and after and before != after:
            out.add((w, before, after))
    return out
