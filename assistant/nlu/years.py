"""Spoken years and decades -> year ranges ("eighties" -> 1980..1989) and slot values.

Text arrives normalized, so numbers are words: "nineteen ninety nine",
"two thousand and five", "twenty ten", "the nineteen eighties", "eighties".
`year_slot` turns a heard year into the value of the `year` slot: a number
for one year (1996), {"from": 1950, "to": 1959} for a decade or a range
("from two thousand and four to two thousand and eight"); a decade without
its century ("the twenties") is the one the catalog has songs in. A year
outside MIN_YEAR..MAX_YEAR ("eighteen hundred", "three thousand", "zero")
is no value at all.
"""

from __future__ import annotations

import re

from assistant.nlu.lexicon import DECADES

_ONES = {"zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
         "eight": 8, "nine": 9}
_TEENS = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
          "seventeen": 17, "eighteen": 18, "nineteen": 19}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}
_ONES_RE = "|".join(_ONES)
_TEENS_RE = "|".join(_TEENS)
_TENS_RE = "|".join(_TENS)
_TWO_DIGITS = rf"(?:(?:{_TENS_RE})(?: (?:{_ONES_RE}))?|{_TEENS_RE}|oh (?:{_ONES_RE}))"
_DECADE_WORDS = "|".join(sorted((re.escape(d) for d in DECADES), key=len, reverse=True))
# A spoken year or decade, longest forms first.
YEAR_PATTERN = (
    rf"(?:(?:nineteen|eighteen|twenty) (?:{_DECADE_WORDS})"
    rf"|(?:nineteen|eighteen) (?:hundred(?: and)? )?{_TWO_DIGITS}"
    rf"|two thousand(?: and)?(?: {_TWO_DIGITS}| (?:{_ONES_RE}))?"
    rf"|twenty {_TWO_DIGITS}"
    rf"|{_DECADE_WORDS})"
)
_YEAR_RE = re.compile(rf"\b{YEAR_PATTERN}\b")
MIN_YEAR = 1900
MAX_YEAR = 2030


def _two_digits(words: list[str]) -> int | None:
    if not words:
        return None
    if words[0] == "oh" and len(words) == 2 and words[1] in _ONES:
        return _ONES[words[1]]
    if len(words) == 1 and words[0] in _TEENS:
        return _TEENS[words[0]]
    if words[0] in _TENS:
        if len(words) == 1:
            return _TENS[words[0]]
        if len(words) == 2 and words[1] in _ONES:
            return _TENS[words[0]] + _ONES[words[1]]
    if len(words) == 1 and words[0] in _ONES:
        return _ONES[words[0]]
    return None


def year_range(span: str) -> tuple[int, int] | None:
    """(first, last) year a spoken year or decade covers; None if it is neither."""
    words = [w for w in span.split() if w not in ("the", "year", "and", "hundred", "in", "from")]
    if not words:
        return None
    text = " ".join(words)
    for decade, start in DECADES.items():
        if text == decade:
            return start, start + 9
        if text.endswith(" " + decade) and words[0] in ("nineteen", "eighteen", "twenty"):
            century = {"nineteen": 1900, "eighteen": 1800, "twenty": 2000}[words[0]]
            return century + start % 100, century + start % 100 + 9
    if words[:2] == ["two", "thousand"]:
        rest = _two_digits(words[2:]) if len(words) > 2 else 0
        return (2000 + rest, 2000 + rest) if rest is not None else None
    if words[0] in ("nineteen", "eighteen", "twenty") and len(words) > 1:
        rest = _two_digits(words[1:])
        if rest is None:
            return None
        year = {"nineteen": 1900, "eighteen": 1800, "twenty": 2000}[words[0]] + rest
        return (year, year) if MIN_YEAR <= year <= MAX_YEAR else None
    return None


# Words that join two years into a range ("from 2004 to 2008", "between 1990 and 1995").
_RANGE_JOINERS = frozenset({"to", "and", "through", "thru", "till", "until", "til"})
_CENTURYLESS = frozenset({"twenties", "thirties", "forties", "fourties", "fifties", "sixties", "seventies",
                          "eighties", "nineties"})
_YEAR_MARKS = frozenset({"year", "years", "hundred", "thousand", "zero"})
_NUMBER_WORDS = frozenset({*_ONES, *_TEENS, *_TENS, "hundred", "thousand", "year", "years", "and", "the",
                           "from", "in", "of", "since"})  # "from the year three thousand"


def decade_start(word: str, catalog_years: tuple[int, int] | None = None) -> int:
    """First year of a decade said without its century: the one of 1900s/2000s the catalog has songs
    in ("twenties" with a 2000-2024 catalog -> 2020), else the lexicon's (1920)."""
    start = DECADES[word]
    if catalog_years is None or word not in _CENTURYLESS:
        return start
    lo, hi = catalog_years
    fits = [c for c in (start % 100 + 1900, start % 100 + 2000) if c <= MAX_YEAR and c <= hi and c + 9 >= lo]
    return fits[-1] if len(fits) == 1 else start


def year_slot(span: str, catalog_years: tuple[int, int] | None = None) -> int | dict | None:
    """The `year` slot's value for a heard span: 1996, {"from": 1990, "to": 1999}, or None."""
    found = find_years(span)
    if not found:
        return None
    bounds = [_bounds(m.group(0), catalog_years) for m in found]
    if len(found) >= 2:
        between = span[found[0].end():found[1].start()].split()
        if between and all(w in _RANGE_JOINERS for w in between):
            first, last = min(bounds[0][0], bounds[1][0]), max(bounds[0][1], bounds[1][1])
            return {"from": first, "to": last}
    first, last = bounds[0]
    return first if first == last else {"from": first, "to": last}


def _bounds(text: str, catalog_years: tuple[int, int] | None) -> tuple[int, int]:
    words = [w for w in text.split() if w != "the"]
    if len(words) == 1 and words[0] in _CENTURYLESS:
        start = decade_start(words[0], catalog_years)
        return start, start + 9
    return year_range(text)


def year_bounds(value) -> tuple[int, int] | None:
    """(first, last) of a `year` slot value: a number, {"from", "to"}, or spoken words; None if none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return (value, value) if MIN_YEAR <= value <= MAX_YEAR else None
    if isinstance(value, dict):
        first, last = value.get("from"), value.get("to")
        if isinstance(first, int) and isinstance(last, int) and MIN_YEAR <= first <= last <= MAX_YEAR:
            return first, last
        return None
    if isinstance(value, str) and value:
        return year_range(value)
    return None


def is_number_phrase(text: str) -> bool:
    """Only number words with a year's mark ("year zero", "eighteen hundred", "three thousand"): a year
    (maybe an impossible one), not a name; "the one" or "seventeen" may be titles."""
    words = text.split()
    return bool(words) and all(w in _NUMBER_WORDS for w in words) and bool(_YEAR_MARKS & set(words))


def find_years(text: str) -> list[re.Match]:
    """Every spoken year or decade in normalized text that converts to a range."""
    return [m for m in _YEAR_RE.finditer(text) if year_range(m.group(0))]
