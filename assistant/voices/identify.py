"""Which enrolled person spoke: the nearest voice above the threshold, else the household default.

A person's voice is the unit mean of their enrolment embeddings (a centroid);
an utterance's score against a person is the cosine of its embedding with that
centroid. The best score wins if it reaches `threshold`; below it (a stranger,
a guest, a voice too far from every enrolment) the household default profile
is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def centroid(vectors: np.ndarray) -> np.ndarray:
    """Unit mean of unit vectors (n, d) -> (d,)."""
    mean = np.asarray(vectors, dtype=np.float32).mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


@dataclass(frozen=True)
class Identification:
    user: str            # the person, or the default user
    score: float         # cosine with the best person's centroid (nan when nobody is enrolled)
    best: str | None     # the nearest enrolled person even when below the threshold
    recognized: bool     # score >= threshold


class VoiceIndex:
    """Centroids of the enrolled people, ready to compare (immutable: re-build after a change)."""

    def __init__(self, voices: dict[str, np.ndarray]):
        self.names = tuple(sorted(voices))
        self.matrix = (np.stack([centroid(voices[n]) for n in self.names]) if self.names
                       else np.zeros((0, 0), np.float32))

    def __len__(self) -> int:
        return len(self.names)

    def scores(self, vector: np.ndarray) -> np.ndarray:
        return self.matrix @ np.asarray(vector, dtype=np.float32) if self.names else np.zeros(0, np.float32)

    def identify(self, vector: np.ndarray, threshold: float, default_user: str) -> Identification:
        scores = self.scores(vector)
        if len(scores) == 0 or not np.isfinite(scores).all():
            return Identification(default_user, float("nan"), None, False)
        i = int(np.argmax(scores))
        score = float(scores[i])
        ok = score >= threshold
        return Identification(self.names[i] if ok else default_user, score, self.names[i], ok)
