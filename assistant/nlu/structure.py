"""Slot spans corrected from their context, before names are resolved.

- Names written whole ("R.E.M.", "Run-D.M.C.", "Jay-Z", "M.I.A."): the text
  arrives normalized ("r e m", "run d m c"), so `whole_names(raw)` finds
  them in the raw text and `keep_whole` makes each one span, of a name kind,
  whatever the tagger cut ("run" is not a mood in "Run-D.M.C."). A run of
  single letters ("r e m") is one name too.
- "the record thriller", "the album thriller by michael jackson": the words
  after album/record/lp are an album.
- A possessive is not part of a name ("adele's last album" -> "adele").

Spans are (kind, start, end) over the normalized tokens.
"""

from __future__ import annotations

import re

from assistant.asr.text import normalize_text

NAME_KINDS = ("artist", "track", "album")
ALBUM_WORDS = frozenset({"album", "record", "lp", "ep"})
ALBUM_STOPS = frozenset({"by", "from", "on", "please", "now", "and", "for"})
ALBUM_ARTICLES = frozenset({"the", "an", "a", "this", "that"})
# Words that start a clause, not a name ("the album that came out", "by cat stevens and i'll be happy").
CLAUSE_WORDS = frozenset({"that", "which", "who", "is", "are", "was", "were", "be", "i", "i've", "i'll", "i'd", "i'm",
                          "you", "we", "it", "this", "these", "those", "when", "where", "what", "how", "came",
                          "will", "would", "can", "could", "should", "have", "has", "had", "do", "does", "did"})
MAX_ALBUM_WORDS = 6
# A word written with inner dots or hyphens between letters: "R.E.M.", "Run-D.M.C.", "Jay-Z".
_JOINED_WORD = re.compile(r"[A-Za-z0-9]+(?:[.\-][A-Za-z0-9]+)+\.?")


def whole_names(raw: str) -> list[list[str]]:
    """Normalized tokens of each dotted or hyphenated word of the raw text ("Run-D.M.C." -> run d m c)."""
    out = []
    for m in _JOINED_WORD.finditer(raw[:2000]):
        tokens = normalize_text(m.group(0)).split()
        if len(tokens) >= 2:
            out.append(tokens)
    return out


def letter_runs(tokens: list[str]) -> list[tuple[int, int]]:
    """Runs of three or more single letters ("r e m", "b t s"): initials said or written one by one."""
    runs, start = [], None
    for i in range(len(tokens) + 1):
        single = i < len(tokens) and len(tokens[i]) == 1 and tokens[i].isalpha()
        if single and start is None:
            start = i
        elif not single and start is not None:
            if i - start >= 3:
                runs.append((start, i))
            start = None
    return runs


def keep_whole(spans: list[tuple[str, int, int]], tokens: list[str], wholes: list[list[str]],
               default_kind: str = "artist") -> list[tuple[str, int, int]]:
    """Spans with every whole name one span of a name kind (the kind of a name span it overlaps, else
    `default_kind`); spans it cuts into are absorbed."""
    raw_ranges = set()
    for whole in wholes:
        n = len(whole)
        for a in range(len(tokens) - n + 1):
            if tokens[a:a + n] == whole:
                raw_ranges.add((a, a + n))
                break
    ranges = [*letter_runs(tokens), *raw_ranges]
    out = list(spans)
    for a, b in sorted(set(ranges)):
        touching = [s for s in out if s[1] < b and s[2] > a]
        if (a, b) not in raw_ranges and any(s[0] not in NAME_KINDS and s[1] <= a and s[2] >= b for s in touching):
            continue  # spelled letters inside a genre ("r n b"), not a name
        if len(touching) == 1 and touching[0][0] in NAME_KINDS and touching[0][1] <= a and touching[0][2] >= b:
            continue  # already inside one name ("losing my religion by r e m" as one artist span)
        kind = next((s[0] for s in touching if s[0] in NAME_KINDS), default_kind)
        start = min([a, *(s[1] for s in touching if s[0] in NAME_KINDS)])
        end = max([b, *(s[2] for s in touching if s[0] in NAME_KINDS)])
        out = [s for s in out if not (s[1] < end and s[2] > start)]
        out.append((kind, start, end))
    return sorted(out, key=lambda s: s[1])


def album_after_cue(spans: list[tuple[str, int, int]], tokens: list[str]) -> list[tuple[str, int, int]]:
    """ "the record thriller": untagged words after album/record/lp (up to "by", "on"...) are the album;
    a track or playlist span right after such a word is the album."""
    out = list(spans)
    taken = {i for _, a, b in spans for i in range(a, b)}
    for i, w in enumerate(tokens):
        if w not in ALBUM_WORDS or i == 0 or tokens[i - 1] not in ALBUM_ARTICLES:
            continue  # "the record thriller", not "record the opinion ..." or "what album is this"
        j = i + 1
        while j < len(tokens) and tokens[j] in ("called", "named", "titled"):
            j += 1
        after = next((s for s in out if s[1] == j), None)
        if after is not None and after[0] in ("track", "playlist"):
            out = [s for s in out if s is not after] + [("album", after[1], after[2])]
            continue
        if j < len(tokens) and tokens[j] in CLAUSE_WORDS:
            continue  # "the album i've heard the least": a clause about the album, not its name
        end = j
        while end < len(tokens) and end not in taken and tokens[end] not in ALBUM_STOPS and end - j < MAX_ALBUM_WORDS:
            end += 1
        if end > j and "album" not in {s[0] for s in out}:
            out.append(("album", j, end))
            taken.update(range(j, end))
    return sorted(out, key=lambda s: s[1])


def without_possessive(text: str) -> str:
    """A name without a trailing possessive ("adele's" -> "adele"); other text unchanged."""
    return text[:-2] if text.endswith("'s") and len(text) > 3 else text
