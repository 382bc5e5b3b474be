"""A model-free embedder: hashed word and character-trigram counts, normalized.

Not semantic: it only knows shared words and spellings. It exists so tests and
tools can exercise the index and ranker in milliseconds without loading a
network, and as an explicit fallback (`[recommend] embed_model = "hashing"`)
on machines where sentence-transformers cannot run. Same interface as
`Embedder`: `label`, `dimension`, `encode`, `encode_cached`, `warm`.
"""

from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np

from assistant.asr.text import normalize_text

HASHING_MODEL = "hashing"
DEFAULT_DIMENSION = 256


class HashingEmbedder:
    def __init__(self, dimension: int = DEFAULT_DIMENSION):
        self.dimension = dimension
        self.label = f"{HASHING_MODEL}-{dimension}"

    def _bucket(self, token: str) -> tuple[int, float]:
        h = zlib.crc32(token.encode())  # stable across processes, unlike hash()
        return h % self.dimension, 1.0 if (h >> 16) & 1 else -1.0

    def _one(self, text: str) -> np.ndarray:
        v = np.zeros(self.dimension, dtype=np.float32)
        norm = normalize_text(text)
        for word in norm.split():
            i, sign = self._bucket("w:" + word)
            v[i] += 2.0 * sign
        padded = f" {norm} "
        for j in range(len(padded) - 2):
            i, sign = self._bucket("c:" + padded[j:j + 3])
            v[i] += 0.5 * sign
        n = float(np.linalg.norm(v))
        return v / n if n > 0 else v

    def encode(self, texts: Sequence[str], batch_size: int = 0, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._one(t) for t in texts]).astype(np.float32)

    def encode_cached(self, text: str) -> np.ndarray:
        return self._one(text)

    def warm(self) -> None:
        pass

    def clear_cache(self) -> None:
        pass
