"""Column arrays of the catalog for fast ranking: features, popularity, years, genres.

Built once per catalog (about 1 s per million songs); every lookup the ranker
makes per request is then a numpy slice, never a loop over the catalog.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict

import numpy as np

from assistant.asr.text import normalize_text
from assistant.recommend.catalog import Catalog
from assistant.recommend.mood import MOOD_TARGETS
from assistant.recommend.song import TEMPO_MAX_BPM, TEMPO_MIN_BPM

FEATURES: tuple[str, ...] = ("valence", "energy", "danceability", "acousticness", "tempo")
UNKNOWN_POPULARITY = 0.3  # a song with no popularity counts as mildly popular (0..1 scale)
TOP_ROWS = 500  # rows kept per genre, year range and mood as candidates
GENRE_PART_MATCH = 0.75  # "rock" asked, song is "pop rock": this much of an exact match


class CatalogArrays:
    """Per-song columns aligned with catalog positions (= vector index rows)."""

    def __init__(self, catalog: Catalog):
        n = len(catalog)
        self.features = np.full((n, len(FEATURES)), np.nan, dtype=np.float32)
        self.popularity = np.full(n, UNKNOWN_POPULARITY, dtype=np.float32)
        self.years = np.zeros(n, dtype=np.int32)
        self.artist_keys: list[str] = []
        self.genre_keys: list[tuple[str, ...]] = []
        normalized: dict[str, str] = {}  # artist credit -> normalized first artist
        normalized_genre: dict[str, str] = {}
        genre_rows: dict[str, list[int]] = defaultdict(list)
        for i, song in enumerate(catalog.songs):
            for j, name in enumerate(FEATURES[:4]):
                value = getattr(song, name)
                if value is not None:
                    self.features[i, j] = value
            if song.tempo_bpm is not None:
                self.features[i, 4] = min(1.0, max(0.0, (song.tempo_bpm - TEMPO_MIN_BPM) / (TEMPO_MAX_BPM - TEMPO_MIN_BPM)))
            if song.popularity is not None:
                self.popularity[i] = song.popularity / 100.0
            self.years[i] = song.year or 0
            key = normalized.get(song.artist)
            if key is None:
                key = normalized[song.artist] = normalize_text(song.artists[0]) if song.artists else ""
            self.artist_keys.append(key)
            keys = []
            for genre in song.genres:
                gkey = normalized_genre.get(genre)
                if gkey is None:
                    gkey = normalized_genre[genre] = normalize_text(genre)
                keys.append(gkey)
                genre_rows[gkey].append(i)
            self.genre_keys.append(tuple(keys))
        # Songs' genres as a CSR matrix over the genre vocabulary, for vectorized affinity lookups.
        self.genre_vocab: list[str] = list(genre_rows)
        vocab_id = {g: j for j, g in enumerate(self.genre_vocab)}
        lengths = np.fromiter((len(k) for k in self.genre_keys), dtype=np.int64, count=n)
        self._genre_ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self._genre_ids = np.fromiter((vocab_id[g] for k in self.genre_keys for g in k), dtype=np.int64,
                                      count=int(lengths.sum()))
        self._vocab_id = vocab_id
        self.popular_order = np.argsort(-self.popularity, kind="stable")
        self._genre_rows = {g: self._by_popularity(np.asarray(r, dtype=np.int64)) for g, r in genre_rows.items()}
        self._mood_top: dict[str, np.ndarray] = {}
        self._genre_cache: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.popularity)

    def _by_popularity(self, rows: np.ndarray, limit: int | None = None) -> np.ndarray:
        """Rows ordered by popularity, most popular first (only the first `limit` when given)."""
        if limit is not None and len(rows) > limit:
            rows = rows[np.argpartition(-self.popularity[rows], limit - 1)[:limit]]
        return rows[np.argsort(-self.popularity[rows], kind="stable")]

    # ----------------------------------------------------------------- moods
    def mood_fit(self, mood: str, rows: np.ndarray) -> np.ndarray:
        """Fit of each row's features to a mood, 0..1 (NaN where a song has no features)."""
        targets = MOOD_TARGETS.get(mood)
        feats = self.features[rows]
        if not targets:
            return np.full(len(rows), np.nan, dtype=np.float32)
        total = np.zeros(len(rows), dtype=np.float32)
        weights = np.zeros(len(rows), dtype=np.float32)
        for name, direction, weight in targets:
            col = feats[:, FEATURES.index(name)]
            known = ~np.isnan(col)
            value = np.where(known, col if direction > 0 else 1.0 - col, 0.0)
            total += weight * value
            weights += weight * known
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(weights > 0, total / np.maximum(weights, 1e-9), np.nan).astype(np.float32)

    def mood_rows(self, mood: str) -> np.ndarray:
        """The TOP_ROWS rows that fit a mood best (computed once per mood)."""
        with self._lock:
            cached = self._mood_top.get(mood)
        if cached is not None:
            return cached
        fit = np.nan_to_num(self.mood_fit(mood, np.arange(len(self))), nan=-1.0)
        fit = fit + 0.05 * self.popularity  # among equal fits, the known songs first
        k = min(TOP_ROWS, len(fit))
        top = np.argpartition(-fit, k - 1)[:k] if k else np.empty(0, dtype=np.int64)
        top = top[np.argsort(-fit[top])]
        with self._lock:
            self._mood_top[mood] = top
        return top

    # ---------------------------------------------------------------- genres
    def genre_matches(self, genre: str) -> dict[str, float]:
        """Catalog genres a requested genre covers, with a match weight ("rock" -> rock 1.0, pop rock 0.75)."""
        key = normalize_text(genre)
        with self._lock:
            cached = self._genre_cache.get(key)
        if cached is not None:
            return cached
        out: dict[str, float] = {}
        if key:
            pattern = re.compile(rf"(?:^| ){re.escape(key)}(?: |$)")
            compact = key.replace(" ", "")
            for name in self._genre_rows:
                if name == key or name.replace(" ", "") == compact:
                    out[name] = 1.0
                elif pattern.search(name):
                    out[name] = GENRE_PART_MATCH
        with self._lock:
            self._genre_cache[key] = out
        return out

    def genre_rows(self, genre: str) -> np.ndarray:
        """Most popular songs of a genre (and the genres it covers), at most TOP_ROWS."""
        parts = [self._genre_rows[g][:TOP_ROWS] for g in self.genre_matches(genre)]
        if not parts:
            return np.empty(0, dtype=np.int64)
        rows = np.unique(np.concatenate(parts))
        return self._by_popularity(rows, TOP_ROWS)

    def genre_score(self, weights: dict[str, float], rows: np.ndarray) -> np.ndarray:
        """Per row, the largest weight among the song's genres (0 when none is weighted).

        `weights` maps normalized genre names to values (negative allowed)."""
        table = np.zeros(len(self.genre_vocab) + 1, dtype=np.float32)
        for g, w in weights.items():
            j = self._vocab_id.get(g)
            if j is not None:
                table[j] = w
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = self._genre_ptr[rows], self._genre_ptr[rows + 1]
        lengths = ends - starts
        out = np.zeros(len(rows), dtype=np.float32)
        has = lengths > 0
        if not has.any():
            return out
        s, l = starts[has], lengths[has]
        offsets = np.concatenate([[0], np.cumsum(l)[:-1]])
        flat = np.repeat(s - offsets, l) + np.arange(int(l.sum()))
        values = table[self._genre_ids[flat]]
        best = np.maximum.reduceat(values, offsets)
        # A song whose only weighted genres are negative keeps its most negative one.
        worst = np.minimum.reduceat(values, offsets)
        out[has] = np.where(best > 0, best, np.where(worst < 0, worst, 0.0))
        return out

    # ----------------------------------------------------------------- years
    def year_rows(self, first: int, last: int) -> np.ndarray:
        rows = np.flatnonzero((self.years >= first) & (self.years <= last))
        return self._by_popularity(rows, TOP_ROWS)
