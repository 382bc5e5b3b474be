"""Near-miss requests: catalog names in an utterance whose verb was misheard.

A recognizer turns "play adele hello" into "lay adele hello", "please play
X" into "a play X", or the user says "i wanted to listen to coldplay"; the
classifier then reads no request, or tags the names wrongly. `find_request`
reads such an utterance as a list of catalog names plus words that carry
no content of their own (function words, a misheard "play", "listen"):

    find_request(["lay", "adele", "hello"], gazetteer)
    # -> [NameSpan("artist", 1, 2, Adele), NameSpan("track", 2, 3, Hello)]

It answers only when every word is either part of a name that matches
the catalog closely (exactly, spaces aside, or at LENIENT_FUZZY_MIN) or a
filler, and there is a cue that music was asked for: a near-miss of "play"
or of "put on" ("but on back to the moon"), a listening word, "TITLE by
ARTIST" (also "TITLE my ARTIST", a misheard "by"), a title by the artist
named, an artist's name alone after a function word ("some coldplay"), or
a name of two or more words that is the whole utterance ("ava max").
"hello how are you", "what time is it" or "set a timer for ten minutes"
have words that are neither, so they never become requests, even though
"Hello" and "Time" are song titles.

One shape may keep words the catalog does not know: "<a few words> by
<exact catalog artist>" ("can you plant it out by travis scott") is that
artist, the words before "by" kept as the title heard (`NameSpan.match` is
None), for the ranker to look for among the artist's songs.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.nlu import lexicon as L
from assistant.nlu.gazetteer import Gazetteer
from assistant.nlu.intent import EntityMatch

MAX_WORDS = 12  # a longer utterance is not a near-miss command
MAX_NAME_WORDS = 6  # spans looked up as one name
MAX_FUZZY_RUNS = 2  # more runs of unknown words than this: not a near-miss command, no fuzzy search
LENIENT_FUZZY_MIN = 0.9  # a run of content words names a catalog entry this closely without an exact match
NAME_KINDS = ("artist", "track", "album")
# Words that may stand around names in a near-miss request and say nothing themselves.
FILLERS = frozenset({
    "a", "an", "the", "to", "i", "i'd", "i'm", "im", "me", "us", "we", "you", "can", "could", "would", "will",
    "please", "want", "wanted", "wanna", "like", "love", "listen", "listening", "hear", "hearing", "put", "on",
    "some", "something", "song", "songs", "music", "track", "tune", "by", "of", "from", "now", "just", "so",
    "oh", "uh", "um", "ah", "eh", "and", "okay", "ok", "hey", "let", "let's", "lets", "go", "start", "again",
    "play", "plays", "played", "playing", "for", "do", "be", "to", "yeah", "thanks",
})
LISTEN_CUES = frozenset({"listen", "listening", "hear", "hearing", "play", "plays", "played", "playing"})
# A lone word standing where "play" was, as recognizers mishear it.
PLAY_NEAR_MISSES = frozenset({"lay", "pay", "clay", "pray", "blay", "flay", "slay", "ploy", "plate", "plain",
                              "place", "pleh", "pley", "plea", "bley", "played", "plays", "placed"})
# Function words that may replace "play" in front of a name ("the adele", "a someone like you").
LEAD_WORDS = frozenset({"a", "the", "to", "and", "uh", "um", "oh", "ah", "eh", "so", "okay", "ok", "hey", "please",
                        "some"})
# A first word that, before "on", stands where "put" was ("but on back to the moon").
PUT_NEAR_MISSES = frozenset({"put", "but", "tut", "putt", "pot", "pat", "hot", "cut", "puts", "foot"})
# A word between a title and an artist that stands where "by" was ("blind faith my chase").
BY_NEAR_MISSES = frozenset({"my", "buy", "bye", "bi"})
MAX_HEARD_TITLE_WORDS = 5  # "<words> by <artist>": at most this many unknown words kept as the title heard
MIN_ALONE_NAME_CHARS = 6  # a name that is the whole utterance: at least this long, spaces aside
MAX_GARBLED_LEAD_WORDS = 2  # "the one piece of your heart": short unknown words where "play" was, at most this many
MAX_GARBLED_WORD_CHARS = 4
MIN_TITLE_AFTER_GARBLE_WORDS = 3  # ... and then a title of at least this many words


@dataclass(frozen=True)
class NameSpan:
    kind: str
    start: int
    end: int
    match: EntityMatch | None  # None: words kept as heard beside a catalog name ("<words> by <artist>")


def find_request(tokens: list[str], gazetteer: Gazetteer | None, weak_words: frozenset[str] = frozenset()) -> list[NameSpan]:
    """The catalog names a near-miss request consists of, or [] when it is not one.

    `weak_words` (common words, moods, genres: "hello", "next", "sad") are a one-word name only
    when the title and the artist named beside it agree ("adele hello", not "thinking out loud next")."""
    n = len(tokens)
    if gazetteer is None or not 0 < n <= MAX_WORDS:
        return []
    if any(w in _NON_MUSIC_WORDS for w in tokens):
        return []  # "set a timer", "what's the weather": never music, whatever titles they contain
    if n >= 3 and tokens[0] in PUT_NEAR_MISSES and tokens[1] == "on":
        tokens = ["play", *tokens[1:]]  # "but on back to the moon": "put on", a cue like "play"
    names = _cover(tokens, gazetteer, weak_words)
    if not names:
        return []
    covered = {i for s in names for i in range(s.start, s.end)}
    leftover = [tokens[i] for i in range(n) if i not in covered and not _by_between(i, tokens, names)]
    if any(w not in FILLERS and w not in PLAY_NEAR_MISSES for w in leftover):
        if _garbled_verb_then_title(tokens, names, weak_words):
            return names
        return _heard_title_by_artist(tokens, names, weak_words)
    if len({s.kind for s in names}) < len(names):
        return []  # "play lost wings": two titles side by side are one name the catalog lacks, not a request for both
    return names if _asks_for_music(tokens, names, leftover, weak_words) else []


def _by_between(i: int, tokens: list[str], names: list[NameSpan]) -> bool:
    """A misheard "by" between a title and the artist named after it ("blind faith my chase")."""
    return tokens[i] in BY_NEAR_MISSES and any(a.end == i and a.kind != "artist" for a in names) \
        and any(b.start == i + 1 and b.kind == "artist" for b in names)


def _asks_for_music(tokens: list[str], names: list[NameSpan], leftover: list[str], weak_words: frozenset[str]) -> bool:
    kinds = {s.kind for s in names}
    if any(w in PLAY_NEAR_MISSES or w in LISTEN_CUES for w in leftover):
        return True  # "lay adele hello", "i wanted to listen to coldplay"
    by_pairs = any(tokens[a.end:b.start] == ["by"] or (b.start == a.end + 1 and _by_between(a.end, tokens, names))
                   for a in names for b in names if a.kind != "artist" and b.kind == "artist")
    if by_pairs:
        return True  # "a hello by adele"
    if {"artist", "track"} <= kinds and _agree(names):
        return True  # "adele hello": the title is one of the artist's songs
    first = names[0]
    lead = tokens[:first.start]
    if len(names) == 1 and len(lead) == 1 and lead[0] in LEAD_WORDS and first.end == len(tokens):
        # "the coldplay", "some coldplay", "a someone like you": one function word where "play" was, then one name
        return first.kind == "artist" or len(first.match.heard.split()) >= 2
    if len(names) == 1 and not lead and first.end == len(tokens):
        # "ava max", "stacy's mom": a name of two words or more, not everyday words, is the whole utterance
        words = tokens[first.start:first.end]
        return len(words) >= 2 and len("".join(words)) >= MIN_ALONE_NAME_CHARS \
            and not all(w in weak_words or w in FILLERS for w in words)
    return False


def _garbled_verb_then_title(tokens: list[str], names: list[NameSpan], weak_words: frozenset[str]) -> bool:
    """"the one piece of your heart": one or two short words where "play" was, then one exact catalog title
    of three words or more (not all everyday words) to the end."""
    if len(names) != 1:
        return False
    name = names[0]
    lead, words = tokens[:name.start], tokens[name.start:name.end]
    return name.kind == "track" and name.match is not None and name.end == len(tokens) \
        and 0 < len(lead) <= MAX_GARBLED_LEAD_WORDS and all(len(w) <= MAX_GARBLED_WORD_CHARS for w in lead) \
        and len(words) >= MIN_TITLE_AFTER_GARBLE_WORDS and not all(w in weak_words or w in FILLERS for w in words)


def _heard_title_by_artist(tokens: list[str], names: list[NameSpan], weak_words: frozenset[str]) -> list[NameSpan]:
    """"can you plant it out by travis scott": an exact catalog artist, not an everyday word, ends the utterance
    after "by"; the few unknown words before "by" (request words and a misheard "play" aside) are the title
    heard. [] for any other shape."""
    artist = names[-1]
    at = artist.start - 1
    if artist.kind != "artist" or artist.end != len(tokens) or at < 1 or tokens[at] != "by" \
            or all(w in weak_words for w in tokens[artist.start:artist.end]):
        return []
    start = 0
    while start < at and (tokens[start] in FILLERS or tokens[start] in PLAY_NEAR_MISSES):
        start += 1
    if not 0 < at - start <= MAX_HEARD_TITLE_WORDS or any(s.start < at for s in names[:-1]):
        return []
    return [NameSpan("track", start, at, None), artist]


def _agree(names: list[NameSpan]) -> bool:
    artists = {s for n in names if n.kind == "artist" and n.match for s in n.match.song_ids}
    return any(artists & set(n.match.song_ids) for n in names if n.kind != "artist" and n.match)


def _cover(tokens: list[str], gazetteer: Gazetteer, weak_words: frozenset[str]) -> list[NameSpan]:
    """Non-overlapping catalog names in the utterance, longest first: exact names (spaces aside)
    anywhere, then each remaining run of content words as one close name."""
    n = len(tokens)
    found: list[NameSpan] = []
    weak: list[NameSpan] = []
    taken: set[int] = set()
    for length in range(min(MAX_NAME_WORDS, n), 0, -1):
        for a in range(0, n - length + 1):
            b = a + length
            if taken & set(range(a, b)):
                continue
            span = " ".join(tokens[a:b])
            if length == 1 and (tokens[a] in FILLERS or tokens[a] in PLAY_NEAR_MISSES):
                continue  # "a", "play", "lay": not a name on their own
            hit = _exact(span, gazetteer)
            if hit is not None and all(w in weak_words or w in FILLERS for w in tokens[a:b]):
                # "hello", "i would like", "do you want to": titles made of everyday words count only
                # beside their artist
                weak.append(NameSpan(hit.kind, a, b, hit))
            elif hit is not None:
                found.append(NameSpan(hit.kind, a, b, hit))
                taken.update(range(a, b))
    for w in weak:  # "hello" only beside its artist, "adele hello"; a track weak word needs an artist found
        if w.start in taken:
            continue
        partner = "track" if w.kind == "artist" else "artist"
        ids = set(w.match.song_ids)
        if any(f.kind == partner and ids & set(f.match.song_ids) for f in found):
            found.append(w)
            taken.add(w.start)
        elif w.kind != "track":
            title = gazetteer.exact(w.match.heard, "track")  # "hello" is also a title: try it as one
            if title is not None and any(f.kind == "artist" and set(title.song_ids) & set(f.match.song_ids)
                                         for f in found):
                found.append(NameSpan("track", w.start, w.end, title))
                taken.add(w.start)
    # Runs of words that are neither fillers nor already names: one close catalog name each.
    runs, start = [], None
    for i in range(n + 1):
        free = i < n and i not in taken and tokens[i] not in FILLERS and tokens[i] not in PLAY_NEAR_MISSES
        if free and start is None:
            start = i
        elif not free and start is not None:
            runs.append((start, i))
            start = None
    if len(runs) > MAX_FUZZY_RUNS or not any(t in PLAY_NEAR_MISSES or t in LISTEN_CUES for t in tokens):
        return sorted(found, key=lambda s: s.start)  # close (not exact) names only with a cue that music is asked
    for a, b in runs:
        if b - a > MAX_NAME_WORDS or b - a < 2:
            continue  # a single unknown word is too easily close to some title
        span = " ".join(tokens[a:b])
        hits = [h for kind in NAME_KINDS for h in gazetteer.match(span, kind, limit=1, min_score=LENIENT_FUZZY_MIN)]
        if hits:
            best = max(hits, key=lambda h: h.score)
            found.append(NameSpan(best.kind, a, b, best))
    return sorted(found, key=lambda s: s.start)


def _exact(span: str, gazetteer: Gazetteer) -> EntityMatch | None:
    for kind in NAME_KINDS:  # an artist first: "adele" is the singer before any title
        hit = gazetteer.exact(span, kind)
        if hit is not None:
            return hit
    return None


_NON_MUSIC_WORDS = frozenset(w for phrase in L.NON_MUSIC_OBJECTS for w in phrase.split() if w not in ("audio",))
