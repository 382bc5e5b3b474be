"""The text embedded for each song: title, artist, album, genres, mood words, era, lyrics excerpt.

Changing what goes into a document changes every vector: bump `DOC_VERSION`
so cached indexes are rebuilt.
"""

from __future__ import annotations

from assistant.recommend.mood import mood_words
from assistant.recommend.song import Song

DOC_VERSION = 1
LYRICS_EXCERPT_CHARS = 300
MAX_GENRES = 6


def song_document(song: Song) -> str:
    """One line describing a song for the sentence embedder."""
    parts = [f"{song.title} by {song.artist}"]
    if song.album:
        parts.append(f"album {song.album}")
    if song.genres:
        parts.append("genres: " + ", ".join(song.genres[:MAX_GENRES]))
    words = mood_words(song)
    if words:
        parts.append("mood: " + " ".join(words))
    if song.year:
        parts.append(f"{song.year // 10 * 10}s")
    if song.lyrics:
        excerpt = " ".join(song.lyrics.split())[:LYRICS_EXCERPT_CHARS]
        parts.append(f"lyrics: {excerpt}")
    return ". ".join(parts)
