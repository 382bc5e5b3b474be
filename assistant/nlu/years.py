"""Spoken years and decades -> year ranges ("eighties" -> 1980..1989).

Text arrives normalized, so numbers are words: "nineteen ninety nine",
"two thousand and five", "twenty ten", "the nineteen eighties", "eighties".
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


def find_years(text: str) -> list[re.Match]:
    """Every spoken year or decade in normalized text that converts to a range."""
    return [m for m in _YEAR_RE.finditer(text) if year_range(m.group(0))]
