"""The parser's answer: an intent name, Snips-style slots and a confidence.

`IntentResult.to_dict()` is the JSON shape of `assistant parse --json` and of the
daemon's `intent` event: {"intent", "slots", "confidence", "text"} plus, when
present, "heard", "query", "exclude" (slots the request rules out: "anything
but country" -> {"genre": "country"}), "question" (what a what_is_playing
request asks: song, artist, album, year or genre) and "note" (why odd input
is "none").
`slots` hold resolved values (catalog spelling when a span was matched to the
catalog); `heard` holds the text span each slot came from, and `entities` the
catalog matches the recommender uses (not part of the JSON).
"""

from __future__ import annotations

from dataclasses import dataclass, field

INTENTS: tuple[str, ...] = (
    "play", "recommend", "similar", "next", "previous", "pause", "resume", "stop",
    "like", "dislike", "volume_up", "volume_down", "what_is_playing", "none",
)
# Snips 2017 PlayMusic/AddToPlaylist slot names, plus mood.
SLOT_NAMES: tuple[str, ...] = (
    "artist", "album", "track", "playlist", "genre", "year", "sort", "service", "music_item", "mood",
)
# What a what_is_playing request asks about the song.
QUESTIONS: tuple[str, ...] = ("song", "artist", "album", "year", "genre")
# Intents that ask for songs; the others are player controls or feedback.
CONTENT_INTENTS = frozenset({"play", "recommend", "similar"})


@dataclass(frozen=True)
class EntityMatch:
    """A slot span resolved against the catalog: `name` as the catalog spells it."""

    kind: str  # "artist", "track", "album" or "genre"
    name: str
    score: float  # 0..1, fuzzy/phonetic similarity of the heard span to the name
    heard: str
    song_ids: tuple[str, ...] = ()
    how: str = "fuzzy"  # "exact", "fuzzy" or "phonetic"


@dataclass(frozen=True)
class IntentResult:
    intent: str
    slots: dict[str, str] = field(default_factory=dict)
    confidence: float = 0.0
    text: str = ""  # the normalized text that was parsed
    heard: dict[str, str] = field(default_factory=dict)
    entities: tuple[EntityMatch, ...] = ()
    query: str = ""  # free text left for semantic search ("songs about summer")
    alternatives: tuple[EntityMatch, ...] = ()  # runner-up catalog names for the same spans
    exclude: dict[str, str] = field(default_factory=dict)  # slots ruled out ("anything but country")
    excluded: tuple[EntityMatch, ...] = ()  # catalog matches of excluded names (the ranker drops their songs)
    question: str = ""  # what_is_playing: one of QUESTIONS
    note: str = ""  # why the text was not understood (empty, too long, no words)
    content: str = ""  # play/similar: the words after the verb, for the ranker's lenient name search

    def __post_init__(self) -> None:
        if self.intent not in INTENTS:
            raise ValueError(f"unknown intent {self.intent!r}; expected one of {', '.join(INTENTS)}")

    @property
    def wants_songs(self) -> bool:
        return self.intent in CONTENT_INTENTS

    def to_dict(self) -> dict:
        out = {"intent": self.intent, "slots": dict(self.slots), "confidence": round(self.confidence, 3),
               "text": self.text}
        if self.heard and self.heard != self.slots:
            out["heard"] = dict(self.heard)
        if self.query:
            out["query"] = self.query
        if self.exclude:
            out["exclude"] = dict(self.exclude)
        if self.question:
            out["question"] = self.question
        if self.note:
            out["note"] = self.note
        return out
