"""Enrolment: recordings of one person -> checked embeddings in the store, with warnings.

    enrol(embedder, store, name, recordings, others) -> Enrolment

Every recording must pass speech_check (voiced speech, a speech rhythm, one
voice) and the recordings must sound like one person; otherwise `NotOneSpeaker`
says which recording and why, and nothing is stored. A new voice very near an
enrolled person's (cosine of the centroids >= NEAR_IDENTICAL) is stored with a
warning: the two may be taken for each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from assistant.voices import speech_check
from assistant.voices.embedder import VoiceEmbedder
from assistant.voices.identify import VoiceIndex, centroid
from assistant.voices.speech_check import NotOneSpeaker
from assistant.voices.store import VoiceStore, check_name

MODEL_ID = "resemblyzer-0.1.4"   # embeddings of another model are never compared with these
MIN_RECORDINGS = 1
MAX_RECORDINGS = 10
MAX_RECORDING_S = 30.0
NEAR_IDENTICAL = 0.85            # centroid cosine above which two enrolled people may be mixed up


@dataclass(frozen=True)
class Enrolment:
    name: str
    recordings: int
    speech_s: float
    warnings: tuple[str, ...] = field(default_factory=tuple)


def embed_recordings(embedder: VoiceEmbedder, recordings: list[np.ndarray]) -> tuple[np.ndarray, list[float]]:
    """Checked embeddings (n, d) of the recordings; NotOneSpeaker for the first that fails."""
    if not MIN_RECORDINGS <= len(recordings) <= MAX_RECORDINGS:
        raise NotOneSpeaker(f"{len(recordings)} recordings given; expected {MIN_RECORDINGS} to {MAX_RECORDINGS} "
                            "(three sentences read aloud is best)")
    vectors, secs = [], []
    for i, audio in enumerate(recordings, 1):
        if len(audio) > MAX_RECORDING_S * 16000:
            raise NotOneSpeaker(f"recording {i} is {len(audio) / 16000:.0f} s long; expected at most {MAX_RECORDING_S:.0f} s")
        emb = embedder.embed(audio)
        try:
            speech_check.check_recording(speech_check.measure(audio, emb))
        except NotOneSpeaker as exc:
            raise NotOneSpeaker(f"recording {i}: {exc}" if len(recordings) > 1 else str(exc)) from None
        vectors.append(emb.vector)
        secs.append(emb.speech_s)
    stacked = np.stack(vectors)
    speech_check.check_together(stacked)
    return stacked, secs


def near_voices(name: str, vectors: np.ndarray, others: VoiceIndex) -> tuple[str, ...]:
    """Warnings for enrolled people (other than `name`) whose voice is near this one."""
    scores = others.scores(centroid(vectors))
    return tuple(f"{name}'s voice is very close to {other}'s (similarity {s:.2f}): the two may be taken for each other"
                 for other, s in zip(others.names, scores) if other != name and s >= NEAR_IDENTICAL)


def enrol(embedder: VoiceEmbedder, store: VoiceStore, name: str, recordings: list[np.ndarray],
          others: VoiceIndex) -> Enrolment:
    name = check_name(name)
    vectors, secs = embed_recordings(embedder, recordings)
    warnings = near_voices(name, vectors, others)
    store.add(name, vectors, MODEL_ID, secs)
    return Enrolment(name, len(vectors), float(sum(secs)), warnings)
