"""Build index/default_catalog.csv from the shared data (run once; the result is committed).

    .venv/bin/python index/make_default_catalog.py ../shared/data/catalogs

Reads top-hits-2000-2019.csv (song facts, no lyrics) and spotify-artist-genres.csv,
merges duplicate songs, adds each artist's genres, keeps the columns the
recommender uses, and writes a Spotify-track CSV that the ordinary catalog
loader reads.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from assistant.recommend.catalog import Catalog
from assistant.recommend.loaders import load_sources

OUT = Path(__file__).resolve().parent / "default_catalog.csv"
COLUMNS = ("artist", "song", "year", "popularity", "danceability", "energy", "acousticness", "valence", "tempo", "genre")
MAX_GENRES = 8  # the artist-genre file lists up to ~20 per artist; the first few say enough


def _fmt(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}".rstrip("0").rstrip(".")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("catalogs", type=Path, help="folder with top-hits-2000-2019.csv and spotify-artist-genres.csv")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    reports = load_sources([args.catalogs / "top-hits-2000-2019.csv", args.catalogs / "spotify-artist-genres.csv"])
    for r in reports:
        print(r.summary()[:300], file=sys.stderr)
    catalog = Catalog.from_reports(reports)
    with args.out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(COLUMNS)
        for s in catalog.songs:
            w.writerow([s.artist, s.title, s.year or "", _fmt(s.popularity, 0), _fmt(s.danceability, 3),
                        _fmt(s.energy, 3), _fmt(s.acousticness, 4), _fmt(s.valence, 3), _fmt(s.tempo_bpm, 1),
                        ", ".join(s.genres[:MAX_GENRES])])
    print(f"wrote {len(catalog.songs)} songs to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
