"""Names the final decoding is biased towards: the configured catalog's titles, artists, albums and genres."""

from __future__ import annotations

import re

from assistant.config import Config

# "Song - Remastered 2011", "Song (feat. X)", "Song [Live]": people say only "Song".
_TITLE_DECORATION = re.compile(r"\s+-\s+.*$|\s*[\(\[][^\)\]]*[\)\]]")


def spoken_title(title: str) -> str:
    """The part of a catalog title people say."""
    return _TITLE_DECORATION.sub("", title).strip() or title


def catalog_phrases(cfg: Config) -> list[str]:
    """Every title, artist, album and genre of the catalog the recommender serves (raw text; normalized by the recognizer)."""
    from assistant.recommend.catalog import load_catalog
    from assistant.recommend.song import split_artists

    names: set[str] = set()
    for song in load_catalog(cfg.recommend).songs:
        if song.title:
            names.add(spoken_title(song.title))
        if song.artist:
            names.update(split_artists(song.artist))
        if song.album:
            names.add(spoken_title(song.album))
        names.update(g for g in song.genres if g)
    return sorted(names)
