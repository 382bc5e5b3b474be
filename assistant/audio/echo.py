"""Echo cancellation: the microphone minus what the speakers play, when the daemon is given that signal.

`EchoCanceller.process(mic, reference)` takes float32 16 kHz blocks of equal
length (the microphone and the reference, sample-aligned up to a delay the
filter covers) and returns the microphone with the echo removed. It runs
speexdsp's adaptive echo canceller (MDF; libspeexdsp through ctypes, Debian
package libspeexdsp1), alone: its residual-echo suppressor (speex_preprocess)
took the user's voice for echo while music played (a spoken command over
music came out at -24 dB instead of +10 dB over the residual), and the
recognizer was trained on noisy, not on denoised, speech.

It never stalls and never fails the audio path: without the library, with a
missing (None) reference, or a reference of the wrong length, the microphone
passes through unchanged and `state` says why. `state` is one of

    "active"            cancelling
    "no_reference"      no reference given for this block
    "reference_silent"  the reference has been silent for REFERENCE_SILENT_S while the microphone was not
    "not_converging"    the reference plays but the echo is not reduced (ERLE under MIN_ERLE_DB for
                        NOT_CONVERGING_S): a reference that drifts, lags more than the filter, has the
                        wrong rate, or is not what the speakers play
    "unavailable"       libspeexdsp is not installed

Pure DSP over samples: no clocks, no threads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from dataclasses import dataclass

import numpy as np

from assistant.asr.features import SAMPLE_RATE_HZ

FRAME_SAMPLES = 160            # 10 ms at 16 kHz: speexdsp's unit of work
SPEEX_ECHO_SET_SAMPLING_RATE = 24
SILENT_DB = -60.0              # a frame below this level (dBFS) is silence
REFERENCE_SILENT_S = 2.0
NOT_CONVERGING_S = 6.0
MIN_ERLE_DB = 3.0
ERLE_WINDOW_S = 2.0
STATES = ("active", "no_reference", "reference_silent", "not_converging", "unavailable")


@dataclass(frozen=True)
class EchoOptions:
    """`filter_ms`: the echo tail the filter covers (playback delay plus the room's reverberation)."""

    filter_ms: int = 300

    def __post_init__(self) -> None:
        if not 50 <= self.filter_ms <= 1000:
            raise ValueError(f"echo filter_ms must be 50 to 1000, got {self.filter_ms}")


class SpeexUnavailable(RuntimeError):
    pass


def _load_speexdsp():
    name = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        raise SpeexUnavailable("libspeexdsp is not installed (Debian package libspeexdsp1)") from None
    lib.speex_echo_state_init.restype = ctypes.c_void_p
    lib.speex_echo_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.speex_echo_state_destroy.argtypes = [ctypes.c_void_p]
    lib.speex_echo_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    lib.speex_echo_cancellation.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    return lib


def _level_db(x: np.ndarray) -> float:
    return 10.0 * math.log10(float(np.dot(x, x)) / max(len(x), 1) + 1e-12)


class EchoCanceller:
    """One microphone stream's canceller (speexdsp state is per stream)."""

    def __init__(self, options: EchoOptions = EchoOptions()):
        self.options = options
        self.state = "no_reference"
        self.error: str | None = None
        self.erle_db: float | None = None   # echo return loss enhancement over the last ERLE_WINDOW_S with a playing reference
        self._lib = None
        try:
            self._lib = _load_speexdsp()
        except SpeexUnavailable as exc:
            self.state, self.error = "unavailable", str(exc)
            return
        tail = SAMPLE_RATE_HZ * options.filter_ms // 1000
        self._echo = self._lib.speex_echo_state_init(FRAME_SAMPLES, tail)
        rate = ctypes.c_int(SAMPLE_RATE_HZ)
        self._lib.speex_echo_ctl(self._echo, SPEEX_ECHO_SET_SAMPLING_RATE, ctypes.byref(rate))
        self._mic = np.zeros(0, np.float32)
        self._ref = np.zeros(0, np.float32)
        self._in16 = np.zeros(FRAME_SAMPLES, np.int16)
        self._ref16 = np.zeros(FRAME_SAMPLES, np.int16)
        self._out16 = np.zeros(FRAME_SAMPLES, np.int16)
        self._silent_frames = 0
        self._low_erle_frames = 0
        self._erle_len = round(ERLE_WINDOW_S * SAMPLE_RATE_HZ / FRAME_SAMPLES)
        self._erle_in: list[float] = []
        self._erle_out: list[float] = []

    def process(self, mic: np.ndarray, reference: np.ndarray | None) -> np.ndarray:
        """The microphone with the echo of `reference` removed, for every whole 10 ms frame completed by
        this block (the rest waits for the next block, or `flush`). Without a usable reference the block
        comes back unchanged, after any samples still waiting."""
        mic = np.asarray(mic, dtype=np.float32).reshape(-1)
        if self._lib is None:
            return mic
        if reference is None or len(reference) != len(mic):
            if reference is not None:
                self.error = f"reference block of {len(reference)} samples for a microphone block of {len(mic)}"
            self.state = "no_reference"
            return np.concatenate([self.flush(), mic])
        self._mic = np.concatenate([self._mic, mic])
        self._ref = np.concatenate([self._ref, np.asarray(reference, dtype=np.float32).reshape(-1)])
        n = len(self._mic) // FRAME_SAMPLES
        out = np.empty(n * FRAME_SAMPLES, np.float32)
        for i in range(n):
            m = self._mic[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]
            r = self._ref[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]
            out[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES] = self._frame(m, r)
        self._mic = self._mic[n * FRAME_SAMPLES:]
        self._ref = self._ref[n * FRAME_SAMPLES:]
        return out

    def flush(self) -> np.ndarray:
        """The stream ended: the microphone samples still waiting for a whole frame, as they are."""
        rest = self._mic if self._lib is not None else np.zeros(0, np.float32)
        self._mic = self._ref = np.zeros(0, np.float32)
        return rest

    def _frame(self, mic: np.ndarray, ref: np.ndarray) -> np.ndarray:
        lib = self._lib
        np.copyto(self._in16, np.clip(mic * 32768.0, -32768, 32767).astype(np.int16))
        np.copyto(self._ref16, np.clip(ref * 32768.0, -32768, 32767).astype(np.int16))
        lib.speex_echo_cancellation(self._echo, self._in16.ctypes.data, self._ref16.ctypes.data, self._out16.ctypes.data)
        out = self._out16.astype(np.float32) / 32768.0
        self._watch(mic, ref, out)
        return out

    def _watch(self, mic: np.ndarray, ref: np.ndarray, out: np.ndarray) -> None:
        """Keep `state` and `erle_db` current from the levels of one frame."""
        ref_db, mic_db = _level_db(ref), _level_db(mic)
        if ref_db < SILENT_DB:
            self._silent_frames += 1 if mic_db >= SILENT_DB else 0
            if self._silent_frames * FRAME_SAMPLES >= REFERENCE_SILENT_S * SAMPLE_RATE_HZ:
                self.state = "reference_silent"
            return
        self._silent_frames = 0
        self._erle_in.append(float(np.dot(mic, mic)))
        self._erle_out.append(float(np.dot(out, out)))
        if len(self._erle_in) > self._erle_len:
            del self._erle_in[0], self._erle_out[0]
        self.erle_db = 10.0 * math.log10((sum(self._erle_in) + 1e-9) / (sum(self._erle_out) + 1e-9))
        if len(self._erle_in) == self._erle_len and self.erle_db < MIN_ERLE_DB:
            self._low_erle_frames += 1
        else:
            self._low_erle_frames = 0
        if self._low_erle_frames * FRAME_SAMPLES >= NOT_CONVERGING_S * SAMPLE_RATE_HZ:
            self.state = "not_converging"
        else:
            self.state = "active"
            self.error = None

    def close(self) -> None:
        if self._lib is not None and self._echo:
            self._lib.speex_echo_state_destroy(self._echo)
            self._echo = None

    def __del__(self) -> None:
        self.close()
