"""Log-mel features: the recognizer's audio front end.

This module owns the audio constants. Features are S = log(M(f) + eps): power
spectrum of 25 ms Hann-windowed frames every 10 ms (torch.stft, no centering),
80 mel bins (HTK mel scale), then per-bin mean/variance normalization.

The mel filterbank and the normalization statistics are *data*, stored in the
checkpoint (`FeatureExtractor.state()`), never rebuilt from code defaults at
inference time, so a model always sees the features it was trained on.

Frame k covers samples [k * hop, k * hop + win). A clip of N samples gives
max(0, 1 + (N - win) // hop) frames, and `StreamingFeatures` fed the same
samples in chunks of any size emits exactly those frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

SAMPLE_RATE_HZ = 16000
WINDOW_MS = 25
HOP_MS = 10
N_MELS = 80
N_FFT = 512
LOG_EPS = 1e-6


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate_hz: int = SAMPLE_RATE_HZ
    window_ms: int = WINDOW_MS
    hop_ms: int = HOP_MS
    n_mels: int = N_MELS
    n_fft: int = N_FFT
    f_min_hz: float = 20.0
    f_max_hz: float = 7600.0

    @property
    def win_length(self) -> int:
        return self.sample_rate_hz * self.window_ms // 1000

    @property
    def hop_length(self) -> int:
        return self.sample_rate_hz * self.hop_ms // 1000

    def num_frames(self, num_samples: int) -> int:
        return max(0, 1 + (num_samples - self.win_length) // self.hop_length)

    def to_dict(self) -> dict:
        return asdict(self)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(cfg: FeatureConfig) -> torch.Tensor:
    """Triangular HTK-mel filters, shape (n_fft // 2 + 1, n_mels)."""
    n_freqs = cfg.n_fft // 2 + 1
    fft_hz = np.linspace(0, cfg.sample_rate_hz / 2, n_freqs)
    mel_pts = np.linspace(_hz_to_mel(np.array(cfg.f_min_hz)), _hz_to_mel(np.array(cfg.f_max_hz)), cfg.n_mels + 2)
    hz_pts = _mel_to_hz(mel_pts)
    fb = np.zeros((n_freqs, cfg.n_mels), dtype=np.float64)
    for m in range(cfg.n_mels):
        left, center, right = hz_pts[m], hz_pts[m + 1], hz_pts[m + 2]
        up = (fft_hz - left) / (center - left)
        down = (right - fft_hz) / (right - center)
        fb[:, m] = np.maximum(0.0, np.minimum(up, down))
    return torch.from_numpy(fb.astype(np.float32))


class FeatureExtractor:
    """Waveform -> normalized log-mel frames, with the filterbank and statistics it carries."""

    def __init__(self, cfg: FeatureConfig, mel_fb: torch.Tensor, mean: torch.Tensor, std: torch.Tensor):
        if mel_fb.shape != (cfg.n_fft // 2 + 1, cfg.n_mels):
            raise ValueError(f"mel filterbank shape {tuple(mel_fb.shape)} does not match n_fft={cfg.n_fft}, n_mels={cfg.n_mels}")
        self.cfg = cfg
        self.mel_fb = mel_fb.float()
        self.mean = mean.float().reshape(cfg.n_mels)
        self.std = std.float().reshape(cfg.n_mels).clamp_min(1e-5)
        # A 25 ms Hann window left-aligned in an n_fft-long frame: frame k then covers
        # samples [k*hop, k*hop + win) exactly (torch.stft would otherwise centre it).
        self.window = torch.nn.functional.pad(torch.hann_window(cfg.win_length, periodic=True),
                                              (0, cfg.n_fft - cfg.win_length))

    @classmethod
    def create(cls, cfg: FeatureConfig = FeatureConfig()) -> "FeatureExtractor":
        """A fresh extractor with identity normalization (before statistics are measured)."""
        return cls(cfg, mel_filterbank(cfg), torch.zeros(cfg.n_mels), torch.ones(cfg.n_mels))

    @classmethod
    def from_state(cls, state: dict) -> "FeatureExtractor":
        return cls(FeatureConfig(**state["config"]), state["mel_fb"], state["mean"], state["std"])

    def state(self) -> dict:
        return {"config": self.cfg.to_dict(), "mel_fb": self.mel_fb.clone(), "mean": self.mean.clone(), "std": self.std.clone()}

    def with_stats(self, mean: torch.Tensor, std: torch.Tensor) -> "FeatureExtractor":
        return FeatureExtractor(self.cfg, self.mel_fb, mean, std)

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """Unnormalized log-mel of float audio (N,) -> (frames, n_mels)."""
        if audio.shape[-1] < self.cfg.win_length:
            return torch.zeros(0, self.cfg.n_mels)
        padded = torch.nn.functional.pad(audio, (0, self.cfg.n_fft - self.cfg.win_length))
        spec = torch.stft(padded, n_fft=self.cfg.n_fft, hop_length=self.cfg.hop_length,
                          win_length=self.cfg.n_fft, window=self.window, center=False,
                          return_complex=True)
        power = spec.real.square() + spec.imag.square()  # (freqs, frames)
        return torch.log(power.transpose(0, 1) @ self.mel_fb + LOG_EPS)

    def normalize(self, log_mel: torch.Tensor) -> torch.Tensor:
        return (log_mel - self.mean) / self.std

    def __call__(self, audio: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Whole clip: float32 mono 16 kHz audio (N,) -> normalized features (frames, n_mels)."""
        audio = torch.as_tensor(np.asarray(audio, dtype=np.float32))
        return self.normalize(self.log_mel(audio))

    def stream(self) -> "StreamingFeatures":
        """Per-stream chunked computation (see StreamingFeatures)."""
        return StreamingFeatures(self)


class StreamingFeatures:
    """Chunked feature computation that equals the whole-clip result frame for frame."""

    def __init__(self, extractor: FeatureExtractor):
        self.extractor = extractor
        self._pending = np.zeros(0, dtype=np.float32)

    def accept(self, audio: np.ndarray) -> torch.Tensor:
        """Add samples; return the frames that became complete, (frames, n_mels)."""
        cfg = self.extractor.cfg
        self._pending = np.concatenate([self._pending, np.asarray(audio, dtype=np.float32).reshape(-1)])
        n = cfg.num_frames(len(self._pending))
        if n == 0:
            return torch.zeros(0, cfg.n_mels)
        used = (n - 1) * cfg.hop_length + cfg.win_length
        feats = self.extractor(self._pending[:used])
        self._pending = self._pending[n * cfg.hop_length:]
        return feats
