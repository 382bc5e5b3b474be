"""A folder of audio files as a catalog: tags read with mutagen, the file is the source.

Title, artist, album, genre and year come from the file's tags (mutagen's
"easy" interface covers ID3, Vorbis comments, MP4 and more). A file without a
title tag is named by its file name; one without an artist is credited to
`UNKNOWN_ARTIST`. A file mutagen cannot read, or that is not audio, is skipped
and reported with its path; so is a link to a file outside the folder (its tags
are not read, and the daemon would not serve it).
"""

from __future__ import annotations

import os
from pathlib import Path

from assistant.errors import AssistantError
from assistant.recommend.loaders import fields as F
from assistant.recommend.loaders.report import LoadReport
from assistant.recommend.song import make_song

AUDIO_EXTENSIONS = frozenset({".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac",
                              ".wav", ".aif", ".aiff", ".wma", ".wv", ".ape"})
UNKNOWN_ARTIST = "Unknown artist"


def _first(tags, key: str) -> str:
    try:
        values = tags.get(key) if tags is not None else None
    except (KeyError, ValueError):
        return ""
    if not values:
        return ""
    value = values[0] if isinstance(values, list) else values
    return str(value).strip()


def _all(tags, key: str) -> list[str]:
    try:
        values = tags.get(key) if tags is not None else None
    except (KeyError, ValueError):
        return []
    return [str(v) for v in values] if isinstance(values, list) else ([str(values)] if values else [])


def load_folder(path: str | Path) -> LoadReport:
    """Read every audio file under a folder (recursively) into songs."""
    import mutagen  # imported here: only music folders need it

    root = Path(path)
    if not root.is_dir():
        raise AssistantError(f"music folder {root} does not exist or is not a folder")
    report = LoadReport(source=str(root))
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):  # links to folders are not followed
        dirnames.sort()
        for name in sorted(filenames):
            file = Path(dirpath) / name
            if file.suffix.lower() not in AUDIO_EXTENSIONS:
                continue
            report.rows += 1
            if not file.resolve().is_relative_to(real_root):
                report.skip(str(file), f"a link to {file.resolve()}, outside the music folder; add that folder to "
                                       "[recommend] music_folders to include it")
                continue
            try:
                audio = mutagen.File(file, easy=True)
            except Exception as exc:  # mutagen raises many types for damaged files
                report.skip(str(file), f"unreadable audio file ({type(exc).__name__}: {exc})"[:200])
                continue
            if audio is None:
                report.skip(str(file), "not a recognized audio format")
                continue
            tags = audio.tags
            facts: dict = {"source": str(file.resolve())}
            album = _first(tags, "album")
            if album:
                facts["album"] = album
            genres: list[str] = []
            for value in _all(tags, "genre"):
                try:
                    genres.extend(F.parse_genres(value))
                except ValueError:
                    report.repair(str(file), f"genre tag {value[:30]!r} unreadable")
            if genres:
                facts["genres"] = tuple(dict.fromkeys(genres))
            try:
                year = F.parse_year(_first(tags, "date") or _first(tags, "originaldate"))
            except ValueError as exc:
                report.repair(str(file), str(exc))
                year = None
            if year is not None:
                facts["year"] = year
            title = _first(tags, "title") or file.stem.replace("_", " ")
            artist = _first(tags, "artist") or _first(tags, "albumartist") or UNKNOWN_ARTIST
            report.songs.append(make_song(title, artist, **facts))
    return report
