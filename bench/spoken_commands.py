"""Spoken benchmark commands from the default catalog: what is said, and what must come back.

Pure and deterministic for a seed: `make_commands(songs, n, seed)` draws songs
and artists from the catalog and words a request for each, in four kinds:

- `song_by_artist`: "play <song> by <artist>"        expects that song first
- `song`:           "play <song>"                    expects that song first (titles unique in the catalog)
- `artist`:         "play some <artist>"             expects a song by that artist first
- `like`:           "play something like <song>"     expects the name in the intent's slots

The spoken name is the catalog name as a person says it: a title without its
" - Radio Edit" suffix or "(feat. ...)" part, the first credited artist. Names
a synthesizer cannot say as written (digits, symbols such as "P!nk") are left
out, and so are very long ones.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KINDS = ("song_by_artist", "song", "artist", "like")
KIND_WEIGHTS = (0.35, 0.2, 0.25, 0.2)

PHRASINGS: dict[str, tuple[str, ...]] = {
    "song_by_artist": ("play {song} by {artist}", "play {song} by {artist}", "please play {song} by {artist}",
                       "put on {song} by {artist}", "i want to hear {song} by {artist}",
                       "can you play {song} by {artist}"),
    "song": ("play {song}", "play {song}", "play the song {song}", "put on {song}", "i want to hear {song}"),
    "artist": ("play some {artist}", "play music by {artist}", "i want to listen to {artist}", "play {artist}",
               "put on some {artist}", "play something by {artist}"),
    "like_song": ("play something like {song}", "play songs like {song}", "something similar to {song}"),
    "like_artist": ("songs like {artist}", "play something like {artist}", "play music like {artist}"),
}

MAX_TITLE_WORDS = 6
MAX_ARTIST_WORDS = 4
_SUFFIX = re.compile(r"\s+-\s+.*$")                   # "Move Your Body - Radio Edit"
_BRACKETS = re.compile(r"\s*[\(\[][^\)\]]*[\)\]]")    # "(feat. Tyrese)", "[feat. X]"
_CREDIT_SPLIT = re.compile(r",|\s+&\s+|\s+feat\.?\s+|\s+featuring\s+|\s+with\s+|\s+x\s+", re.I)
_SPEAKABLE = re.compile(r"^[A-Za-z\u00C0-\u017F' .]+$")


@dataclass(frozen=True)
class Song:
    title: str
    artist: str


@dataclass(frozen=True)
class Command:
    """One spoken request. `expected_title`/`expected_artist` are the spoken names;
    `name` is the name that must appear (the title, or the artist for artist-only and
    artist "like" requests); `catalog_title`/`catalog_artist` are the catalog's spelling."""

    id: str
    text: str
    kind: str
    name: str
    expected_title: str = ""
    expected_artist: str = ""
    catalog_title: str = ""
    catalog_artist: str = ""

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "kind": self.kind, "name": self.name,
                "expected_title": self.expected_title, "expected_artist": self.expected_artist,
                "catalog_title": self.catalog_title, "catalog_artist": self.catalog_artist}


def spoken_title(title: str) -> str:
    """The title as people say it: no " - Remastered" suffix, no bracketed part."""
    return " ".join(_BRACKETS.sub("", _SUFFIX.sub("", title)).split())


def credited_artists(artist: str) -> list[str]:
    """'Flo Rida, Sia' -> ['Flo Rida', 'Sia']; 'Lil Jon & The East Side Boyz' -> two names."""
    return [a.strip() for a in _CREDIT_SPLIT.split(artist) if a.strip()]


def spoken_artist(artist: str) -> str:
    names = credited_artists(artist)
    return names[0] if names else artist.strip()


def _speakable(name: str, max_words: int) -> bool:
    return bool(name) and bool(_SPEAKABLE.match(name)) and 1 <= len(name.split()) <= max_words \
        and any(len(w) > 1 for w in name.split())


def load_catalog(path: str | Path) -> list[Song]:
    """Songs of a catalog CSV with `artist` and `song` columns (index/default_catalog.csv)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"catalog not found: {path}")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"artist", "song"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: needs 'artist' and 'song' columns, has {reader.fieldnames}")
        return [Song(r["song"].strip(), r["artist"].strip()) for r in reader if r["song"].strip() and r["artist"].strip()]


def _key(name: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", name.lower()).split())


def candidate_pools(songs: list[Song]) -> tuple[list[Song], list[Song], list[str]]:
    """(songs with a speakable title and artist, those whose spoken title is unique in the
    catalog, speakable artists), each in catalog order."""
    titles = Counter(_key(spoken_title(s.title)) for s in songs)
    ok = [s for s in songs
          if _speakable(spoken_title(s.title), MAX_TITLE_WORDS) and _speakable(spoken_artist(s.artist), MAX_ARTIST_WORDS)]
    unique = [s for s in ok if titles[_key(spoken_title(s.title))] == 1]
    artists = list(dict.fromkeys(spoken_artist(s.artist) for s in ok))
    return ok, unique, artists


def make_commands(songs: list[Song], n: int, seed: int, *, exclude: set[str] = frozenset(),
                  prefix: str = "c") -> list[Command]:
    """`n` commands drawn with `seed`. Songs and artists whose key is in `exclude`
    (`_key` of a title or artist) are not used, so two sets can be kept apart."""
    if n < 0:
        raise ValueError(f"number of commands must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    ok, unique, artists = candidate_pools(songs)
    ok = [s for s in ok if _key(spoken_title(s.title)) not in exclude and _key(spoken_artist(s.artist)) not in exclude]
    unique = [s for s in unique if s in set(ok)]
    artists = [a for a in artists if _key(a) not in exclude]
    if not ok or not unique or not artists:
        raise ValueError("the catalog has no speakable songs left to make commands from")
    used: set[str] = set()
    out: list[Command] = []
    for i in range(n):  # one draw after another: the first k of n commands are the k commands of a seed
        kind = KINDS[int(rng.choice(len(KINDS), p=np.asarray(KIND_WEIGHTS)))]
        pool = unique if kind == "song" else ok
        if kind == "artist" or (kind == "like" and rng.random() < 0.5):
            artist = _draw(rng, artists, used, _key)
            key = "like_artist" if kind == "like" else "artist"
            text = _phrase(rng, key).format(artist=artist)
            out.append(Command(f"{prefix}{i:03d}", _clean(text), kind, name=artist, expected_artist=artist,
                               catalog_artist=artist))
            continue
        song = _draw(rng, pool, used, lambda s: _key(spoken_title(s.title)))
        title, artist = spoken_title(song.title), spoken_artist(song.artist)
        if kind == "like":
            text = _phrase(rng, "like_song").format(song=title)
        else:
            text = _phrase(rng, kind).format(song=title, artist=artist)
        out.append(Command(f"{prefix}{i:03d}", _clean(text), kind, name=title, expected_title=title,
                           expected_artist=artist if kind != "like" else "", catalog_title=song.title,
                           catalog_artist=song.artist))
    return out


def used_keys(commands: list[Command]) -> set[str]:
    """Keys of every title and artist a command set names (for `exclude`)."""
    return {_key(x) for c in commands for x in (c.expected_title, c.expected_artist, c.name) if x}


def _phrase(rng: np.random.Generator, key: str) -> str:
    options = PHRASINGS[key]
    return options[int(rng.integers(0, len(options)))]


def _draw(rng: np.random.Generator, pool: list, used: set[str], key) -> object:
    """A random item whose key was not drawn yet (falls back to any item once all were)."""
    for _ in range(50):
        item = pool[int(rng.integers(0, len(pool)))]
        if key(item) not in used:
            used.add(key(item))
            return item
    return pool[int(rng.integers(0, len(pool)))]


def _clean(text: str) -> str:
    """Single spaces; names keep the catalog's casing (synthesizers spell "SOS" from it)."""
    return " ".join(text.split())
