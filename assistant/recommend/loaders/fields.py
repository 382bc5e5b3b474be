"""Parsing of single catalog fields, shared by the CSV, JSONL and folder loaders.

Each parser returns the value or raises `ValueError` with a short reason; the
loaders turn that into a repaired-field entry of their report.
"""

from __future__ import annotations

import ast
import re

from assistant.recommend.song import TEMPO_MAX_BPM

YEAR_MIN = 1900
YEAR_MAX = 2100
POPULARITY_MAX = 100.0
_YEAR_IN_TEXT = re.compile(r"\b(1[89]\d\d|20\d\d)\b")
_GENRE_SPLIT = re.compile(r"\s*[,;]\s*")


def parse_year(value: object) -> int | None:
    """A year from 1900 to 2100; also the year of a date ("2019-05-01")."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        year = int(value)
    else:
        match = _YEAR_IN_TEXT.search(str(value))
        if not match:
            raise ValueError(f"year {str(value)[:20]!r} is not a year")
        year = int(match.group(1))
    if not YEAR_MIN <= year <= YEAR_MAX:
        raise ValueError(f"year {year} is outside {YEAR_MIN}..{YEAR_MAX}")
    return year


def parse_number(value: object, name: str, low: float, high: float) -> float | None:
    """A float within [low, high]; "" and None are unknown."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} {str(value)[:20]!r} is not a number") from None
    if not low <= number <= high or number != number:
        raise ValueError(f"{name} {number} is outside {low:g}..{high:g}")
    return number


def parse_unit(value: object, name: str) -> float | None:
    return parse_number(value, name, 0.0, 1.0)


def parse_tempo(value: object) -> float | None:
    number = parse_number(value, "tempo", 0.0, TEMPO_MAX_BPM * 2)
    return None if number == 0 else number  # Spotify writes 0 for "unknown"


def parse_popularity(value: object) -> float | None:
    return parse_number(value, "popularity", 0.0, POPULARITY_MAX)


def parse_genres(value: object) -> tuple[str, ...]:
    """Genres from "Pop, Country", "['dance pop', 'pop']" or a list -> lowercase tuple."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise ValueError(f"genres {text[:30]!r} is not a list") from None
        elif text in ("set()", "[]"):
            return ()
        else:
            value = _GENRE_SPLIT.split(text)
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"genres {str(value)[:30]!r} is not a list of names")
    genres = (" ".join(str(g).split()).lower() for g in value)
    return tuple(dict.fromkeys(g for g in genres if g and g not in ("set()", "nan")))
