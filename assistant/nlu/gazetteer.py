"""Names the parser resolves spans against: artists, tracks, albums, genres.

A `Gazetteer` is built from a catalog (`Gazetteer.from_songs`) or from plain
name lists (benchmarks build one from training folds). Each kind has its own
fuzzy + phonetic `NameIndex`; each name keeps the ids of the songs it names,
so "someone like you" by "adele" can be checked to be one song.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Mapping, Sequence

from assistant.nlu.intent import EntityMatch
from assistant.nlu.years import MAX_YEAR, MIN_YEAR
from assistant.recommend.matcher import MatcherOptions, NameIndex

KINDS: tuple[str, ...] = ("artist", "track", "album", "genre")
YEAR_QUANTILE = 0.05  # the catalog's year range leaves out this share of songs at each end (67 default-catalog songs say 1905)


def catalog_years(songs) -> tuple[int, int] | None:
    """First and last year most songs are from (a few wrong years at either end left out)."""
    years = sorted(y for y in (getattr(s, "year", None) for s in songs) if isinstance(y, int) and MIN_YEAR <= y <= MAX_YEAR)
    if not years:
        return None
    cut = int(len(years) * YEAR_QUANTILE)
    return years[cut], years[len(years) - 1 - cut]


class Gazetteer:
    """Per-kind name indexes with the song ids behind each name."""

    def __init__(self, names: Mapping[str, Mapping[str, Sequence[str]]], options: MatcherOptions = MatcherOptions()):
        """`names`: kind -> {display name -> song ids} (ids may be empty)."""
        unknown = set(names) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown gazetteer kinds {sorted(unknown)}; expected {KINDS}")
        self.years: tuple[int, int] | None = None  # first and last year of the catalog's songs, when known
        self._ids: dict[str, list[tuple[str, ...]]] = {}
        self._index: dict[str, NameIndex] = {}
        for kind, table in names.items():
            display = list(table)
            self._ids[kind] = [tuple(table[n]) for n in display]
            self._index[kind] = NameIndex(display, options)

    @classmethod
    def from_songs(cls, songs: Iterable, options: MatcherOptions = MatcherOptions()) -> "Gazetteer":
        """Artists (each credited artist and the whole credit), titles, albums, genres."""
        tables: dict[str, dict[str, list[str]]] = {k: defaultdict(list) for k in KINDS}
        songs = list(songs)
        for song in songs:
            credits = (song.artist, *song.artists) if len(song.artists) > 1 else (song.artist,)
            for name in credits:
                tables["artist"][name].append(song.id)
            tables["track"][song.title].append(song.id)
            if song.album:
                tables["album"][song.album].append(song.id)
            for genre in song.genres:
                tables["genre"][genre].append(song.id)
        gazetteer = cls({k: dict(v) for k, v in tables.items()}, options)
        gazetteer.years = catalog_years(songs)
        return gazetteer

    @classmethod
    def from_names(cls, names: Mapping[str, Iterable[str]], options: MatcherOptions = MatcherOptions()) -> "Gazetteer":
        """Name lists without songs (for evaluation with names from training data)."""
        return cls({k: {n: () for n in v} for k, v in names.items()}, options)

    def kinds(self) -> tuple[str, ...]:
        return tuple(self._index)

    def names(self, kind: str) -> list[str]:
        index = self._index.get(kind)
        return list(index.names) if index else []

    def size(self, kind: str) -> int:
        index = self._index.get(kind)
        return len(index) if index else 0

    def clear_cache(self) -> None:
        """Forget remembered look-ups (benchmarks measure cold requests)."""
        for index in self._index.values():
            index.clear_cache()

    def match(self, span: str, kind: str, limit: int = 5, min_score: float | None = None) -> list[EntityMatch]:
        """Best catalog names of one kind for a normalized span, best first."""
        index = self._index.get(kind)
        if index is None or not span:
            return []
        return [EntityMatch(kind=kind, name=h.name, score=h.score, heard=span,
                            song_ids=self._ids[kind][h.index], how=h.how)
                for h in index.search(span, limit=limit, min_score=min_score)]

    def exact(self, span: str, kind: str) -> EntityMatch | None:
        """The catalog name of one kind a normalized span is exactly (spaces aside), or None; no fuzzy search."""
        index = self._index.get(kind)
        hit = index.exact(span) if index is not None and span else None
        if hit is None:
            return None
        return EntityMatch(kind=kind, name=hit.name, score=hit.score, heard=span, song_ids=self._ids[kind][hit.index],
                           how=hit.how)
