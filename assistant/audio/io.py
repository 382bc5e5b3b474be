"""Reading audio files: any format libsndfile reads, any rate, mixed to mono 16 kHz float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from assistant.asr.features import SAMPLE_RATE_HZ
from assistant.errors import AssistantError

MAX_FILE_DURATION_S = 3600.0


def to_mono(audio: np.ndarray) -> np.ndarray:
    """(frames,) or (frames, channels) -> (frames,) by averaging channels."""
    return audio if audio.ndim == 1 else audio.mean(axis=1)


def resample(audio: np.ndarray, from_hz: int, to_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    if from_hz == to_hz or len(audio) == 0:
        return audio.astype(np.float32, copy=False)
    return soxr.resample(audio, from_hz, to_hz, quality="HQ").astype(np.float32, copy=False)


def load_audio(path: str | Path, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Read a WAV/FLAC/OGG file -> float32 mono at `sample_rate_hz` in [-1, 1].

    Raises AssistantError naming the file when it is missing, unreadable, or
    longer than an hour.
    """
    p = Path(path)
    if not p.is_file():
        raise AssistantError(f"audio file {p} not found")
    try:
        info = sf.info(str(p))
        if info.frames / max(info.samplerate, 1) > MAX_FILE_DURATION_S:
            raise AssistantError(f"audio file {p} is {info.frames / info.samplerate:.0f} s long, expected at most {MAX_FILE_DURATION_S:.0f} s")
        audio, rate = sf.read(str(p), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AssistantError(f"audio file {p} could not be read ({exc}); expected WAV, FLAC or OGG") from None
    return resample(to_mono(audio), rate, sample_rate_hz)


def pcm16_to_float(data: bytes) -> np.ndarray:
    """Little-endian 16-bit PCM bytes -> float32 in [-1, 1)."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
