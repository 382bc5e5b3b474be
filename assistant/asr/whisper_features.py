"""Whisper's log-mel front end, made streamable.

Whisper computes, for 16 kHz audio: a centred 400-sample (25 ms) Hann STFT
every 160 samples (10 ms), the power spectrum through 80 Slaney-normalized
mel filters, log10 clamped at 1e-10, a floor at (whole clip's maximum - 8),
then (x + 4) / 4.

Two things in that recipe look into the future, and both are changed here:
- the centring pads the clip's start by reflection: we pad 200 zeros instead,
  so frame k covers samples [160 k - 200, 160 k + 200) and needs nothing later;
- the floor uses the whole clip's maximum: we use the running maximum of the
  frames so far (`cummax`), which a stream carries in its state.

`WhisperFeatures.__call__(audio)` on a whole clip and `.stream()` fed the same
samples in any chunking give the same frames. The mel filterbank is data and
travels in the checkpoint (`state()`), like the other front end's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

WHISPER_SAMPLE_RATE_HZ = 16000
WHISPER_N_FFT = 400
WHISPER_HOP = 160
WHISPER_N_MELS = 80
LOG10_CLAMP = 1e-10
DYNAMIC_RANGE_LOG10 = 8.0  # the floor sits this far below the (running) maximum


@dataclass(frozen=True)
class WhisperFeatureConfig:
    sample_rate_hz: int = WHISPER_SAMPLE_RATE_HZ
    n_fft: int = WHISPER_N_FFT
    hop_length: int = WHISPER_HOP
    n_mels: int = WHISPER_N_MELS
    kind: str = "whisper"

    @property
    def win_length(self) -> int:
        return self.n_fft

    @property
    def left_pad(self) -> int:
        return self.n_fft // 2

    def num_frames(self, num_samples: int) -> int:
        """Frames of a stream that has received `num_samples` samples (zero left padding included)."""
        return max(0, 1 + (num_samples + self.left_pad - self.n_fft) // self.hop_length)

    def to_dict(self) -> dict:
        return asdict(self)


def _hz_to_mel_slaney(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = hz / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, mels)


def _mel_to_hz_slaney(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), f_sp * mels)


def slaney_mel_filterbank(cfg: WhisperFeatureConfig = WhisperFeatureConfig()) -> torch.Tensor:
    """librosa.filters.mel(sr, n_fft, n_mels) with Slaney scale and norm: shape (n_fft // 2 + 1, n_mels)."""
    fft_hz = np.fft.rfftfreq(cfg.n_fft, d=1.0 / cfg.sample_rate_hz)
    mel_hz = _mel_to_hz_slaney(np.linspace(_hz_to_mel_slaney(0.0), _hz_to_mel_slaney(cfg.sample_rate_hz / 2), cfg.n_mels + 2))
    fdiff = np.diff(mel_hz)
    ramps = np.subtract.outer(mel_hz, fft_hz)
    weights = np.zeros((cfg.n_mels, len(fft_hz)))
    for i in range(cfg.n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_hz[2:cfg.n_mels + 2] - mel_hz[:cfg.n_mels]))[:, None]
    return torch.from_numpy(weights.T.astype(np.float32))


def floor_and_scale(log_mel: torch.Tensor, running_max: float = -np.inf) -> tuple[torch.Tensor, float]:
    """Raw log10 mel (T, n_mels) -> Whisper-scaled features with a causal floor; returns the new running max."""
    if log_mel.shape[0] == 0:
        return log_mel, running_max
    frame_max = log_mel.amax(dim=1)
    ref = torch.cummax(frame_max, dim=0).values.clamp_min(running_max)
    out = torch.maximum(log_mel, (ref - DYNAMIC_RANGE_LOG10)[:, None])
    return (out + 4.0) / 4.0, float(ref[-1])


def whole_clip_floor_and_scale(log_mel: torch.Tensor) -> torch.Tensor:
    """Whisper's own floor for a whole clip (offline second pass): max(x, x.max() - 8), then (x + 4) / 4."""
    if log_mel.numel() == 0:
        return log_mel
    return (torch.maximum(log_mel, log_mel.max() - DYNAMIC_RANGE_LOG10) + 4.0) / 4.0


class WhisperFeatures:
    """Waveform -> Whisper log-mel frames (see module docstring)."""

    def __init__(self, cfg: WhisperFeatureConfig, mel_fb: torch.Tensor):
        if mel_fb.shape != (cfg.n_fft // 2 + 1, cfg.n_mels):
            raise ValueError(f"mel filterbank shape {tuple(mel_fb.shape)} does not match n_fft={cfg.n_fft}, n_mels={cfg.n_mels}")
        self.cfg = cfg
        self.mel_fb = mel_fb.float()
        self.window = torch.hann_window(cfg.n_fft, periodic=True)

    @classmethod
    def create(cls, cfg: WhisperFeatureConfig = WhisperFeatureConfig()) -> "WhisperFeatures":
        return cls(cfg, slaney_mel_filterbank(cfg))

    @classmethod
    def from_state(cls, state: dict) -> "WhisperFeatures":
        return cls(WhisperFeatureConfig(**state["config"]), state["mel_fb"])

    def state(self) -> dict:
        return {"config": self.cfg.to_dict(), "mel_fb": self.mel_fb.clone()}

    def log_mel(self, audio: torch.Tensor, padded: bool = False) -> torch.Tensor:
        """log10 mel power of float audio (N,) -> (frames, n_mels); `padded`: the zero left pad is already there."""
        if not padded:
            audio = torch.nn.functional.pad(audio, (self.cfg.left_pad, 0))
        if audio.shape[-1] < self.cfg.n_fft:
            return torch.zeros(0, self.cfg.n_mels)
        spec = torch.stft(audio, n_fft=self.cfg.n_fft, hop_length=self.cfg.hop_length, window=self.window,
                          center=False, return_complex=True)
        power = spec.real.square() + spec.imag.square()  # (freqs, frames)
        return torch.log10((power.transpose(0, 1) @ self.mel_fb).clamp_min(LOG10_CLAMP))

    def normalize(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Whole-utterance floor and scale of raw log10 mel frames (equal to what a stream produces)."""
        return floor_and_scale(log_mel.float())[0]

    def __call__(self, audio: np.ndarray | torch.Tensor) -> torch.Tensor:
        audio = torch.as_tensor(np.asarray(audio, dtype=np.float32))
        return self.normalize(self.log_mel(audio))

    def stream(self) -> "WhisperFeatureStream":
        return WhisperFeatureStream(self)


class WhisperFeatureStream:
    """Chunked Whisper features equal to the whole-clip result frame for frame."""

    def __init__(self, extractor: WhisperFeatures):
        self.extractor = extractor
        self._pending = np.zeros(extractor.cfg.left_pad, dtype=np.float32)
        self._running_max = -np.inf

    def accept(self, audio: np.ndarray) -> torch.Tensor:
        cfg = self.extractor.cfg
        self._pending = np.concatenate([self._pending, np.asarray(audio, dtype=np.float32).reshape(-1)])
        n = max(0, 1 + (len(self._pending) - cfg.n_fft) // cfg.hop_length)
        if n == 0:
            return torch.zeros(0, cfg.n_mels)
        used = (n - 1) * cfg.hop_length + cfg.n_fft
        raw = self.extractor.log_mel(torch.from_numpy(self._pending[:used]), padded=True)
        self._pending = self._pending[n * cfg.hop_length:]
        feats, self._running_max = floor_and_scale(raw, self._running_max)
        return feats
