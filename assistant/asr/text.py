"""Text normalization and the CTC character vocabulary.

`normalize_text` is the one normalizer for training labels, catalog names and
queries: lowercase, ASCII folding ("Beyoncé" -> "beyonce"), digits to words
("22" -> "twenty two", "2nd" -> "second"), "&" -> "and", "+" -> "plus",
every other punctuation mark dropped (apostrophes inside words are kept),
whitespace collapsed.

`TextTransform` maps normalized text to CTC class ids and back:
blank = 0, `<SPACE>` = 1, a-z = 2..27, apostrophe = 28.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from num2words import num2words
from unidecode import unidecode

from assistant.errors import AssistantError

BLANK_ID = 0
SPACE_TOKEN = "<SPACE>"
VOCABULARY: tuple[str, ...] = ("<blank>", SPACE_TOKEN, *"abcdefghijklmnopqrstuvwxyz", "'")

_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_DECADE = re.compile(r"\b(\d\d)'?s\b|\b(1\d|20)(\d0)s\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_DROP = re.compile(r"[^a-z' ]+")
_EDGE_APOSTROPHES = re.compile(r"(?<![a-z])'|'(?![a-z])")


def _number_words(match: re.Match) -> str:
    text = match.group(0)
    if "." in text:
        whole, frac = text.split(".", 1)
        return f" {num2words(int(whole))} point {' '.join(num2words(int(d)) for d in frac)} "
    value = int(text)
    # Four-digit numbers from 1100 to 2099 are read as years ("nineteen ninety nine").
    if len(text) == 4 and 1100 <= value <= 2099 and value % 1000 >= 10:
        return f" {num2words(value, to='year')} "
    return f" {num2words(value)} "


def _plural(word: str) -> str:
    return word[:-1] + "ies" if word.endswith("y") else word + "s"


def _decade_words(match: re.Match) -> str:
    if match.group(1):  # "80s" / "80's" -> "eighties"
        return f" {_plural(num2words(int(match.group(1))))} "
    century, decade = match.group(2), match.group(3)  # "1990s" -> "nineteen nineties"
    if decade == "00":  # "2000s" -> "two thousands", "1900s" -> "nineteen hundreds"
        return " two thousands " if century == "20" else f" {num2words(int(century))} hundreds "
    return f" {num2words(int(century))} {_plural(num2words(int(decade)))} "


def normalize_text(text: str) -> str:
    """Normalize any text to the recognizer's alphabet (see module docstring)."""
    s = unidecode(str(text)).lower()
    s = s.replace("&", " and ").replace("+", " plus ").replace("%", " percent ").replace("@", " at ")
    s = s.replace("`", "'")
    s = _ORDINAL.sub(lambda m: f" {num2words(int(m.group(1)), to='ordinal')} ", s)
    s = _DECADE.sub(_decade_words, s)
    s = _NUMBER.sub(_number_words, s)
    s = s.replace("-", " ")
    s = _DROP.sub(" ", s)
    s = _EDGE_APOSTROPHES.sub(" ", s)
    return " ".join(s.split())


@dataclass(frozen=True)
class TextTransform:
    """Character <-> CTC class id mapping (blank = 0)."""

    vocabulary: tuple[str, ...] = VOCABULARY
    char_map: dict[str, int] = field(init=False, repr=False, compare=False)
    index_map: dict[int, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "char_map", {tok: i for i, tok in enumerate(self.vocabulary)})
        object.__setattr__(self, "index_map", dict(enumerate(self.vocabulary)))

    @property
    def num_classes(self) -> int:
        return len(self.vocabulary)

    def text_to_int(self, text: str) -> list[int]:
        """Normalized text -> class ids. Characters outside the alphabet are an error."""
        ids = []
        for ch in text:
            key = SPACE_TOKEN if ch == " " else ch
            idx = self.char_map.get(key)
            if idx is None or idx == BLANK_ID:
                raise AssistantError(
                    f"label {text!r} has the character {ch!r}, expected only a-z, apostrophe and space "
                    "(pass it through normalize_text first)")
            ids.append(idx)
        return ids

    def int_to_text(self, ids) -> str:
        """Class ids -> text (blanks skipped; no CTC collapsing here)."""
        out = []
        for i in ids:
            i = int(i)
            if i == BLANK_ID:
                continue
            tok = self.index_map[i]
            out.append(" " if tok == SPACE_TOKEN else tok)
        return "".join(out)
