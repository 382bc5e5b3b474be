"""Answers to questions about the music: "what's playing", "who sings this", "what album is this from".

`answer_question(question, song)` words an answer from the catalog's facts
about one song (the one playing, or the one the question names: "who sings
someone like you"). Facts the catalog lacks are said to be missing, never
guessed. The daemon sends the result as an `answer` event.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.nlu.intent import QUESTIONS
from assistant.recommend.song import Song

MAX_GENRES = 3


@dataclass(frozen=True)
class Answer:
    question: str  # one of QUESTIONS
    text: str  # one sentence for the screen (or a text-to-speech voice)
    song: Song | None = None  # the song the answer is about; None when nothing is playing

    def to_dict(self) -> dict:
        song = None
        if self.song is not None:
            s = self.song
            song = {"id": s.id, "title": s.title, "artist": s.artist, "album": s.album or None,
                    "year": s.year or None, "genres": list(s.genres)}
        return {"question": self.question, "text": self.text, "song": song}


def answer_question(question: str, song: Song | None) -> Answer:
    """The answer to one of QUESTIONS about `song` (None: nothing is playing)."""
    question = question if question in QUESTIONS else "song"
    if song is None:
        return Answer(question, "Nothing is playing right now, so there is no song to tell you about.")
    title = f'"{song.title}"'
    if question == "artist":
        text = f"{title} is by {song.artist}."
    elif question == "album":
        text = (f"{title} by {song.artist} is on the album {song.album}." if song.album
                else f"The catalog does not say which album {title} by {song.artist} is from.")
    elif question == "year":
        text = (f"{title} by {song.artist} came out in {song.year}." if song.year
                else f"The catalog has no release year for {title} by {song.artist}.")
    elif question == "genre":
        genres = list(song.genres)[:MAX_GENRES]
        text = (f"{title} by {song.artist} is {', '.join(genres)}." if genres
                else f"The catalog lists no genre for {title} by {song.artist}.")
    else:
        facts = [f for f in (song.album and f"from {song.album}", song.year and f"{song.year}") if f]
        text = f"This is {title} by {song.artist}" + (f" ({', '.join(facts)})" if facts else "") + "."
    return Answer(question, text, song)
