"""Moods <-> audio features.

Two directions:

- `mood_fit(song, mood)`: how well a song's valence / energy / danceability /
  tempo / acousticness fit a canonical mood asked for ("sad"), 0..1, or None
  when the song has no features;
- `mood_words(song)`: words describing a song's features ("sad", "calm",
  "danceable"), put into the song's embedded document so that free text
  ("something mellow for a rainy day") finds it semantically.

Canonical moods are the keys of `assistant.nlu.lexicon.MOODS`.
"""

from __future__ import annotations

from assistant.recommend.song import Song

# mood -> ((feature, direction, weight), ...): direction +1 wants high values, -1 low ones.
MOOD_TARGETS: dict[str, tuple[tuple[str, int, float], ...]] = {
    "sad": (("valence", -1, 2.0), ("energy", -1, 1.0), ("danceability", -1, 0.5)),
    "happy": (("valence", +1, 2.0), ("energy", +1, 0.7), ("danceability", +1, 0.5)),
    "energetic": (("energy", +1, 2.0), ("tempo", +1, 1.0), ("acousticness", -1, 0.5)),
    "calm": (("energy", -1, 2.0), ("acousticness", +1, 1.0), ("tempo", -1, 0.5)),
    "romantic": (("acousticness", +1, 1.0), ("energy", -1, 1.0), ("valence", +1, 0.3)),
    "angry": (("energy", +1, 2.0), ("valence", -1, 1.5), ("acousticness", -1, 0.5)),
    "party": (("danceability", +1, 2.0), ("energy", +1, 1.0), ("valence", +1, 0.5)),
}

# (feature, threshold, above?, word) rules for describing a song.
_DESCRIBE: tuple[tuple[str, float, bool, str], ...] = (
    ("valence", 0.3, False, "sad melancholic"),
    ("valence", 0.7, True, "happy cheerful"),
    ("energy", 0.8, True, "energetic intense"),
    ("energy", 0.4, False, "calm mellow"),
    ("danceability", 0.75, True, "danceable party"),
    ("acousticness", 0.6, True, "acoustic"),
    ("tempo", 0.6, True, "fast"),
    ("tempo", 0.25, False, "slow"),
)


def mood_fit(song: Song, mood: str) -> float | None:
    """Weighted fit of the song's features to a mood, 0..1 (None: no features or unknown mood)."""
    targets = MOOD_TARGETS.get(mood)
    feats = song.features()
    if not targets or not feats:
        return None
    total = weight_sum = 0.0
    for name, direction, weight in targets:
        value = feats.get(name)
        if value is None:
            continue
        total += weight * (value if direction > 0 else 1.0 - value)
        weight_sum += weight
    return total / weight_sum if weight_sum else None


def mood_words(song: Song) -> list[str]:
    """Words for the song's audio features (empty when it has none)."""
    feats = song.features()
    words: list[str] = []
    for name, threshold, above, text in _DESCRIBE:
        value = feats.get(name)
        if value is not None and (value > threshold if above else value < threshold):
            words.extend(text.split())
    return words


def describe_fit(song: Song, mood: str) -> str:
    """A short reason naming the feature that makes the song fit a mood ("low valence 0.18")."""
    targets = MOOD_TARGETS.get(mood, ())
    feats = song.features()
    for name, direction, _ in targets:
        if name in feats:
            value = feats[name]
            label = "tempo" if name == "tempo" else name
            shown = f"{song.tempo_bpm:.0f} bpm" if name == "tempo" and song.tempo_bpm else f"{value:.2f}"
            return f"{'high' if direction > 0 else 'low'} {label} {shown}"
    return ""
