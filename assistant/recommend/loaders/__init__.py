"""Catalog loaders: files and folders -> `Song`s with a `LoadReport`.

`load_sources(paths)` is the entry point. Each path is one of:

- a folder: audio files read with mutagen (`folder.load_folder`);
- `*.jsonl` / `*.ndjson`: one song object per line (`jsonl.load_jsonl`);
- `*.csv`: the Million Song Dataset (artist, song, link, text) or a Spotify
  track/feature table (`csv_tracks.load_csv`);
- an artist-genre CSV (artists, genres, no song column), such as
  spotify-artist-genres.csv: not a catalog itself; its genres are joined onto
  the songs of the CSV catalogs given with it.
"""

from __future__ import annotations

from pathlib import Path

from assistant.errors import AssistantError
from assistant.recommend.loaders.csv_tracks import is_artist_genre_table, load_artist_genres, load_csv
from assistant.recommend.loaders.folder import load_folder
from assistant.recommend.loaders.jsonl import load_jsonl
from assistant.recommend.loaders.report import LoadReport

JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv",)

__all__ = ["LoadReport", "load_sources", "load_source", "load_artist_genres"]


def load_source(path: str | Path, artist_genres: dict[str, tuple[str, ...]] | None = None) -> LoadReport:
    """One catalog file or music folder -> its songs and report."""
    p = Path(path).expanduser()
    if p.is_dir():
        return load_folder(p)
    if not p.exists():
        raise AssistantError(f"catalog {p} does not exist; expected a CSV, JSONL file or a music folder")
    suffix = p.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return load_jsonl(p)
    if suffix in CSV_SUFFIXES:
        return load_csv(p, artist_genres)
    raise AssistantError(
        f"catalog {p} has an unknown type '{suffix}'; expected .csv, .jsonl, .ndjson or a music folder")


def load_sources(paths: list[str | Path]) -> list[LoadReport]:
    """Several sources; artist-genre tables among them are joined onto the CSV catalogs."""
    genre_paths = [Path(p) for p in paths
                   if Path(p).suffix.lower() in CSV_SUFFIXES and Path(p).is_file() and is_artist_genre_table(Path(p))]
    genres: dict[str, tuple[str, ...]] = {}
    for p in genre_paths:
        genres.update(load_artist_genres(p))
    return [load_source(p, genres or None) for p in paths if Path(p) not in genre_paths]
