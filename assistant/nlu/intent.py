"""The parser's answer: an intent name, Snips-style slots and a confidence.

`IntentResult.to_dict()` is the JSON shape of `assistant parse --json` and of the
daemon's `intent` event: {"intent", "slots", "confidence", "text", "heard"}.
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
        return out
