"""The catalog: every song the assistant can recommend, merged from its sources.

`load_catalog(config)` reads the default catalog shipped in `index/` (unless
`use_default_catalog = false`), the `catalogs` and the `music_folders` of the
`[recommend]` config section. Records of the same song (same normalized artist
and title) are merged into one `Song`; a song found in a music folder thereby
gets a playable source while keeping the facts of the other catalogs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from assistant.config import REPO_ROOT, RecommendConfig, resolve_path
from assistant.errors import AssistantError
from assistant.recommend.loaders import LoadReport, load_sources
from assistant.recommend.song import Song, merge_songs

DEFAULT_CATALOG = REPO_ROOT / "index" / "default_catalog.csv"


@dataclass(frozen=True)
class Catalog:
    """Songs in a stable order (first appearance wins), with lookup by id."""

    songs: tuple[Song, ...]
    reports: tuple[LoadReport, ...] = ()
    duplicates: int = 0  # records merged into an earlier record of the same song
    _by_id: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_songs(cls, songs: Iterable[Song], reports: Sequence[LoadReport] = ()) -> "Catalog":
        merged: dict[str, Song] = {}
        duplicates = 0
        for song in songs:
            if song.id in merged:
                merged[song.id] = merge_songs(merged[song.id], song)
                duplicates += 1
            else:
                merged[song.id] = song
        ordered = tuple(merged.values())
        return cls(ordered, tuple(reports), duplicates, {s.id: i for i, s in enumerate(ordered)})

    @classmethod
    def from_reports(cls, reports: Sequence[LoadReport]) -> "Catalog":
        return cls.from_songs((s for r in reports for s in r.songs), reports)

    def __len__(self) -> int:
        return len(self.songs)

    def __contains__(self, song_id: object) -> bool:
        return song_id in self._by_id

    def get(self, song_id: str) -> Song | None:
        i = self._by_id.get(song_id)
        return None if i is None else self.songs[i]

    def position(self, song_id: str) -> int | None:
        """Row of a song in `songs` (and in the vector index)."""
        return self._by_id.get(song_id)

    def summary(self) -> str:
        lines = [r.summary() for r in self.reports]
        lines.append(f"catalog: {len(self.songs)} songs ({self.duplicates} duplicate records merged)")
        return "\n".join(lines)


def fingerprint_texts(texts: Iterable[str]) -> str:
    """SHA-256 over texts in order (what an index was built from)."""
    h = hashlib.sha256()
    for text in texts:
        h.update(text.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def song_fingerprint(songs: Iterable[Song]) -> str:
    """SHA-256 over all facts of the songs, in order."""
    return fingerprint_texts(json.dumps(s.to_dict(with_lyrics=True), sort_keys=True) for s in songs)


def catalog_paths(cfg: RecommendConfig) -> list[Path]:
    """The sources a config names, default catalog first."""
    paths = [DEFAULT_CATALOG] if cfg.use_default_catalog else []
    paths += [resolve_path(p) for p in cfg.catalogs]
    paths += [resolve_path(p) for p in cfg.music_folders]
    return paths


def load_catalog(cfg: RecommendConfig, extra: Sequence[str | Path] = ()) -> Catalog:
    """Every configured source (plus `extra` paths) merged into one catalog."""
    paths = catalog_paths(cfg) + [Path(p).expanduser() for p in extra]
    if not paths:
        raise AssistantError("no catalog configured: [recommend] use_default_catalog is false and "
                             "catalogs and music_folders are empty; expected at least one source")
    catalog = Catalog.from_reports(load_sources(paths))
    if not catalog.songs:
        raise AssistantError(f"the catalog has no usable songs ({'; '.join(r.summary() for r in catalog.reports)}); "
                             "expected rows with a title and an artist")
    return catalog
