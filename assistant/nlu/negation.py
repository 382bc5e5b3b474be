"""Which slot spans of an utterance are excluded: "anything but country", "play adele but not hello".

A scope opens at a negation cue and closes at a contrast ("but", "instead",
"rather") or a new play verb; every slot span that starts inside a scope is
an exclusion. Cues:

    not, no, never, without, except, excluding, minus, nothing (by/from ...),
    don't / do not / dont (play, want, like ...), hate, can't stand,
    no more, other than, rather than, instead of, apart from,
    anything / everything / all but, skip X

"but" closes a scope ("not adele but taylor swift") unless it is "but not" or
follows anything/everything/all/nothing ("anything but country"). Spans of
music_item, service, sort and playlist are never excluded (nobody asks for
"not songs").
"""

from __future__ import annotations

EXCLUDABLE: frozenset[str] = frozenset({"artist", "track", "album", "genre", "mood", "year"})
_SINGLE_CUES = frozenset({"not", "no", "never", "without", "except", "excluding", "minus", "nothing", "hate",
                          "skip", "dislike", "but"})
_PAIR_CUES = frozenset({("other", "than"), ("rather", "than"), ("instead", "of"), ("apart", "from"),
                        ("no", "more"), ("cant", "stand"), ("can't", "stand"), ("cannot", "stand"),
                        ("do", "not"), ("except", "for")})
_NEGATED_VERBS = frozenset({"don't", "dont", "didn't", "doesn't", "won't", "never"})
_PLAY_VERBS = frozenset({"play", "hear", "queue", "spin", "playing"})
_CLOSERS = frozenset({"instead", "rather", "play", "but"})
_ANY = frozenset({"anything", "everything", "all", "nothing", "something", "any", "music", "songs", "stuff"})


def _cue_at(tokens, i: int) -> int:
    """Length of a negation cue starting at token i (0 if none)."""
    w = tokens[i]
    nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
    if (w, nxt) in _PAIR_CUES:
        return 2
    if w in _NEGATED_VERBS:  # "play don't stop me now" is a title, not a negation
        return 0 if i > 0 and tokens[i - 1] in _PLAY_VERBS else 1
    if w == "but":  # "anything but X", "but not X" (the "not" is its own cue)
        return 1 if i > 0 and tokens[i - 1] in _ANY else 0
    if w == "skip":  # "skip adele": only as the first word of a request
        return 1 if i == 0 else 0
    if w in _SINGLE_CUES:
        return 1
    return 0


def negated_positions(tokens, protected: frozenset[int] = frozenset()) -> list[bool]:
    """Per token: inside a negation scope. Tokens in `protected` (inside a name: "no scrubs",
    "don't stop me now") are never cues."""
    out = [False] * len(tokens)
    inside = False
    i = 0
    while i < len(tokens):
        cue = 0 if i in protected else _cue_at(tokens, i)
        if cue:
            inside = True
            for k in range(i, i + cue):
                out[k] = True
            i += cue
            continue
        w = tokens[i]
        if inside and i not in protected and w in _CLOSERS and not (w == "play" and i > 0 and tokens[i - 1] in _NEGATED_VERBS):
            if w in ("but", "and") and i + 1 < len(tokens) and tokens[i + 1] in ("not", "no", "never", "without"):
                pass  # "but not", "and no": the next cue keeps the scope open
            else:
                inside = False
        out[i] = inside
        i += 1
    return out


def excluded_spans(tokens, spans: list[tuple[str, int, int]]) -> set[int]:
    """Indices into `spans` ((kind, start, end)) of the spans that are excluded."""
    if not spans:
        return set()
    protected = frozenset(k for _, start, end in spans for k in range(start, end))
    negated = negated_positions(tokens, protected)
    return {k for k, (kind, start, _) in enumerate(spans) if kind in EXCLUDABLE and negated[start]}
