"""The parser's answer: an intent name, Snips-style slots and a confidence.

`IntentResult.to_dict()` is the JSON shape of `assistant parse --json` and of the
daemon's `intent` event: {"intent", "slots", "confidence", "text"} plus, when
present, "heard", "query", "exclude" (slots the request rules out: "anything
but country" -> {"genre": "country"}), "question" (what a what_is_playing
request asks: song, artist, album, year or genre) and "note" (why odd input
is "none").
Heard vs matched: a name slot (artist, track, album) holds what was heard;
the catalog name it was matched to is beside it in `matches` with its
score, and `confident` when the match is close enough to be taken as that
name (MATCH_CONFIDENT_MIN): "play songs by nora quill" keeps
slots.artist = "nora quill" and shows the closest catalog artist with its
low score, never in its place. `heard` holds the text span every slot came
from (the words of a year: "nineteen ninety six"), and `entities` the catalog
matches the recommender uses (in the JSON as `matches`).
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
NAME_SLOTS: tuple[str, ...] = ("artist", "track", "album")  # slots matched against the catalog
# A catalog match at least this close is taken as the name heard; below it, the name is reported as not in
# the catalog and the match only as a similar name. Chosen on training halves (crc32 of the name even) of
# real artists absent from the default catalog (1.9 % of them match a catalog artist at >= 0.85) and of
# catalog names corrupted at CER 10 % / sound-alike (90 % / 96 % of them match their own name at >= 0.85).
MATCH_CONFIDENT_MIN = 0.85


@dataclass(frozen=True)
class EntityMatch:
    """A slot span resolved against the catalog: `name` as the catalog spells it."""

    kind: str  # "artist", "track", "album" or "genre"
    name: str
    score: float  # 0..1, fuzzy/phonetic similarity of the heard span to the name
    heard: str
    song_ids: tuple[str, ...] = ()
    how: str = "fuzzy"  # "exact", "fuzzy" or "phonetic"

    @property
    def confident(self) -> bool:
        """Close enough to be taken as the name that was heard (not just a similar name)."""
        return self.how == "exact" or self.score >= MATCH_CONFIDENT_MIN

    def to_dict(self, song_id: str | None = None) -> dict:
        """{"id", "name", "score", "confident", "songs"}: `id` is the song a track match means (else null),
        `songs` how many catalog songs carry the name."""
        return {"id": song_id, "name": self.name, "score": round(float(self.score), 3), "confident": self.confident,
                "songs": len(self.song_ids)}


@dataclass(frozen=True)
class IntentResult:
    intent: str
    slots: dict = field(default_factory=dict)  # slot -> heard text; year -> a number or {"from", "to"}
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

    def match(self, kind: str) -> EntityMatch | None:
        """The catalog match of a name slot: the entity resolved for it, else the closest runner-up
        (not confident) for the span heard; None when nothing in the catalog is near."""
        heard = self.heard.get(kind, self.slots.get(kind))
        if not isinstance(heard, str):
            return None
        found = [e for e in self.entities if e.kind == kind and e.heard == heard]
        if not found:
            found = [e for e in self.alternatives if e.kind == kind and e.heard == heard and not e.confident]
        return max(found, key=lambda e: e.score, default=None)

    def unknown_names(self) -> dict[str, str]:
        """Name slots with no confident catalog match: kind -> what was heard."""
        out = {}
        for kind in NAME_SLOTS:
            value = self.slots.get(kind)
            match = self.match(kind)
            if isinstance(value, str) and value and (match is None or not match.confident):
                out[kind] = value
        return out

    @property
    def matches(self) -> dict[str, dict]:
        """Name slot -> its catalog match as JSON (see EntityMatch.to_dict)."""
        out = {}
        artist = self.match("artist")
        for kind in NAME_SLOTS:
            if kind not in self.slots:
                continue
            m = self.match(kind)
            if m is None:
                continue
            song_id = None
            if kind == "track" and m.song_ids:
                by = set(artist.song_ids) if artist is not None and artist.confident else set()
                song_id = next((s for s in m.song_ids if s in by), m.song_ids[0])
            out[kind] = m.to_dict(song_id)
        return out

    def to_dict(self) -> dict:
        out = {"intent": self.intent, "slots": dict(self.slots), "confidence": round(self.confidence, 3),
               "text": self.text}
        if self.heard and self.heard != self.slots:
            out["heard"] = dict(self.heard)
        matches = self.matches
        if matches:
            out["matches"] = matches
        if self.query:
            out["query"] = self.query
        if self.exclude:
            out["exclude"] = dict(self.exclude)
        if self.question:
            out["question"] = self.question
        if self.note:
            out["note"] = self.note
        return out
