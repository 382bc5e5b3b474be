"""CSV catalogs: the Spotify Million Song Dataset (artist, song, link, text) and
Spotify track/feature tables (artist, song, year, popularity, valence, ...).

Both are read by one loader that maps known column names to `Song` fields.
Only a title column and an artist column are required; a file without them is
an `AssistantError` naming the missing columns. A row without a title or an
artist is skipped; a bad optional field (a year of "#VALUE!") is dropped and the
row kept. Both are reported with the row's first line number.

An artist-genre table (spotify-artist-genres.csv: artists, genres, ...) is not a
catalog; `load_artist_genres` reads it into a map the track loader joins on.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from assistant.asr.text import normalize_text
from assistant.errors import AssistantError
from assistant.recommend.loaders import fields as F
from assistant.recommend.loaders.report import LoadReport
from assistant.recommend.song import UNIT_FEATURES, make_song, split_artists

# Song field -> accepted CSV column names (lowercased), first match wins.
COLUMNS: dict[str, tuple[str, ...]] = {
    "title": ("song", "title", "track_name", "track", "name"),
    "artist": ("artist", "artists", "artist_name"),
    "album": ("album", "album_name"),
    "year": ("year", "release_date"),
    "genres": ("genre", "genres"),
    "lyrics": ("text", "lyrics"),
    "popularity": ("popularity",),
    "tempo_bpm": ("tempo",),
    "source": ("uri", "source", "path"),
    **{name: (name,) for name in UNIT_FEATURES},
}
REQUIRED = ("title", "artist")
GENRE_TABLE_COLUMNS = ("artists", "genres")
MAX_FIELD_CHARS = 1_000_000  # lyrics can be long; the csv default of 128 KiB is not enough


def _open(path: Path):
    try:
        return path.open(newline="", encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise AssistantError(f"cannot read catalog {path}: {exc.strerror}") from None


def read_header(path: Path) -> list[str]:
    """The lowercased column names of a CSV file ([] when it is empty)."""
    with _open(path) as fh:
        row = next(csv.reader(fh), [])
    return [c.strip().lower() for c in row]


def is_artist_genre_table(path: Path) -> bool:
    """True for an artist -> genres table (has artists and genres, but no song column)."""
    header = set(read_header(path))
    return set(GENRE_TABLE_COLUMNS) <= header and not header & set(COLUMNS["title"])


def _column_map(header: list[str], path: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    for field_name, names in COLUMNS.items():
        for name in names:
            if name in header:
                found[field_name] = header.index(name)
                break
    missing = [f for f in REQUIRED if f not in found]
    if missing:
        wanted = "; ".join(f"{f} (one of: {', '.join(COLUMNS[f])})" for f in missing)
        raise AssistantError(
            f"catalog {path} lacks the column(s) {wanted}; its columns are: {', '.join(header) or 'none'}")
    return found


def _records(path: Path):
    """(first line number, row) for each data row, with the header first."""
    csv.field_size_limit(min(sys.maxsize, MAX_FIELD_CHARS))
    with _open(path) as fh:
        reader = csv.reader(fh)
        end_line = 0
        for row in reader:
            start, end_line = end_line + 1, reader.line_num
            yield start, row


def load_artist_genres(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Normalized artist name -> genres, from a table like spotify-artist-genres.csv."""
    path = Path(path)
    header = read_header(path)
    missing = [c for c in GENRE_TABLE_COLUMNS if c not in header]
    if missing:
        raise AssistantError(f"artist-genre table {path} lacks the column(s) {', '.join(missing)}; "
                             f"its columns are: {', '.join(header) or 'none'}")
    a_col, g_col = header.index("artists"), header.index("genres")
    out: dict[str, tuple[str, ...]] = {}
    for line, row in _records(path):
        if line == 1 or len(row) <= max(a_col, g_col):
            continue
        try:
            genres = F.parse_genres(row[g_col])
        except ValueError:
            continue
        if genres:
            out[normalize_text(row[a_col])] = genres
    return out


def genres_for_artist(artist: str, table: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Genres of a credit: the whole name first, else the union of its artists'."""
    whole = table.get(normalize_text(artist))
    if whole:
        return whole
    out: list[str] = []
    for part in split_artists(artist):
        out.extend(table.get(normalize_text(part), ()))
    return tuple(dict.fromkeys(out))


_PARSERS = {
    "year": F.parse_year,
    "genres": F.parse_genres,
    "popularity": F.parse_popularity,
    "tempo_bpm": F.parse_tempo,
    **{name: (lambda v, n=name: F.parse_unit(v, n)) for name in UNIT_FEATURES},
}


def load_csv(path: str | Path, artist_genres: dict[str, tuple[str, ...]] | None = None) -> LoadReport:
    """Read a track CSV (Million Song Dataset or Spotify features) into songs."""
    path = Path(path)
    report = LoadReport(source=str(path))
    columns: dict[str, int] | None = None
    for line, row in _records(path):
        if columns is None:
            columns = _column_map([c.strip().lower() for c in row], path)
            continue
        if not any(cell.strip() for cell in row):
            continue
        report.rows += 1
        where = f"line {line}"
        values = {f: (row[i].strip() if i < len(row) else "") for f, i in columns.items()}
        if max(columns.values()) >= len(row):
            report.skip(where, f"{len(row)} fields, expected at least {max(columns.values()) + 1}")
            continue
        title, artist = values.pop("title"), values.pop("artist")
        if not title or not artist:
            report.skip(where, "no title" if not title else "no artist")
            continue
        facts: dict = {}
        for name, raw in values.items():
            parser = _PARSERS.get(name)
            if parser is None:
                facts[name] = raw
                continue
            try:
                facts[name] = parser(raw)
            except ValueError as exc:
                report.repair(where, str(exc))
        if artist_genres:
            joined = genres_for_artist(artist, artist_genres)
            facts["genres"] = tuple(dict.fromkeys(tuple(facts.get("genres", ())) + joined))
        facts = {k: v for k, v in facts.items() if v is not None}
        report.songs.append(make_song(title, artist, **facts))
    if columns is None:
        raise AssistantError(f"catalog {path} is empty; expected a CSV header with song and artist columns")
    return report
