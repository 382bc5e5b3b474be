"""JSONL catalogs: one JSON object per line with `Song` field names.

`title` and `artist` are required; every other field is optional and checked
like the CSV fields. `tempo` is accepted for `tempo_bpm`, `genre` for `genres`,
`song` for `title` and `text` for `lyrics`. The id is always derived from artist
and title, so records of one song from different catalogs merge.
"""

from __future__ import annotations

import json
from pathlib import Path

from assistant.errors import AssistantError
from assistant.recommend.loaders import fields as F
from assistant.recommend.loaders.report import LoadReport
from assistant.recommend.song import UNIT_FEATURES, make_song

ALIASES = {"tempo": "tempo_bpm", "genre": "genres", "song": "title", "text": "lyrics"}
TEXT_FIELDS = ("album", "lyrics", "source")
_PARSERS = {
    "year": F.parse_year,
    "genres": F.parse_genres,
    "popularity": F.parse_popularity,
    "tempo_bpm": F.parse_tempo,
    **{name: (lambda v, n=name: F.parse_unit(v, n)) for name in UNIT_FEATURES},
}


def load_jsonl(path: str | Path) -> LoadReport:
    """Read a JSONL catalog into songs; bad lines are skipped and reported."""
    path = Path(path)
    report = LoadReport(source=str(path))
    try:
        fh = path.open(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise AssistantError(f"cannot read catalog {path}: {exc.strerror}") from None
    with fh:
        for number, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            report.rows += 1
            where = f"line {number}"
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                report.skip(where, f"not JSON ({exc.msg})")
                continue
            if not isinstance(record, dict):
                report.skip(where, "not a JSON object")
                continue
            record = {ALIASES.get(k, k): v for k, v in record.items()}
            title, artist = record.get("title"), record.get("artist")
            if not isinstance(title, str) or not title.strip() or not isinstance(artist, str) or not artist.strip():
                report.skip(where, "needs non-empty string fields title and artist")
                continue
            facts: dict = {}
            for name in TEXT_FIELDS:
                if isinstance(record.get(name), str):
                    facts[name] = record[name]
            for name, parser in _PARSERS.items():
                if name not in record:
                    continue
                try:
                    value = parser(record[name])
                except ValueError as exc:
                    report.repair(where, str(exc))
                    continue
                if value is not None:
                    facts[name] = value
            report.songs.append(make_song(title, artist, **facts))
    return report
