"""Is an enrolment recording one person speaking? Silence, music/tones/noise and two voices are refused.

- speech: Silero VAD (assistant.audio.silero, the silero-vad package's ONNX
  model, trained with music and noise as non-speech) must find at least
  MIN_SPEECH_S of speech; below it the recording is "silence" when its level
  is under SILENCE_DBFS, else "not speech" (music, a tone, noise);
- one voice: the 1.6 s windows' embeddings must all be near each other (two
  people taking turns leave windows far apart), and in an enrolment of several
  recordings each must be near the mean of the others.

The limits were set on real speech of bench/voice_id.py's tune half against
tones, synthesized music, kitchen noise and two-speaker recordings (figures in
bench/RESULTS.md). Two people talking at the same moment are not detected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assistant.voices.embedder import SAMPLE_RATE_HZ, Embedding
from assistant.voices.identify import centroid

MIN_SPEECH_S = 0.8               # Silero speech an enrolment recording needs (real read prompts: >= 0.96 s seen)
SILERO_SPEECH_PROB = 0.5
SILERO_WINDOW_S = 512 / SAMPLE_RATE_HZ
SILENCE_DBFS = -50.0             # below this RMS level the recording is called silent
MIN_WINDOW_SIMILARITY = 0.40     # any two 1.6 s windows of one recording
MIN_RECORDING_SIMILARITY = 0.65  # one recording against the mean of the enrolment's others


class NotOneSpeaker(ValueError):
    """An enrolment recording refused; the message says why and what to do."""


@dataclass(frozen=True)
class Measures:
    speech_s: float                # Silero speech
    level_dbfs: float              # RMS level of the whole recording
    min_window_similarity: float   # 1.0 with a single window


def silero_speech_s(audio: np.ndarray) -> float:
    from assistant.audio.silero import SileroVad

    probs = np.asarray(SileroVad().probabilities(np.asarray(audio, dtype=np.float32)))
    return float((probs >= SILERO_SPEECH_PROB).sum() * SILERO_WINDOW_S)


def level_dbfs(audio: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0
    return 20 * np.log10(max(rms, 1e-10))


def measure(audio: np.ndarray, emb: Embedding) -> Measures:
    """`audio`: the recording as given; `emb`: its embedding."""
    w = emb.windows
    min_sim = float((w @ w.T).min()) if len(w) > 1 else 1.0
    return Measures(silero_speech_s(audio), level_dbfs(audio), min_sim)


def check_recording(m: Measures) -> None:
    if m.speech_s < MIN_SPEECH_S:
        if m.level_dbfs < SILENCE_DBFS:
            raise NotOneSpeaker(f"nothing heard: the recording is silent ({m.level_dbfs:.0f} dBFS); read the "
                                "sentence aloud close to the microphone")
        raise NotOneSpeaker(f"no speech heard ({m.speech_s:.1f} s of speech, at least {MIN_SPEECH_S:.1f} s needed): "
                            "it sounds like music, a tone or noise; record one person reading, without music")
    if m.min_window_similarity < MIN_WINDOW_SIMILARITY:
        raise NotOneSpeaker(f"more than one voice heard (parts of the recording match each other only "
                            f"{m.min_window_similarity:.2f}, one voice is above {MIN_WINDOW_SIMILARITY}); "
                            "record one person alone")


def check_together(vectors: np.ndarray) -> None:
    """Each recording of one enrolment against the mean of the others."""
    if len(vectors) < 2:
        return
    for i in range(len(vectors)):
        sim = float(vectors[i] @ centroid(np.delete(vectors, i, axis=0)))
        if sim < MIN_RECORDING_SIMILARITY:
            raise NotOneSpeaker(f"recording {i + 1} does not sound like the same person as the others "
                                f"(similarity {sim:.2f}, one person is above {MIN_RECORDING_SIMILARITY}); "
                                "record all of them with the same person")
