"""Training data in memory: log-mel features and label ids per utterance, batched by duration."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from assistant.asr.features import FeatureExtractor
from assistant.asr.network import output_lengths
from assistant.asr.text import TextTransform
from assistant.audio.io import load_audio
from assistant.errors import AssistantError
from assistant.training.manifest import ctc_frames_needed


BUCKET_FRAMES = 100  # batch lengths are padded to whole seconds


def padded_frames(frames: int) -> int:
    return -(-frames // BUCKET_FRAMES) * BUCKET_FRAMES


@dataclass
class Utterance:
    feats: torch.Tensor  # (T, n_mels) float16, unnormalized log-mel
    ids: list[int]
    text: str
    source: str


class FeatureBank:
    """All utterances of a manifest set, featurized once (cached on disk by the caller)."""

    def __init__(self, utterances: list[Utterance], skipped: list[tuple[str, str]]):
        self.utterances = utterances
        self.skipped = skipped

    @classmethod
    def build(cls, entries, extractor: FeatureExtractor, text: TextTransform, desc: str = "features",
              max_duration_s: float = 30.0) -> "FeatureBank":
        """entries: objects with .audio (path), .text (normalized), .source. Unusable ones are skipped with a reason."""
        utts: list[Utterance] = []
        skipped: list[tuple[str, str]] = []
        for e in tqdm(entries, desc=desc, unit="utt", mininterval=2.0):
            try:
                audio = load_audio(e.audio)
                ids = text.text_to_int(e.text)
            except AssistantError as exc:
                skipped.append((str(e.audio), str(exc)))
                continue
            if len(audio) / 16000 > max_duration_s:
                skipped.append((str(e.audio), f"longer than {max_duration_s} s"))
                continue
            feats = extractor.log_mel(torch.from_numpy(audio))
            if not ids or int(output_lengths(torch.tensor(feats.shape[0]))) < ctc_frames_needed(e.text):
                skipped.append((str(e.audio), "audio too short for its label (CTC infeasible)" if ids else "empty transcript"))
                continue
            utts.append(Utterance(feats.to(torch.float16), ids, e.text, getattr(e, "source", "")))
        return cls(utts, skipped)

    def save(self, path: Path) -> None:
        torch.save({"utterances": [(u.feats, u.ids, u.text, u.source) for u in self.utterances],
                    "skipped": self.skipped}, path)

    @classmethod
    def load(cls, path: Path) -> "FeatureBank":
        d = torch.load(path, weights_only=True)
        return cls([Utterance(*u) for u in d["utterances"]], [tuple(s) for s in d["skipped"]])

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-bin mean and standard deviation over every frame."""
        total = torch.zeros(self.utterances[0].feats.shape[1], dtype=torch.float64)
        sq = torch.zeros_like(total)
        n = 0
        for u in self.utterances:
            f = u.feats.double()
            total += f.sum(0)
            sq += f.square().sum(0)
            n += f.shape[0]
        mean = total / n
        std = (sq / n - mean.square()).clamp_min(1e-10).sqrt()
        return mean.float(), std.float()

    def hours(self) -> float:
        return sum(u.feats.shape[0] for u in self.utterances) / 100 / 3600

    def batches(self, max_frames: int, seed: int, shuffle: bool = True) -> list[list[int]]:
        """Indices grouped by length bucket; each batch holds at most `max_frames` padded frames.

        Batches come in few distinct shapes: lengths are padded to whole `BUCKET_FRAMES`
        and every full batch of a bucket has the same size, so CPU kernels compiled
        for a shape (oneDNN) are reused instead of rebuilt for every batch.
        """
        buckets: dict[int, list[int]] = {}
        for i, u in enumerate(self.utterances):
            buckets.setdefault(padded_frames(u.feats.shape[0]), []).append(i)
        rng = random.Random(seed)
        batches = []
        for t_pad, idx in sorted(buckets.items()):
            if shuffle:
                rng.shuffle(idx)
            size = max(1, max_frames // t_pad)
            batches += [idx[k:k + size] for k in range(0, len(idx), size)]
        if shuffle:
            rng.shuffle(batches)
        return batches

    def collate(self, idx: list[int], extractor: FeatureExtractor):
        """-> normalized feats (B, T, n_mels), feat lengths, concatenated targets, target lengths."""
        utts = [self.utterances[i] for i in idx]
        lengths = torch.tensor([u.feats.shape[0] for u in utts])
        feats = torch.zeros(len(utts), padded_frames(int(lengths.max())), utts[0].feats.shape[1])
        for j, u in enumerate(utts):
            feats[j, : u.feats.shape[0]] = extractor.normalize(u.feats.float())
        targets = torch.tensor([i for u in utts for i in u.ids], dtype=torch.long)
        target_lengths = torch.tensor([len(u.ids) for u in utts])
        return feats, lengths, targets, target_lengths


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
