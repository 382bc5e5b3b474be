"""Silero VAD (the `silero-vad` package's ONNX model) as a frame classifier for the Endpointer.

Silero reads 512-sample windows at 16 kHz (32 ms) with 64 samples of context
and a recurrent state; the Endpointer's frames are 10-30 ms. `SileroVad`
buffers the samples, runs the model on every whole window as it fills, and
answers each frame with the latest window's speech probability, with
hysteresis: a frame is speech when the probability reaches `threshold`, and
stays speech until it falls below `threshold - HYSTERESIS` (Silero's own
streaming iterator does the same, with 0.15).

It answers `is_speech(pcm16_bytes, sample_rate_hz)` like webrtcvad.Vad, so the
Endpointer takes either. The model is loaded with onnxruntime, one thread, from
the installed package; nothing is downloaded.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from assistant.asr.features import SAMPLE_RATE_HZ

WINDOW = 512            # samples per model call at 16 kHz
CONTEXT = 64            # samples of the previous window the model sees again
STATE_SHAPE = (2, 1, 128)
HYSTERESIS = 0.15
MODEL_FILE = "silero_vad.onnx"


class SileroUnavailable(RuntimeError):
    """The silero-vad package (its ONNX model) or onnxruntime is not installed."""


def model_path() -> Path:
    try:
        path = Path(str(resources.files("silero_vad") / "data" / MODEL_FILE))
    except ModuleNotFoundError:
        raise SileroUnavailable("[vad] engine = \"silero\" needs the silero-vad package "
                                "(pip install --no-deps silero-vad; it ships the ONNX model)") from None
    if not path.is_file():
        raise SileroUnavailable(f"silero-vad is installed but its model {path} is missing")
    return path


@lru_cache(maxsize=1)
def shared_session():
    """One ONNX session for every stream (its `run` is thread-safe; each stream keeps its own state)."""
    return _session(model_path())


def _session(path: Path):
    try:
        import onnxruntime as ort
    except ImportError:
        raise SileroUnavailable("[vad] engine = \"silero\" needs onnxruntime (pip install onnxruntime)") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


class SileroVad:
    """One stream's Silero state. `probability` is the last window's speech probability."""

    def __init__(self, threshold: float = 0.5, session=None):
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"silero threshold must be between 0 and 1, got {threshold}")
        self.threshold = threshold
        self.session = session if session is not None else shared_session()
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._sr = np.array(SAMPLE_RATE_HZ, dtype=np.int64)
        self.probability = 0.0
        self._speech = False

    def probabilities(self, audio: np.ndarray) -> list[float]:
        """Feed float32 16 kHz samples; the probability of every window completed by them."""
        buf = np.concatenate([self._pending, audio.astype(np.float32, copy=False)])
        n = len(buf) // WINDOW
        out = []
        for i in range(n):
            window = buf[i * WINDOW:(i + 1) * WINDOW]
            x = np.concatenate([self._context, window])[None, :]
            prob, self._state = self.session.run(None, {"input": x, "state": self._state, "sr": self._sr})
            self._context = window[-CONTEXT:]
            out.append(float(prob[0, 0]))
        self._pending = buf[n * WINDOW:].copy()
        if out:
            self.probability = out[-1]
        return out

    def is_speech(self, pcm16: bytes, sample_rate_hz: int) -> bool:
        if sample_rate_hz != SAMPLE_RATE_HZ:
            raise ValueError(f"silero VAD runs at {SAMPLE_RATE_HZ} Hz, got {sample_rate_hz}")
        for p in self.probabilities(np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0) or [self.probability]:
            if p >= self.threshold:
                self._speech = True
            elif p < self.threshold - HYSTERESIS:
                self._speech = False
        return self._speech
