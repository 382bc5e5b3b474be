"""A listener's taste, computed from their feedback events.

Each event weighs `EVENT_WEIGHTS[kind]`, halved every `half_life_days`. Per
song the weights add up; from the songs in the catalog the profile keeps:

- genre and artist affinities in -1..1 (normalized by the largest magnitude);
- a taste vector: the weighted mean of liked/played songs' embeddings minus
  half the weighted mean of disliked/skipped ones, normalized;
- the weighted mean audio features (valence, energy, ...) of the liked songs:
  the mood the listener likes;
- the songs disliked (never suggested again) and the recently heard ones
  (not suggested again soon), and the last song listened to ("more like this").
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from assistant.asr.text import normalize_text
from assistant.recommend.arrays import FEATURES
from assistant.recommend.catalog import Catalog
from assistant.recommend.preferences import Event

EVENT_WEIGHTS: dict[str, float] = {"liked": 1.0, "requested": 0.5, "played": 0.3, "skipped": -0.5, "disliked": -1.0}
HEARD_KINDS = frozenset({"played", "skipped", "requested", "liked"})
NEGATIVE_SHARE = 0.5  # disliked songs pull the taste vector away this much
SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class UserProfile:
    user: str
    n_events: int = 0
    genres: dict[str, float] = field(default_factory=dict)  # normalized genre -> affinity -1..1
    artists: dict[str, float] = field(default_factory=dict)  # normalized artist -> affinity -1..1
    artist_names: dict[str, str] = field(default_factory=dict)  # normalized -> display
    vector: np.ndarray | None = None
    features: np.ndarray | None = None  # liked songs' mean audio features (arrays.FEATURES order; NaN unknown)
    disliked: frozenset[str] = frozenset()
    recent: tuple[str, ...] = ()  # heard song ids, newest first
    last_song: str | None = None

    @property
    def empty(self) -> bool:
        return self.vector is None and not self.genres and not self.artists

    def top_genres(self, n: int = 3) -> list[str]:
        return [g for g, w in sorted(self.genres.items(), key=lambda kv: -kv[1]) if w > 0][:n]


def _feature_centroid(songs, weights) -> np.ndarray | None:
    """Weighted mean of the songs' audio features (FEATURES order), NaN where none is known."""
    table = np.array([[s.features().get(name, np.nan) for name in FEATURES] for s in songs], dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)[:, None] * ~np.isnan(table)
    total = w.sum(axis=0)
    if not (total > 0).any():
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.nansum(table * w, axis=0) / total).astype(np.float32)


def _normalize(weights: dict[str, float]) -> dict[str, float]:
    peak = max((abs(w) for w in weights.values()), default=0.0)
    return {k: w / peak for k, w in weights.items()} if peak > 0 else {}


def build_profile(user: str, events: Sequence[Event], catalog: Catalog, vectors_of, *, half_life_days: float,
                  recent_n: int, now: float | None = None) -> UserProfile:
    """Profile from events (newest first). `vectors_of(rows)` returns the embeddings of catalog rows."""
    now = time.time() if now is None else now
    song_weight: dict[str, float] = defaultdict(float)
    disliked: set[str] = set()
    recent: list[str] = []
    last_song = None
    settled: set[str] = set()
    for e in events:  # newest first
        age_days = max(0.0, now - e.ts) / SECONDS_PER_DAY
        song_weight[e.song_id] += EVENT_WEIGHTS[e.kind] * 0.5 ** (age_days / half_life_days)
        if e.song_id not in settled and e.kind in ("liked", "disliked"):
            settled.add(e.song_id)  # the newest opinion wins: liked after disliked undoes it
            if e.kind == "disliked":
                disliked.add(e.song_id)
        if e.kind in HEARD_KINDS and len(recent) < recent_n and e.song_id not in recent:
            recent.append(e.song_id)
        if last_song is None and e.kind in ("played", "liked", "requested"):
            last_song = e.song_id
    genres: dict[str, float] = defaultdict(float)
    artists: dict[str, float] = defaultdict(float)
    names: dict[str, str] = {}
    pos_rows, pos_w, neg_rows, neg_w = [], [], [], []
    for song_id, w in song_weight.items():
        row = catalog.position(song_id)
        if row is None or w == 0:
            continue
        song = catalog.songs[row]
        for g in song.genres:
            genres[normalize_text(g)] += w
        for a in song.artists:
            key = normalize_text(a)
            artists[key] += w
            names[key] = a
        (pos_rows if w > 0 else neg_rows).append(row)
        (pos_w if w > 0 else neg_w).append(abs(w))
    features = _feature_centroid([catalog.songs[r] for r in pos_rows], pos_w) if pos_rows else None
    vector = None
    if pos_rows:
        v = np.average(vectors_of(pos_rows), axis=0, weights=pos_w)
        if neg_rows:
            v = v - NEGATIVE_SHARE * np.average(vectors_of(neg_rows), axis=0, weights=neg_w)
        norm = float(np.linalg.norm(v))
        vector = (v / norm).astype(np.float32) if norm > 0 else None
    return UserProfile(user=user, n_events=len(events), genres=_normalize(genres), artists=_normalize(artists),
                       artist_names=names, vector=vector, features=features, disliked=frozenset(disliked), recent=tuple(recent),
                       last_song=last_song)
