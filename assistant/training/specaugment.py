"""SpecAugment frequency and time masking (training only; the seed's Task 2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SpecAugmentConfig:
    freq_masks: int = 2
    freq_mask_bins: int = 15  # each mask covers up to this many mel bins
    time_masks: int = 2
    time_mask_frames: int = 25  # each mask covers up to this many 10 ms frames ...
    time_mask_max_ratio: float = 0.15  # ... and at most this fraction of the utterance

    def validate(self, s: str) -> None:
        from assistant.config import _check

        _check(0 <= self.freq_masks <= 10, f"[{s}] freq_masks", "0 to 10", self.freq_masks)
        _check(0 <= self.freq_mask_bins <= 80, f"[{s}] freq_mask_bins", "0 to 80", self.freq_mask_bins)
        _check(0 <= self.time_masks <= 20, f"[{s}] time_masks", "0 to 20", self.time_masks)
        _check(0 <= self.time_mask_frames <= 200, f"[{s}] time_mask_frames", "0 to 200", self.time_mask_frames)
        _check(0 <= self.time_mask_max_ratio <= 0.5, f"[{s}] time_mask_max_ratio", "0 to 0.5", self.time_mask_max_ratio)


def spec_augment(feats: torch.Tensor, lengths: torch.Tensor, cfg: SpecAugmentConfig,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Mask random mel bands and time spans of normalized features (B, T, n_mels), in a copy.

    Masked values are 0, the normalized mean. Time masks stay inside each utterance.
    """
    out = feats.clone()
    b, _, n_mels = out.shape

    def randint(high: int) -> int:
        return int(torch.randint(0, max(high, 1), (1,), generator=generator))

    for i in range(b):
        for _ in range(cfg.freq_masks):
            width = randint(cfg.freq_mask_bins + 1)
            start = randint(n_mels - width + 1)
            out[i, :, start:start + width] = 0.0
        length = int(lengths[i])
        max_width = min(cfg.time_mask_frames, int(length * cfg.time_mask_max_ratio))
        for _ in range(cfg.time_masks):
            width = randint(max_width + 1)
            start = randint(length - width + 1)
            out[i, start:start + width, :] = 0.0
    return out
