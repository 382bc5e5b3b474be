"""The one song model every catalog loader produces.

A `Song` holds facts only: names, year, genres, an optional lyrics text, the
Spotify-style audio features (each 0..1 except `tempo_bpm`), a popularity in
0..100 and, when known, a playable `source` (a file path or URI).

The id is derived from the normalized artist and title, so the same song read
from two catalogs gets the same id and is merged (see `merge_songs`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, fields, replace

from assistant.asr.text import normalize_text

# Audio feature names in the order they are stored; all in 0..1.
UNIT_FEATURES: tuple[str, ...] = ("valence", "energy", "danceability", "acousticness")
TEMPO_MIN_BPM = 40.0
TEMPO_MAX_BPM = 220.0
ID_PREFIX = "s"
ID_HEX_CHARS = 12

# Separators between collaborating artists in one artist field ("Flo Rida, Sia",
# "Calvin Harris feat. Rihanna"). "&" and "/" are not split ("Simon & Garfunkel",
# "AC/DC"); names with a comma ("Tyler, The Creator") are matched whole as well.
_ARTIST_SPLIT = re.compile(r"\s*(?:,|;|\bfeat\.|\bfeat\b|\bft\.|\bft\b|\bfeaturing\b| x )\s*", re.IGNORECASE)


def song_key(artist: str, title: str) -> str:
    """The identity of a song: normalized artist and title."""
    return f"{normalize_text(artist)}|{normalize_text(title)}"


def song_id(artist: str, title: str) -> str:
    """Stable short id from the normalized artist and title ("s" + 12 hex digits)."""
    digest = hashlib.sha1(song_key(artist, title).encode("utf-8")).hexdigest()
    return ID_PREFIX + digest[:ID_HEX_CHARS]


def split_artists(artist: str) -> tuple[str, ...]:
    """The individual artists of a credit ("Flo Rida, Sia" -> ("Flo Rida", "Sia"))."""
    parts = [p.strip() for p in _ARTIST_SPLIT.split(artist) if p and p.strip()]
    return tuple(dict.fromkeys(parts)) or (artist.strip(),)


@dataclass(frozen=True)
class Song:
    """One catalog entry. Optional facts are None (numbers) or empty (text)."""

    id: str
    title: str
    artist: str
    album: str = ""
    year: int | None = None
    genres: tuple[str, ...] = ()
    lyrics: str = ""
    valence: float | None = None
    energy: float | None = None
    danceability: float | None = None
    tempo_bpm: float | None = None
    acousticness: float | None = None
    popularity: float | None = None  # 0..100
    source: str = ""  # playable file path or URI; "" when the catalog has facts only

    @property
    def artists(self) -> tuple[str, ...]:
        return split_artists(self.artist)

    def features(self) -> dict[str, float]:
        """The known audio features, tempo scaled to 0..1."""
        out = {name: getattr(self, name) for name in UNIT_FEATURES if getattr(self, name) is not None}
        if self.tempo_bpm is not None:
            out["tempo"] = min(1.0, max(0.0, (self.tempo_bpm - TEMPO_MIN_BPM) / (TEMPO_MAX_BPM - TEMPO_MIN_BPM)))
        return out

    def to_dict(self, with_lyrics: bool = False) -> dict:
        """JSON-ready facts (the JSONL catalog format); lyrics only when asked."""
        out: dict = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "lyrics" and not with_lyrics:
                continue
            if value is None or value == "" or value == ():
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def make_song(title: str, artist: str, **facts) -> Song:
    """A Song with its id derived from artist and title."""
    return Song(id=song_id(artist, title), title=title.strip(), artist=artist.strip(), **facts)


def merge_songs(first: Song, other: Song) -> Song:
    """One song from two records of it: the first record's facts win, gaps are
    filled from the other, genres are united, popularity is the maximum and the
    year the earliest (re-releases keep the original year)."""
    updates: dict = {}
    for f in fields(first):
        a, b = getattr(first, f.name), getattr(other, f.name)
        if f.name == "genres":
            updates["genres"] = tuple(dict.fromkeys(a + b))
        elif f.name == "popularity" and a is not None and b is not None:
            updates["popularity"] = max(a, b)
        elif f.name == "year" and a is not None and b is not None:
            updates["year"] = min(a, b)
        elif a in (None, "", ()) and b not in (None, "", ()):
            updates[f.name] = b
    return replace(first, **updates)
